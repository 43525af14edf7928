"""Session-wide real services: PostgreSQL, fake-gcs-server, gpg keys.

Each service is started by the suite itself and stopped at the end. Nothing here is a
mock: the database is a real cluster, initdb'd in a temp dir as an unprivileged user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from sandbox.services import FakeGCSServer, PostgresCluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGIONS = {"us-central1": "dp-test-us-central1", "us-east1": "dp-test-us-east1", "europe-west1": "dp-test-europe-west1"}


def _shared_tmpdir(prefix):
    """A temp dir the unprivileged PostgreSQL user can traverse (pytest's own are 0700 root)."""
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(path, 0o711)  # noqa: S103 - the PostgreSQL OS user must traverse it
    return path


@pytest.fixture(scope="session")
def pg():
    base = _shared_tmpdir("dr-test-pg-")
    cluster = PostgresCluster(base, settings={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def gcs():
    base = _shared_tmpdir("dr-test-gcs-")
    server = FakeGCSServer(base, buckets=list(REGIONS.values()))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def buckets():
    """The three regional buckets, primary first, as the modules take them."""
    return [{"name": name, "region": region} for region, name in REGIONS.items()]


def _private_file(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return path


@pytest.fixture(scope="session")
def keys():
    """A symmetric passphrase file and an OpenPGP key pair (public and secret key files)."""
    base = tempfile.mkdtemp(prefix="dr-test-keys-")
    home = os.path.join(base, "gnupg")
    os.makedirs(home, mode=0o700)
    passphrase = "correct horse battery staple " + os.urandom(8).hex()
    passphrase_file = _private_file(os.path.join(base, "backup-encryption.key"), passphrase + "\n")
    env = dict(os.environ, GNUPGHOME=home)
    uid = "DR Test Backup Key <backup-test@diagnosticpro.io>"
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase-fd",
            "0",
            "--quick-generate-key",
            uid,
            "rsa3072",
            "encrypt,sign",
            "never",
        ],
        check=True,
        env=env,
        capture_output=True,
        input=b"",
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys", uid], check=True, env=env, capture_output=True, text=True
    ).stdout
    fingerprint = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][0]
    public = os.path.join(base, "backup-public.asc")
    secret = os.path.join(base, "backup-secret.asc")
    with open(public, "wb") as handle:
        handle.write(
            subprocess.run(
                ["gpg", "--batch", "--armor", "--export", fingerprint], check=True, env=env, capture_output=True
            ).stdout
        )
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            subprocess.run(
                [
                    "gpg",
                    "--batch",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase-fd",
                    "0",
                    "--armor",
                    "--export-secret-keys",
                    fingerprint,
                ],
                check=True,
                env=env,
                capture_output=True,
                input=b"",
            ).stdout
        )
    yield {
        "dir": base,
        "passphrase": passphrase,
        "passphrase_file": passphrase_file,
        "gnupg_home": home,
        "fingerprint": fingerprint,
        "public_key_file": public,
        "secret_key_file": secret,
    }
    shutil.rmtree(base, ignore_errors=True)
