"""The benchmark's own services, in a temp dir: never the developer's sandbox."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _pg
from sandbox.services import FakeGCSServer, PostgresCluster

BUCKET = "dp-bench-us-central1"
PGBACKREST_BUCKET = "dp-bench-pgbackrest"
# Durable, default-ish settings (fsync on, 128 MB shared_buffers, default max_wal_size): the
# tests' fsync=off would flatter every restore. WAL archiving is on, as pgBackRest needs; its
# command discards segments except while the pgBackRest case runs (bench/pgbackrest.py).
PG_SETTINGS = {"archive_mode": "on", "archive_command": "'/bin/true'"}


def _private_file(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return path


def _private_dir(path):
    os.makedirs(path, mode=0o700)
    return path


class BenchEnv:
    """PostgreSQL, an http emulator for the runbook and the collection, an https one for pgBackRest."""

    def __init__(self, pgbackrest=True, keep=False):
        self.with_pgbackrest = pgbackrest
        self.keep = keep
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self._stack.close()
        return False

    def _start(self):
        self.base = tempfile.mkdtemp(prefix="dr-bench-", dir="/tmp")
        # 0711: the cluster's unprivileged OS user must traverse it to reach its data dir.
        os.chmod(self.base, 0o711)  # noqa: S103
        self._stack.callback(self._remove_base)
        self.work = _private_dir(os.path.join(self.base, "work"))
        self.gnupg_home = _private_dir(os.path.join(self.base, "gnupg"))
        self._stack.callback(
            subprocess.run, ["gpgconf", "--homedir", self.gnupg_home, "--kill", "all"], check=False, capture_output=True
        )
        self.key = _private_file(os.path.join(self.base, "backup-encryption.key"), secrets.token_urlsafe(32) + "\n")
        self.pg = PostgresCluster(os.path.join(self.base, "pg"), settings=PG_SETTINGS)
        self._stack.callback(self.pg.destroy)
        self.pg.start()
        self.gcs = self._emulator("gcs", "http", BUCKET)
        self.gcs_https = self._emulator("gcs-https", "https", PGBACKREST_BUCKET) if self.with_pgbackrest else None

    def _emulator(self, name, scheme, bucket):
        server = FakeGCSServer(os.path.join(self.base, name), scheme=scheme, buckets=[bucket])
        self._stack.callback(server.stop)
        return server.start()

    def _remove_base(self):
        if self.keep:
            print("kept the benchmark's files in %s" % self.base)
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- what cases need ------------------------------------------------------------
    def conn(self):
        return _pg.Conn(host=self.pg.host, port=self.pg.port, user=self.pg.superuser, password_file=self.pg.passfile)

    def case_spec(self):
        """Paths and endpoints a case child needs (no secret values: the key is a file path)."""
        return {
            "pg": {
                "host": self.pg.host,
                "port": self.pg.port,
                "user": self.pg.superuser,
                "password_file": self.pg.passfile,
            },
            "work": self.work,
            "key": self.key,
            "gnupg_home": self.gnupg_home,
            "gcs_endpoint": self.gcs.endpoint,
            "bucket": BUCKET,
        }

    def postmaster_pid(self):
        with open(os.path.join(self.pg.data_dir, "postmaster.pid")) as handle:
            return int(handle.readline())

    def query(self, sql, dbname="postgres"):
        return self.pg.psql(sql, dbname).strip()

    def database_size(self, dbname):
        return int(self.query("SELECT pg_database_size(current_database())", dbname))

    def drop_database(self, dbname):
        self.query('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % dbname)
