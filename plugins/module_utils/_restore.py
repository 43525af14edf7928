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
import re
import secrets
import tempfile
import threading
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
from ._pipeline import CHUNK, MemorySink, Pipeline, PipelineError, Stage

# Session settings for the restoring backend: faster index builds, no waiting on WAL flush
# (a crash mid-restore only loses a staging database that is rebuilt anyway).
# Options of every module that restores (documented by doc_fragments/restore.py).
RESTORE_SPEC = {"jobs": {"type": "int", "default": 1}}
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


def _pg_restore_stage(conn, database, no_owner, extra=()):
    if database is None:  # hash-and-decrypt only (check mode): read the archive's table of contents
        return Stage("pg_restore", [tool("pg_restore"), "--list"])
    argv = [tool("pg_restore"), "--exit-on-error", "--no-password"] + conn.cli_args(database)[:-1]
    if no_owner:
        argv += ["--no-owner", "--no-acl"]
    return Stage("pg_restore", argv + list(extra), env=conn.env(PGOPTIONS=RESTORE_PGOPTIONS))


def raise_stream_error(source, pipeline, error, verb="restore"):
    """Decide what went wrong in a read of ``source``, most telling cause first."""
    expected = source.manifest["artifact"]
    if pipeline.source_error is not None:
        exc = pipeline.source_error
        if isinstance(exc, BackupError):
            raise exc
        raise DownloadError("Failed to read %s: %s" % (source.location, exc)) from exc
    if pipeline.stopped_early and error is None:
        return  # read only the head it needed; the passes that read everything check the hash
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


def stream_restore(source, decryption, conn, database, progress=None, no_owner=False, jobs=1):
    """Stream one artifact into ``database`` (None: decrypt and read the TOC only).

    ``jobs`` > 1 restores with that many pg_restore sessions at once (``_parallel_restore``).
    Returns timings. Raises IntegrityError when the bytes read do not match the manifest,
    DecryptError for key problems, RestoreError when pg_restore fails.
    """
    progress = progress or (lambda message: None)
    with decryption.home() as home:
        if database is not None and jobs > 1:
            return _parallel_restore(source, decryption, home, conn, database, progress, no_owner, jobs)
        pipeline = _pass(source, decryption, home, _pg_restore_stage(conn, database, no_owner), progress)
        _run_passes([pipeline], source, "restore into %s" % database if database else "read")
    names = {"source": "download", "gpg": "decrypt", "pg_restore": "restore"}
    return {names.get(k, k): v for k, v in pipeline.timings().items()}


def _pass(source, decryption, home, consumer, progress=None, head_only=False, sinks=()):
    """One read of the artifact: download -> gpg -> decompress -> ``consumer``. A ``head_only``
    consumer may stop once it has read what it needs (the archive's table of contents)."""
    return Pipeline(
        layer_stages(source.manifest, decryption, home) + [consumer],
        source=source.chunks(),
        sinks=sinks,
        progress=progress,
        drain_source_on_error=not head_only,
        reader_may_stop=True,
    )


def _run_passes(pipelines, source, verb):
    """Run reads of ``source`` side by side; the first failure stops the others and is raised."""
    errors, first, lock = [None] * len(pipelines), [], threading.Lock()

    def run(index):
        try:
            pipelines[index].run()
        except PipelineError as exc:
            errors[index] = exc
            with lock:
                stopping = not first
                first.append(index)
            if stopping:  # the others only fail because of this: they are killed, not the cause
                for other in pipelines:
                    other.kill()

    threads = [threading.Thread(target=run, args=(i,), name="restore-pass-%d" % i) for i in range(len(pipelines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in first[:1] or range(len(pipelines)):
        raise_stream_error(source, pipelines[index], errors[index], verb)


# Entries of `pg_restore --list`: "<dump id>; <catalog oid> <oid> <type> <schema> <name> <owner>".
_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (?P<rest>.*)$")
# `CREATE [UNIQUE] INDEX <name> ON [ONLY] <schema>.<table>` in pg_restore's SQL output.
_CREATE_INDEX = re.compile(r"^CREATE (?:UNIQUE )?INDEX (\S+) ON (?:ONLY )?([^\s.]+)\.(\S+) ", re.MULTILINE)


def _entry_table(line, index_tables):
    """'schema.table' that a TOC entry loads or builds a key or index on; None for anything else
    (foreign keys, triggers, grants...), which must wait until every table is complete."""
    rest = _TOC_ENTRY.match(line).group("rest")
    for kind in ("TABLE DATA ", "CONSTRAINT "):
        if rest.startswith(kind):
            fields = rest[len(kind) :].split(" ")
            return "%s.%s" % (fields[0], fields[1]) if len(fields) >= 3 else None
    if rest.startswith("INDEX "):
        fields = rest[len("INDEX ") :].split(" ")
        return index_tables.get((fields[0], fields[1])) if len(fields) >= 3 else None
    return None


def share_out(tables, sizes, jobs):
    """``tables`` in ``jobs`` groups of about equal total size: largest first, each to the lightest group."""
    groups, loads = [[] for _unused in range(jobs)], [0] * jobs
    for table in sorted(tables, key=lambda name: (-sizes.get(name, 1), name)):
        lightest = loads.index(min(loads))
        groups[lightest].append(table)
        loads[lightest] += sizes.get(table, 1)
    return [group for group in groups if group]


def _parallel_restore(source, decryption, home, conn, database, progress, no_owner, jobs):
    """Restore with ``jobs`` sessions, streaming the artifact several times instead of writing
    the decrypted archive to disk (which `pg_restore --jobs` would need):

    1. side by side: the schema (`--section=pre-data`) and the archive's table of contents,
       both read from the archive's head;
    2. ``jobs`` passes side by side, the tables shared out by size: each pass reads the whole
       artifact (checking its SHA-256 against the manifest), loads its tables and then builds
       their primary and unique keys and indexes;
    3. the rest of post-data in archive order, once every table is complete: foreign keys,
       triggers, grants, anything not tied to one table.
    """
    sizes = {name: t.get("bytes") or t.get("rows") or 1 for name, t in source.manifest.get("tables", {}).items()}
    verb = "restore into %s" % database
    timings, t0 = {}, time.monotonic()
    pg_restore = tool("pg_restore")
    with tempfile.TemporaryDirectory(prefix="dr-restore-toc-") as lists:

        def session(name, entries=None, section=None, head_only=True):
            extra = ["--section=" + section] if section else []
            if entries is not None:
                path = os.path.join(lists, name + ".list")
                with open(path, "w") as handle:
                    handle.write("\n".join(entries) + "\n")
                extra = ["--use-list=" + path]
            return _pass(
                source, decryption, home, _pg_restore_stage(conn, database, no_owner, extra), progress, head_only
            )

        def phase(name, pipelines):
            started = time.monotonic()
            progress("restore into %s: %s, %d session(s)" % (database, name, len(pipelines)))
            _run_passes(pipelines, source, verb)
            timings[name] = round(time.monotonic() - started, 3)

        # The schema and the three views of the table of contents, each from the archive's head.
        readers = {
            "data": ["--list", "--section=data"],
            "post": ["--list", "--section=post-data"],
            "post_sql": ["--section=post-data", "--file=-"],
        }
        heads = {name: MemorySink() for name in readers}
        phase(
            "schema",
            [session("schema", section="pre-data")]
            + [
                _pass(
                    source,
                    decryption,
                    home,
                    Stage("pg_restore", [pg_restore] + argv),
                    head_only=True,
                    sinks=[heads[name]],
                )
                for name, argv in readers.items()
            ],
        )
        heads = {name: sink.data.decode(errors="replace") for name, sink in heads.items()}
        index_tables = {
            (_unquote(schema_name), _unquote(index)): "%s.%s" % (_unquote(schema_name), _unquote(table))
            for index, schema_name, table in _CREATE_INDEX.findall(heads["post_sql"])
        }
        data = [line for line in heads["data"].splitlines() if _TOC_ENTRY.match(line)]
        post = [line for line in heads["post"].splitlines() if _TOC_ENTRY.match(line)]
        position = {line: index for index, line in enumerate(data + post)}
        owner = {line: _entry_table(line, index_tables) for line in position}
        tables = sorted({owner[line] for line in data if owner[line]})
        groups = share_out(tables, sizes, jobs)
        # Entries not tied to one table's data (sequence values, large objects) load with the first group.
        loose = [line for line in data if owner[line] is None]
        passes = []
        for index, group in enumerate(groups):
            members = set(group)
            entries = [line for line in data + post if owner[line] in members] + (loose if index == 0 else [])
            passes.append(session("tables-%d" % index, sorted(entries, key=position.get), head_only=False))
        if not passes:
            raise RestoreError("Failed to %s: the archive lists no table data" % verb)
        phase("tables", passes)
        loaded = set(tables)
        rest = [line for line in post if owner[line] not in loaded]
        if rest:
            phase("constraints", [session("constraints", rest)])
    timings["download"] = max(p.timings().get("source", 0.0) for p in passes)
    timings["decrypt"] = max(p.timings().get("gpg", 0.0) for p in passes)
    timings["restore"] = round(time.monotonic() - t0, 3)
    return timings


def _unquote(name):
    return name[1:-1].replace('""', '"') if len(name) > 1 and name[0] == name[-1] == '"' else name


def compare_counts(conn, database, manifest):
    with contextlib.closing(conn.connect(database)) as db:
        actual = row_counts(db.cursor())
    tables = {}
    for name in sorted(set(actual) | set(manifest.get("tables", {}))):
        want = manifest.get("tables", {}).get(name, {}).get("rows")
        got = actual.get(name)
        tables[name] = {"expected": want, "actual": got, "ok": want == got}
    return tables


def _check_jobs(jobs):
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError("Failed to restore with jobs=%r: give a whole number of sessions, 1 or more" % (jobs,))


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
    jobs=1,
):
    """Test-restore a backup into a scratch database (always dropped) and check it.

    ``jobs``: pg_restore sessions at once (see ``stream_restore``)."""
    progress = progress or (lambda message: None)
    _check_jobs(jobs)
    attempts, error_cls = [], VerifyError
    for location in _as_list(candidates):
        source = Source(location, gcs)
        try:
            manifest = source.resolve()
            decryption.preflight(manifest.get("encryption"))
            result = _verify_one(conn, source, decryption, checks, maintenance_db, progress, check_mode, jobs)
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


def _verify_one(conn, source, decryption, checks, maintenance_db, progress, check_mode, jobs):
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
            timings = stream_restore(source, decryption, conn, scratch, progress, no_owner=True, jobs=jobs)
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
    jobs=1,
):
    """Restore the first good candidate into ``database`` through a staging database.

    ``jobs``: pg_restore sessions at once (see ``stream_restore``).

    ``snapshot``: None, or kwargs for ``_dump.dump`` (dest, encryption, ...) to back up the
    current target first. Raises RestoreError (with ``partial`` holding the snapshot and the
    attempts) when no candidate could be restored; the target is then untouched.
    """
    validate_identifier(database)
    _check_jobs(jobs)
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
            timings = stream_restore(source, decryption, conn, staging, progress, no_owner=no_owner, jobs=jobs)
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
