"""The benchmark cases. Each runs in a child process: ``python -m bench.cases NAME SPEC.json OUT.json``.

A case gets the spec written by the parent (paths, endpoints, database names) and a
``phase`` timer, and returns what it produced (``artifact_bytes``, ``details``); the wall
time covers the case function only, not the interpreter's start-up and imports. Running each
case in its own process lets the parent sample exactly that case's process tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _artifact, _crypto, _dump, _gcs, _pg, _restore

from .procs import run_chain

# The runbook's `gpg --cipher-algo AES256 --compress-algo 1 --symmetric --batch --quiet`:
# algorithm 1 is ZIP, gpg's default, at gpg's default level.
RUNBOOK_GPG = ["--cipher-algo", "AES256", "--compress-algo", "1", "--symmetric", "--batch", "--quiet"]
# Threads for external compressors: the collection's default (jobs=2).
JOBS = 2


class Phases:
    """``with phase("upload"): ...`` records seconds per named phase."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, name):
        started = time.monotonic()
        yield
        self.record(name, time.monotonic() - started)

    def record(self, name, seconds):
        self.seconds[name] = round(seconds, 3)


def _conn(spec):
    return _pg.Conn(**spec["pg"])


def _blob(spec, name):
    """A google-cloud-storage blob on the http emulator, as gsutil would address it."""
    return _gcs.connect(endpoint=spec["gcs_endpoint"]).storage.bucket(spec["bucket"]).blob(name)


def _log(spec):
    return os.path.join(spec["work"], "%s.stderr" % spec["case"])


def _pg_dump(conn, database, *options):
    return [_pg.tool("pg_dump"), *options, *conn.cli_args(database)]


def _gpg(spec, *args):
    return ["gpg", "--homedir", spec["gnupg_home"], *args, "--passphrase-file", spec["key"]]


# -- backups ------------------------------------------------------------------------


def pg_dump_limit(spec, phase):
    """(b) `pg_dump -Fc DB > /dev/null`: no encryption, no upload, pg_dump's own gzip."""
    conn = _conn(spec)
    with phase("dump"):
        run_chain([_pg_dump(conn, spec["database"], "--format=custom")], env=conn.env(), log_path=_log(spec))
    return {}


def runbook_backup(spec, phase):
    """(a) `pg_dump DB | gpg ... > FILE`, `gsutil cp FILE gs://...`, `gsutil hash gs://...`."""
    conn = _conn(spec)
    path = os.path.join(spec["work"], os.path.basename(spec["object"]))
    with phase("dump+encrypt"), open(path, "wb") as out:
        run_chain(
            [_pg_dump(conn, spec["database"]), _gpg(spec, *RUNBOOK_GPG)],
            stdout=out,
            env=conn.env(),
            log_path=_log(spec),
        )
    with phase("upload"):
        blob = _blob(spec, spec["object"])
        blob.upload_from_filename(path)
    with phase("hash"):
        # `gsutil hash gs://...` prints the object's stored hashes; the runbook compares them with nothing.
        blob.reload()
    size = os.path.getsize(path)
    os.unlink(path)
    return {"artifact_bytes": size, "details": {"crc32c": blob.crc32c, "md5": blob.md5_hash}}


def _ours_result(backup, uploads):
    return {
        "artifact_bytes": backup["size"],
        "details": {
            "url": uploads[0]["url"],
            "rows": backup["rows"],
            "compression": backup["manifest"]["compression"],
            "commands": backup["commands"],
        },
    }


def ours_backup(spec, phase):
    """(d) `_gcs.backup_and_upload`: `_dump.dump` (zstd -3, 2 threads) streamed to one bucket while it is
    written, then published there (verified, manifest last)."""
    conn, client = _conn(spec), _gcs.connect(endpoint=spec["gcs_endpoint"])
    finished = []

    def backup(followers):
        with phase("dump"):
            result = _dump.dump(
                conn,
                spec["database"],
                spec["work"],
                _crypto.Encryption(passphrase_file=spec["key"]),
                followers=followers,
            )
        finished.append(time.monotonic())
        return result

    result = _gcs.backup_and_upload(
        backup, client, [{"name": spec["bucket"], "region": "us-central1"}], prefix=spec["prefix"]
    )
    phase.record("rest of the upload, publish", time.monotonic() - finished[0])
    return _ours_result(result, result["uploads"])


def ours_backup_then_upload(spec, phase):
    """(d') the same dump to a local file, then `_gcs.upload_backup` of the finished file (no overlap)."""
    conn = _conn(spec)
    with phase("dump"):
        backup = _dump.dump(conn, spec["database"], spec["work"], _crypto.Encryption(passphrase_file=spec["key"]))
    with phase("upload"):
        uploaded = _gcs.upload_backup(
            _gcs.connect(endpoint=spec["gcs_endpoint"]),
            backup["path"],
            [{"name": spec["bucket"], "region": "us-central1"}],
            prefix=spec["prefix"],
        )
    return _ours_result(backup, uploaded["uploads"])


def pgbackrest_backup(spec, phase):
    """(c) `pgbackrest backup --type=full` as the cluster's OS user, to the https emulator."""
    with phase("backup"):
        run_chain([spec["argv"]], log_path=_log(spec))
    return {}


def compression(spec, phase):
    """`pg_dump -Fc --compress=N [| compressor] | wc -c`: dump time and compressed size of one codec."""
    conn = _conn(spec)
    variant = spec["variant"]
    chain = [_pg_dump(conn, spec["database"], "--format=custom", "--compress=%d" % variant["pg_dump_level"])]
    if variant["algorithm"]:
        chain.append(_artifact.compression_stage(variant["algorithm"], variant["level"], JOBS).argv)
    counted = os.path.join(spec["work"], "compressed.bytes")
    with phase("dump"), open(counted, "wb") as out:
        run_chain(chain + [["wc", "-c"]], stdout=out, env=conn.env(), log_path=_log(spec))
    with open(counted) as handle:
        return {"artifact_bytes": int(handle.read().split()[0])}


# -- restores -------------------------------------------------------------------------


def runbook_restore(spec, phase):
    """(a) `gsutil cp gs://... FILE`, then `gpg --decrypt FILE | psql DB` into a fresh database."""
    conn = _conn(spec)
    path = os.path.join(spec["work"], "restore_backup.sql.gpg")
    with phase("download"):
        _blob(spec, spec["object"]).download_to_filename(path)
    with phase("create database"), contextlib.closing(conn.connect("postgres")) as admin:
        _pg.create_database(admin.cursor(), spec["target"])
    # ON_ERROR_STOP is not in the runbook; it only makes a failed restore visible here.
    psql = [_pg.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *conn.cli_args(spec["target"])]
    with phase("decrypt+psql"):
        run_chain([_gpg(spec, "--batch", "--quiet", "--decrypt") + [path], psql], env=conn.env(), log_path=_log(spec))
    size = os.path.getsize(path)
    os.unlink(path)
    return {"artifact_bytes": size}


def restore_limit(spec, phase):
    """(b) `pg_restore -j2` from an unencrypted custom-format file on local disk, with the collection's
    session settings: the fastest this dump can be restored here. The file is written untimed."""
    conn = _conn(spec)
    path = os.path.join(spec["work"], "restore-limit.dump")
    started = time.monotonic()
    run_chain([_pg_dump(conn, spec["database"], "--format=custom", "--compress=0", "--file=" + path)], env=conn.env())
    untimed = time.monotonic() - started
    try:
        with phase("create database"), contextlib.closing(conn.connect("postgres")) as admin:
            _pg.create_database(admin.cursor(), spec["target"])
        argv = [_pg.tool("pg_restore"), "--exit-on-error", "--jobs=%d" % JOBS, *conn.cli_args(spec["target"])[:-1]]
        with phase("pg_restore -j%d" % JOBS):
            run_chain([argv + [path]], env=conn.env(PGOPTIONS=_restore.RESTORE_PGOPTIONS), log_path=_log(spec))
    finally:
        os.unlink(path)
    return {"untimed_s": untimed}


def ours_restore(spec, phase):
    """(d) `_restore.restore` streaming from the emulator through a staging database, in one
    session (the modules' default) or ``spec["jobs"]`` sessions."""
    decryption = _crypto.Decryption(passphrase_file=spec["key"])
    with phase("restore"):
        result = _restore.restore(
            _conn(spec),
            [spec["url"]],
            spec["target"],
            decryption,
            gcs={"endpoint": spec["gcs_endpoint"]},
            jobs=spec.get("jobs", 1),
        )
    # Download -> gpg -> zstd -> pg_restore; the rest is the manifest, staging database, row counts, rename.
    phase.record("of which streaming pipeline", result["timings"]["restore"])
    return {"details": {"timings": result["timings"], "rows_restored": result["rows_restored"]}}


CASES = {
    case.__name__: case
    for case in (
        pg_dump_limit,
        runbook_backup,
        ours_backup,
        ours_backup_then_upload,
        pgbackrest_backup,
        compression,
        runbook_restore,
        restore_limit,
        ours_restore,
    )
}


def main(argv):
    name, spec_path, out_path = argv
    with open(spec_path) as handle:
        spec = json.load(handle)
    phase = Phases()
    started = time.monotonic()
    result = CASES[name](spec, phase)
    # A case's preparation that is not part of what it measures (restore_limit's plain file).
    untimed = result.pop("untimed_s", 0.0)
    result.update(wall_s=round(time.monotonic() - started - untimed, 3), phases=phase.seconds)
    with open(out_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
