"""Plain helpers shared by the data-path integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _crypto
from sandbox import datagen


def symmetric(keys):
    return _crypto.Encryption(passphrase_file=keys["passphrase_file"]), _crypto.Decryption(
        passphrase_file=keys["passphrase_file"])


def public_key(keys):
    return (_crypto.Encryption(recipients=[keys["fingerprint"]], public_key_files=[keys["public_key_file"]]),
            _crypto.Decryption(secret_key_file=keys["secret_key_file"]))


ENCRYPTION_MODES = {"symmetric": symmetric, "public-key": public_key}


def checksums(pg, dbname):
    with pg.connect(dbname) as db:
        return datagen.table_checksums(db)


def databases(pg):
    return set(pg.psql("SELECT datname FROM pg_database").split())


def ls(path):
    return sorted(os.listdir(path))
