# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore and verify: artifact (local file or GCS object) -> gpg -> decompress -> pg_restore.

The stream is hashed as it is read and compared with the manifest; a restore always goes
into a database of its own first (a staging database for a restore, a scratch database for
a verification), so a corrupt artifact, a wrong key or a failed pg_restore never touches
the target. Only a staging database whose hash and per-table row counts match the
manifest is swapped in; the database it replaces is kept (renamed) unless told otherwise.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time

from . import _manifest as manifest_mod
from ._artifact import DECOMPRESS
from ._crypto import decrypt_error
from ._dump import dump
from ._errors import (
    BackupError,
    ConfigError,
    DecryptError,
    DownloadError,
    IntegrityError,
    RestoreError,
    VerifyError,
)
from ._pg import (
    create_database,
    database_exists,
    database_owner,
    drop_database,
    other_sessions,
    rename_database,
    row_counts,
    run_checks,
    table_count,
    tool,
    validate_identifier,
)
from ._pipeline import CHUNK, Pipeline, PipelineError, Stage

# Session settings for the restoring backend: faster index builds, no waiting on WAL flush
# (a crash mid-restore only loses a staging database that is rebuilt anyway).
RESTORE_PGOPTIONS = "-c maintenance_work_mem=512MB -c synchronous_commit=off -c max_parallel_maintenance_workers=2"


class Source:
    """Where an artifact is read from; resolves its manifest first."""

    def __init__(self, location, gcs=None, kind="postgresql"):
        self.location = location
        self.gcs = dict(gcs or {})
        self.kind = kind
        self.manifest = None
        self._client = None

    @property
    def is_gcs(self):
        return str(self.location).startswith("gs://")

    def _gcs_client(self):
        from . import _gcs

        if self._client is None:
            self._client = _gcs.connect(**self.gcs)
        return _gcs, self._client

    def resolve(self):
        if self.is_gcs:
            _gcs, client = self._gcs_client()
            bucket, name = _gcs.parse_url(self.location)
            self.manifest = _gcs.read_manifest(client, bucket, name)
        else:
            if not os.path.isfile(self.location):
                raise ConfigError("Failed to read backup %s: no such file" % self.location)
            self.manifest = manifest_mod.read(manifest_mod.manifest_name(self.location))
        if self.manifest.get("kind") != self.kind:
            raise ConfigError(
                "Failed to restore %s: it is a %s backup, not a %s backup"
                % (self.location, self.manifest.get("kind"), self.kind)
            )
        return self.manifest

    def chunks(self, chunk=CHUNK):
        if self.is_gcs:
            _gcs, client = self._gcs_client()
            bucket, name = _gcs.parse_url(self.location)
            return _gcs.download_chunks(client, bucket, name, chunk_size=8 * chunk)
        return self._file_chunks(chunk)

    def _file_chunks(self, chunk):
        try:
            with open(self.location, "rb") as handle:
                yield from iter(lambda: handle.read(chunk), b"")
        except OSError as exc:
            raise DownloadError("Failed to read %s: %s" % (self.location, exc.strerror)) from exc


def layer_stages(manifest, decryption, home):
    """gpg --decrypt, then undo each compression layer, outermost first."""
    gpg_argv, gpg_fds = decryption.stage(home)
    stages = [Stage("gpg", gpg_argv, fds=gpg_fds)]
    for layer in reversed(manifest["artifact"]["layers"][1:-1]):
        if layer not in DECOMPRESS:
            raise ConfigError("Failed to restore %s: unknown layer %s" % (manifest["backup_id"], layer))
        stages.append(Stage(layer, DECOMPRESS[layer]))
    return stages


def _pg_restore_stage(conn, database, no_owner):
    if database is None:  # hash-and-decrypt only (check mode): read the archive's table of contents
        return Stage("pg_restore", [tool("pg_restore"), "--list"])
    argv = [tool("pg_restore"), "--exit-on-error", "--no-password"] + conn.cli_args(database)[:-1]
    if no_owner:
        argv += ["--no-owner", "--no-acl"]
    return Stage("pg_restore", argv, env=conn.env(PGOPTIONS=RESTORE_PGOPTIONS))


def raise_stream_error(source, pipeline, error, verb="restore"):
    """Decide what went wrong in a read of ``source``, most telling cause first."""
    expected = source.manifest["artifact"]
    if pipeline.source_error is not None:
        exc = pipeline.source_error
        if isinstance(exc, BackupError):
            raise exc
        raise DownloadError("Failed to read %s: %s" % (source.location, exc)) from exc
    got = pipeline.input.result()
    # The hash decides first: a corrupt artifact makes gpg or pg_restore fail too, but the
    # operator needs to hear "the stored object is corrupt", not a pg_restore parse error.
    if got["size"] != expected["size"] or got["sha256"] != expected["sha256"]:
        raise IntegrityError(
            "Failed to verify %s: read %d bytes with sha256 %s, the manifest says %d bytes with sha256 %s"
            % (source.location, got["size"], got["sha256"], expected["size"], expected["sha256"]),
            hint="The stored object is corrupt or incomplete; use another copy (another region)",
        )
    if error is not None:
        if error.failed_stage == "gpg":
            gpg = [s for s in pipeline.stages if s.name == "gpg"][0]
            raise DecryptError("Failed to decrypt %s: %s" % (source.location, decrypt_error(gpg.stderr))) from error
        raise RestoreError("Failed to %s %s: %s" % (verb, source.location, error)) from error


def stream_restore(source, decryption, conn, database, progress=None, no_owner=False):
    """Stream one artifact into ``database`` (None: decrypt and read the TOC only).

    Returns timings. Raises IntegrityError when the bytes read do not match the manifest,
    DecryptError for key problems, RestoreError when pg_restore fails.
    """
    progress = progress or (lambda message: None)
    with decryption.home() as home:
        stages = layer_stages(source.manifest, decryption, home) + [_pg_restore_stage(conn, database, no_owner)]
        pipeline = Pipeline(stages, source=source.chunks(), progress=progress, drain_source_on_error=True)
        error = None
        try:
            pipeline.run()
        except PipelineError as exc:
            error = exc
    raise_stream_error(source, pipeline, error, "restore into %s" % database if database else "read")
    names = {"source": "download", "gpg": "decrypt", "pg_restore": "restore"}
    return {names.get(k, k): v for k, v in pipeline.timings().items()}


def compare_counts(conn, database, manifest):
    with contextlib.closing(conn.connect(database)) as db:
        actual = row_counts(db.cursor())
    tables = {}
    for name in sorted(set(actual) | set(manifest.get("tables", {}))):
        want = manifest.get("tables", {}).get(name, {}).get("rows")
        got = actual.get(name)
        tables[name] = {"expected": want, "actual": got, "ok": want == got}
    return tables


def _short(backup_id):
    return backup_id[-6:] if len(backup_id) >= 6 else backup_id


def _admin(conn, maintenance_db):
    return contextlib.closing(conn.connect(maintenance_db))


def verify(
    conn,
    candidates,
    decryption,
    checks=(),
    gcs=None,
    maintenance_db="postgres",
    progress=None,
    check_mode=False,
    record=None,
):
    """Test-restore a backup into a scratch database (always dropped) and check it."""
    progress = progress or (lambda message: None)
    attempts, error_cls = [], VerifyError
    for location in _as_list(candidates):
        source = Source(location, gcs)
        try:
            manifest = source.resolve()
            decryption.preflight(manifest.get("encryption"))
            result = _verify_one(conn, source, decryption, checks, maintenance_db, progress, check_mode)
        except (IntegrityError, DownloadError, DecryptError, RestoreError, VerifyError) as exc:
            attempts.append({"source": location, "error": str(exc)})
            progress("verification of %s failed: %s" % (location, exc))
            error_cls = type(exc)
            continue
        result["attempts"] = attempts + [{"source": location, "error": None}]
        if record and source.is_gcs and not check_mode:
            result["record_url"] = record(source, result)
        if not result["ok"]:
            raise VerifyError("Failed to verify %s: %s" % (location, _why_not_ok(result)), partial=result)
        return result
    raise error_cls(
        "Failed to verify any candidate: " + "; ".join(a["error"] for a in attempts), partial={"attempts": attempts}
    )


def _why_not_ok(result):
    bad_tables = [
        "%s (expected %s, got %s)" % (n, t["expected"], t["actual"]) for n, t in result["tables"].items() if not t["ok"]
    ]
    bad_checks = [
        "%s (%s rows%s)" % (c["name"], c["rows"], (", " + c["error"]) if c.get("error") else "")
        for c in result["checks"]
        if not c["ok"]
    ]
    parts = []
    if bad_tables:
        parts.append("row counts differ for " + ", ".join(bad_tables))
    if bad_checks:
        parts.append("checks failed: " + ", ".join(bad_checks))
    return "; ".join(parts)


def _verify_one(conn, source, decryption, checks, maintenance_db, progress, check_mode):
    manifest = source.manifest
    t0 = time.monotonic()
    if check_mode:
        timings = stream_restore(source, decryption, conn, None, progress)
        return {
            "changed": False,
            "ok": True,
            "backup_id": manifest["backup_id"],
            "source": source.location,
            "scratch_database": None,
            "tables": {},
            "checks": [],
            "rows_verified": 0,
            "sha256_verified": True,
            "timings": timings,
        }
    scratch = "dr_verify_%s_%s" % (_short(manifest["backup_id"]), secrets.token_hex(3))
    with _admin(conn, maintenance_db) as admin:
        create_database(admin.cursor(), scratch)
        try:
            progress("restoring %s into scratch database %s" % (manifest["backup_id"], scratch))
            timings = stream_restore(source, decryption, conn, scratch, progress, no_owner=True)
            tables = compare_counts(conn, scratch, manifest)
            t_check = time.monotonic()
            with contextlib.closing(conn.connect(scratch)) as db:
                check_results = run_checks(db, checks)
            timings["check"] = round(time.monotonic() - t_check, 3)
        finally:
            drop_database(admin.cursor(), scratch)
            progress("dropped scratch database %s" % scratch)
    timings["total"] = round(time.monotonic() - t0, 3)
    ok = all(t["ok"] for t in tables.values()) and all(c["ok"] for c in check_results)
    return {
        "changed": False,
        "ok": ok,
        "backup_id": manifest["backup_id"],
        "source": source.location,
        "scratch_database": scratch,
        "tables": tables,
        "checks": check_results,
        "sha256_verified": True,
        "rows_verified": sum(t["actual"] or 0 for t in tables.values()),
        "timings": timings,
        "data_timestamp": manifest.get("source", {}).get("data_timestamp"),
    }


def record_in_gcs(source, result):
    """Store the outcome of a verification next to the backup (a new object per run)."""
    import json

    _gcs, client = source._gcs_client()
    bucket, name = _gcs.parse_url(source.location)
    doc = {
        "backup_id": result["backup_id"],
        "ok": result["ok"],
        "verified_at": manifest_mod.isoformat(manifest_mod.utcnow()),
        "sha256": source.manifest["artifact"]["sha256"],
        "tables": result["tables"],
        "checks": [{k: c.get(k) for k in ("name", "rows", "ok")} for c in result["checks"]],
        "timings": result["timings"],
        "tool": {"name": "diagnosticpro.dr", "module": "backup_verify"},
    }
    return _gcs.write_record(client, bucket, _gcs.verify_record_name(name), json.dumps(doc, indent=2))["url"]


def _as_list(candidates):
    if isinstance(candidates, (list, tuple)):
        items = [c for c in candidates if c]
    else:
        items = [candidates] if candidates else []
    if not items:
        raise ConfigError("Failed to choose a backup: no candidate given")
    return items


def restore(
    conn,
    candidates,
    database,
    decryption,
    clean=False,
    snapshot=None,
    keep_previous=True,
    gcs=None,
    maintenance_db="postgres",
    no_owner=False,
    progress=None,
    check_mode=False,
):
    """Restore the first good candidate into ``database`` through a staging database.

    ``snapshot``: None, or kwargs for ``_dump.dump`` (dest, encryption, ...) to back up the
    current target first. Raises RestoreError (with ``partial`` holding the snapshot and the
    attempts) when no candidate could be restored; the target is then untouched.
    """
    validate_identifier(database)
    progress = progress or (lambda message: None)
    t0 = time.monotonic()
    with _admin(conn, maintenance_db) as admin:
        cur = admin.cursor()
        exists = database_exists(cur, database)
        tables_now = table_count(conn, database) if exists else 0
        if tables_now and not clean:
            raise RestoreError(
                "Failed to restore into %s: the database is not empty (%d tables)" % (database, tables_now),
                hint="Set clean: true to replace it (the current database is kept as %s_pre_<timestamp> "
                "unless keep_previous is false)" % database,
            )
        sessions = other_sessions(cur, database) if exists else 0
        if sessions:
            raise RestoreError(
                "Failed to restore into %s: %d other sessions are connected to it" % (database, sessions),
                hint="Stop the application first (k8s_scale_restore state=scaled_down) and retry",
            )
        owner = database_owner(cur, database) if exists else None
    if check_mode:
        source = Source(_as_list(candidates)[0], gcs)
        manifest = source.resolve()
        decryption.preflight(manifest.get("encryption"))
        return {
            "changed": True,
            "backup_id": manifest["backup_id"],
            "source": source.location,
            "database": database,
            "snapshot": None,
            "previous_database": None,
            "attempts": [],
        }

    snap = None
    if snapshot and exists and tables_now:
        progress("snapshot of the current %s before restoring" % database)
        taken = dump(conn, database, label="%s-pre-restore" % database, progress=progress, **snapshot)
        snap = {"path": taken["path"], "manifest_path": taken["manifest_path"], "backup_id": taken["backup_id"]}
    partial = {"snapshot": snap, "attempts": []}
    staging = "%s__dr_%s" % (database[:40], secrets.token_hex(3))
    chosen = None
    for location in _as_list(candidates):
        source = Source(location, gcs)
        try:
            manifest = source.resolve()
            decryption.preflight(manifest.get("encryption"))
            with _admin(conn, maintenance_db) as admin:
                create_database(admin.cursor(), staging, owner=owner)
            progress("restoring %s from %s into staging database %s" % (manifest["backup_id"], location, staging))
            timings = stream_restore(source, decryption, conn, staging, progress, no_owner=no_owner)
            tables = compare_counts(conn, staging, manifest)
            bad = [n for n, t in tables.items() if not t["ok"]]
            if bad:
                raise VerifyError(
                    "Failed to verify the restore of %s: row counts differ for %s"
                    % (manifest["backup_id"], ", ".join(bad))
                )
        except (IntegrityError, DownloadError, DecryptError, RestoreError, VerifyError) as exc:
            partial["attempts"].append({"source": location, "error": str(exc)})
            progress("candidate %s failed: %s" % (location, exc))
            with _admin(conn, maintenance_db) as admin:
                drop_database(admin.cursor(), staging)
            continue
        except BackupError as exc:
            with _admin(conn, maintenance_db) as admin:
                drop_database(admin.cursor(), staging)
            exc.partial.update(partial)
            raise
        chosen = (location, manifest, timings, tables)
        partial["attempts"].append({"source": location, "error": None})
        break
    if chosen is None:
        raise RestoreError(
            "Failed to restore %s: no candidate could be restored (%s)"
            % (database, "; ".join(a["error"] for a in partial["attempts"])),
            partial=partial,
            hint="%s is unchanged%s" % (database, ("; pre-restore snapshot: %s" % snap["path"]) if snap else ""),
        )
    location, manifest, timings, tables = chosen
    previous = _swap_in(conn, maintenance_db, staging, database, exists, keep_previous, progress, partial)
    return {
        "changed": True,
        "backup_id": manifest["backup_id"],
        "source": location,
        "database": database,
        "snapshot": snap,
        "previous_database": previous,
        "attempts": partial["attempts"],
        "tables": tables,
        "rows_restored": sum(t["actual"] or 0 for t in tables.values()),
        "timings": timings,
        "duration_s": round(time.monotonic() - t0, 3),
        "data_timestamp": manifest.get("source", {}).get("data_timestamp"),
    }


def _swap_in(conn, maintenance_db, staging, database, exists, keep_previous, progress, partial):
    previous = None
    with _admin(conn, maintenance_db) as admin:
        admin.autocommit = False
        cur = admin.cursor()
        try:
            if exists:
                if other_sessions(cur, database):
                    raise RestoreError(
                        "Failed to swap in the restored database: sessions connected to %s appeared" % database,
                        hint="Stop the application and retry; the restored copy was dropped, %s is unchanged"
                        % database,
                    )
                previous = "%s_pre_%s" % (database[:40], time.strftime("%Y%m%d%H%M%S", time.gmtime()))
                rename_database(cur, database, previous)
            rename_database(cur, staging, database)
            admin.commit()  # both renames or neither
        except Exception as exc:
            admin.rollback()
            admin.autocommit = True
            drop_database(admin.cursor(), staging)
            if isinstance(exc, BackupError):
                exc.partial.update(partial)
                raise
            raise RestoreError("Failed to swap in the restored database: %s" % exc, partial=partial) from exc
        admin.autocommit = True
        if previous:
            progress("%s replaced; the previous database is %s" % (database, previous))
            if not keep_previous:
                drop_database(admin.cursor(), previous)
                progress("dropped %s (keep_previous: false)" % previous)
                previous = None
    return previous
