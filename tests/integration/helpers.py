"""Plain helpers shared by the data-path integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import signal
import threading
import time

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _crypto
from sandbox import datagen


def symmetric(keys):
    return _crypto.Encryption(passphrase_file=keys["passphrase_file"]), _crypto.Decryption(
        passphrase_file=keys["passphrase_file"]
    )


def public_key(keys):
    return (
        _crypto.Encryption(recipients=[keys["fingerprint"]], public_key_files=[keys["public_key_file"]]),
        _crypto.Decryption(secret_key_file=keys["secret_key_file"]),
    )


ENCRYPTION_MODES = {"symmetric": symmetric, "public-key": public_key}


def checksums(pg, dbname):
    with pg.connect(dbname) as db:
        return datagen.table_checksums(db)


def databases(pg):
    return set(pg.psql("SELECT datname FROM pg_database").split())


def ls(path):
    return sorted(os.listdir(path))


def kill_process(name, marker):
    """SIGKILL the running process called ``name`` whose command line contains ``marker``.

    It is frozen (SIGSTOP) first, so it cannot finish before the SIGKILL: the rest of the
    pipeline carries on with whatever it had written, as after a real crash. Returns its pid,
    or None if no such process runs.
    """
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).decode() == name and marker.encode() in b" ".join(argv):
            os.kill(int(pid), signal.SIGSTOP)
            os.kill(int(pid), signal.SIGKILL)
            return int(pid)
    return None


def kill_when_running(name, marker, timeout=30):
    """Kill (see kill_process) the process called ``name`` with ``marker`` the moment it is seen."""
    killed = []

    def hunt():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not killed:
            pid = kill_process(name, marker)
            if pid:
                killed.append(pid)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    return thread, killed
