"""pgBackRest (Debian package ``pgbackrest``) against the https emulator, fully offline.

What it takes, found by trial on pgBackRest 2.45 and fake-gcs-server:

* GCS needs TLS: a second emulator with ``scheme="https"``; ``repo1-storage-verify-tls=n``
  accepts its self-signed certificate and ``repo1-gcs-endpoint=127.0.0.1:PORT`` carries the
  port. ``repo1-gcs-key-type=token`` with any token: the emulator checks none.
* pgBackRest must run as the cluster's OS user (it reads the data directory): every command
  goes through ``runuser -u drpg --``. It connects over the Unix socket, so pg_hba gets a
  ``peer`` rule mapping that OS user to the ``postgres`` role: no password is copied anywhere.
* A full backup waits until the WAL it needs is archived (archive-check): ``archive_mode=on``
  with ``archive_command`` = ``pgbackrest archive-push`` while this case runs (the rest of the
  time the command discards segments, so the other cases do not pay for archiving).
  ``start-fast=y`` asks for an immediate checkpoint; without it the backup first waits up
  to checkpoint_timeout (5 minutes).
* Tuned like the collection: zstd level 3 and 2 processes (pgBackRest's defaults are gzip
  level 6 and 1 process); ``repo1-storage-upload-chunk-size=256MiB`` because the emulator's
  cost per upload grows with the square of the object size; a retention of 99 full backups
  so the expire step that ends every backup has nothing to delete.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import subprocess

from .env import PGBACKREST_BUCKET

STANZA = "bench"
CONFIG = """[global]
repo1-type=gcs
repo1-gcs-bucket={bucket}
repo1-gcs-endpoint=127.0.0.1:{gcs_port}
repo1-gcs-key-type=token
repo1-gcs-key=bench-token
repo1-storage-verify-tls=n
repo1-storage-upload-chunk-size=256MiB
repo1-path=/pgbackrest
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass={cipher_pass}
repo1-retention-full=99
compress-type=zst
compress-level=3
process-max=2
start-fast=y
log-path={home}/log
lock-path={home}/lock
spool-path={home}/spool
log-level-console=warn
log-level-file=info

[{stanza}]
pg1-path={data_dir}
pg1-port={pg_port}
pg1-socket-path={sock_dir}
pg1-user={superuser}
"""
PEER_MAP = "pgbackrest"


class PgBackRest:
    def __init__(self, env):
        self.env = env
        self.pg = env.pg
        self.home = os.path.join(env.base, "pgbackrest")
        self.config = os.path.join(self.home, "pgbackrest.conf")

    def _owned(self, path):
        owner = pwd.getpwnam(self.pg.os_user)
        os.chown(path, owner.pw_uid, owner.pw_gid)
        return path

    def argv(self, *command):
        return [
            "runuser",
            "-u",
            self.pg.os_user,
            "--",
            "pgbackrest",
            "--config=%s" % self.config,
            "--stanza=%s" % STANZA,
            *command,
        ]

    def _run(self, *command):
        result = subprocess.run(self.argv(*command), capture_output=True, text=True, cwd="/", check=False)
        if result.returncode:
            raise RuntimeError(
                "pgbackrest %s failed (%d): %s"
                % (" ".join(command), result.returncode, (result.stderr or result.stdout).strip()[-2000:])
            )
        return result.stdout

    def setup(self):
        """Config (0600, the cluster owner's), peer auth for the socket, the stanza."""
        for path in (self.home, *(os.path.join(self.home, name) for name in ("log", "lock", "spool"))):
            os.makedirs(path, mode=0o700)
            self._owned(path)
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                CONFIG.format(
                    bucket=PGBACKREST_BUCKET,
                    gcs_port=self.env.gcs_https.port,
                    cipher_pass=secrets.token_urlsafe(32),
                    home=self.home,
                    stanza=STANZA,
                    data_dir=self.pg.data_dir,
                    pg_port=self.pg.port,
                    sock_dir=self.pg.sock_dir,
                    superuser=self.pg.superuser,
                )
            )
        self._owned(self.config)
        self._allow_peer()
        self._run("stanza-create")
        return self

    def _allow_peer(self):
        hba = os.path.join(self.pg.data_dir, "pg_hba.conf")
        with open(hba) as handle:
            rules = handle.read()
        with open(hba, "w") as handle:
            handle.write("local all %s peer map=%s\n%s" % (self.pg.superuser, PEER_MAP, rules))
        with open(os.path.join(self.pg.data_dir, "pg_ident.conf"), "a") as handle:
            handle.write("%s %s %s\n" % (PEER_MAP, self.pg.os_user, self.pg.superuser))
        self.env.query("SELECT pg_reload_conf()")

    def _archive_command(self, command):
        self.env.query("ALTER SYSTEM SET archive_command = '%s'" % command.replace("'", "''"))
        self.env.query("SELECT pg_reload_conf()")

    @contextlib.contextmanager
    def archiving(self):
        """WAL goes to the pgBackRest repository inside this block, and is discarded again after it.

        `pgbackrest check` switches to a new WAL segment and waits until it is archived: a
        backup checks that the segment before its start is in the repository, and the
        segments written while archiving was off never got there.
        """
        self._archive_command("pgbackrest --config=%s --stanza=%s archive-push %%p" % (self.config, STANZA))
        try:
            self._run("check")
            yield
        finally:
            self._archive_command("/bin/true")

    def backup_argv(self):
        return self.argv("--type=full", "backup")

    def last_backup(self):
        """Sizes of the newest backup, from `pgbackrest info --output=json`."""
        stanza = json.loads(self._run("--output=json", "info"))[0]
        info = stanza["backup"][-1]["info"]
        return {
            "database_bytes": info["size"],
            "repository_bytes": info["repository"]["delta"],
            "label": stanza["backup"][-1]["label"],
        }
