# -*- coding: utf-8 -*-
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take an encrypted backup: pg_dump (custom format) -> compression -> gpg -> local file.

The dump reads the snapshot exported by a REPEATABLE READ transaction that also counts
every table's rows, so the counts in the manifest describe exactly the data in the dump.
A backup counts only once the file on disk has been hashed again and matches what was
streamed, and its manifest has been written beside it.
"""

from __future__ import annotations

import os
import threading
import time

from . import _manifest as manifest_mod
from ._crypto import Encryption
from ._errors import BackupError, ConfigError, DumpError, EncryptError, IntegrityError
from ._pg import Conn, exported_snapshot, row_counts, tool, tool_version, validate_identifier
from ._pipeline import FileSink, Pipeline, PipelineError, Stage, hash_file

COLLECTION_VERSION = "0.1.0"

# Measured on the sandbox dataset (docs/benchmarks.md): zstd -3 with threads beats
# pg_dump's built-in gzip on both speed and ratio; lz4 is faster but larger.
COMPRESSIONS = {
    "zstd": {"layer": "zstd", "level": 3, "max_level": 19},
    "lz4": {"layer": "lz4", "level": 1, "max_level": 12},
    "pg_dump": {"layer": None, "level": 6, "max_level": 9},
    "none": {"layer": None, "level": 0, "max_level": 0},
}
DECOMPRESS = {"zstd": ["zstd", "-q", "-d", "-c"], "lz4": ["lz4", "-q", "-d", "-c"]}


def compression_stage(algorithm, level, jobs):
    if algorithm == "zstd":
        return Stage("zstd", [tool_path("zstd"), "-q", "-c", "-T%d" % max(1, jobs), "-%d" % level])
    if algorithm == "lz4":
        return Stage("lz4", [tool_path("lz4"), "-q", "-c", "-%d" % level])
    return None


def tool_path(name):
    import shutil

    path = shutil.which(name)
    if not path:
        raise ConfigError("Failed to find %s: install it (Debian package %s)" % (name, name))
    return path


def resolve_compression(algorithm, level):
    if algorithm not in COMPRESSIONS:
        raise ConfigError("Failed to use compression %r: choose one of %s" % (algorithm, ", ".join(COMPRESSIONS)))
    spec = COMPRESSIONS[algorithm]
    level = spec["level"] if level is None else int(level)
    if not 0 <= level <= spec["max_level"]:
        raise ConfigError("Failed to use %s level %d: allowed 0..%d" % (algorithm, level, spec["max_level"]))
    return spec, level


def plan(database, dest, label=None, compression="zstd", now=None):
    """The artifact's id, layers and path, before anything is written."""
    validate_identifier(database)
    spec, _ = resolve_compression(compression, None)
    layers = ["pg_dump-custom"] + ([spec["layer"]] if spec["layer"] else []) + ["openpgp"]
    backup_id = manifest_mod.new_backup_id(label or database, now)
    name = manifest_mod.artifact_name(backup_id, layers)
    return {"backup_id": backup_id, "layers": layers, "name": name, "path": os.path.join(dest, name)}


def check_dest(dest):
    if not os.path.isdir(dest):
        raise ConfigError("Failed to use dest %s: not a directory" % dest, hint="Create it (mode 0750) first")
    if not os.access(dest, os.W_OK | os.X_OK):
        raise ConfigError("Failed to use dest %s: not writable by this user" % dest)


def dump(conn, database, dest, encryption, compression="zstd", compression_level=None, jobs=2,
         tier="tier1", retention_class="hot", label=None, progress=None, check_mode=False):
    """Back up ``database`` to ``dest``; return the result dict the module reports."""
    if not isinstance(conn, Conn) or not isinstance(encryption, Encryption):
        raise TypeError("conn must be a Conn and encryption an Encryption")
    check_dest(dest)
    encryption.preflight()
    spec, level = resolve_compression(compression, compression_level)
    for name in ("pg_dump", "gpg") + ((compression,) if spec["layer"] else ()):
        tool(name) if name == "pg_dump" else tool_path(name)
    planned = plan(database, dest, label, compression)
    if check_mode:
        with conn.connect(database):
            pass  # reachable with these credentials: the backup would run
        return {"changed": True, "path": planned["path"], "manifest_path": manifest_mod.manifest_name(planned["path"]),
                "backup_id": planned["backup_id"], "layers": planned["layers"]}

    progress = progress or (lambda message: None)
    started = manifest_mod.utcnow()
    t0 = time.monotonic()
    pg_dump_compress = level if compression == "pg_dump" else 0
    counts, count_error = {}, []
    try:
        with exported_snapshot(conn, database) as snap:
            progress("snapshot %s exported; dumping %s (%.1f MiB on disk)" % (
                snap["snapshot"], database, snap["database_size"] / 1048576.0))

            def count_rows():
                try:
                    counts.update(row_counts(snap["cursor"]))
                except Exception as exc:  # noqa: BLE001 - reported as a dump failure below
                    count_error.append(exc)

            counter = threading.Thread(target=count_rows, name="row-counts", daemon=True)
            with encryption.home() as home:
                enc_doc = encryption.describe(home)
                stages = [Stage("pg_dump", [tool("pg_dump"), "--format=custom", "--compress=%d" % pg_dump_compress,
                                            "--snapshot=%s" % snap["snapshot"], "--no-sync"]
                                + conn.cli_args(database), env=conn.env())]
                extra = compression_stage(compression, level, jobs)
                if extra:
                    stages.append(extra)
                gpg_argv, gpg_fds = encryption.stage(home)
                stages.append(Stage("gpg", gpg_argv, fds=gpg_fds))
                counter.start()
                pipeline = Pipeline(stages, sinks=[FileSink(planned["path"])], progress=progress)
                try:
                    pipeline.run()
                finally:
                    counter.join()
            if count_error:
                os.unlink(planned["path"])
                raise DumpError("Failed to count rows in %s: %s" % (database, count_error[0]))
            data_timestamp, server_version, server_version_num = (
                snap["data_timestamp"], snap["server_version"], snap["server_version_num"])
            database_size = snap["database_size"]
    except PipelineError as exc:
        error_cls = EncryptError if exc.failed_stage == "gpg" else DumpError
        raise error_cls(
            "Failed to back up %s: %s" % (database, exc),
            hint="Nothing was kept: the partial file %s.partial was removed" % planned["path"],
        ) from exc

    written = pipeline.output.result()
    landed = hash_file(planned["path"])
    if landed != written:
        os.unlink(planned["path"])
        raise IntegrityError("Failed to verify local copy %s: it does not match what was written (%s vs %s); "
                             "removed it" % (planned["path"], landed, written))
    finished = manifest_mod.utcnow()
    duration = time.monotonic() - t0
    doc = {
        "manifest_version": manifest_mod.MANIFEST_VERSION,
        "kind": "postgresql",
        "backup_id": planned["backup_id"],
        "label": label or database,
        "database": database,
        "started_at": manifest_mod.isoformat(started),
        "finished_at": manifest_mod.isoformat(finished),
        "duration_s": round(duration, 3),
        "tier": tier,
        "retention_class": retention_class,
        "source": {
            "host": conn.host, "port": conn.port, "server_version": server_version,
            "server_version_num": server_version_num, "database_size": database_size,
            "data_timestamp": manifest_mod.isoformat(data_timestamp),
        },
        "tool": {"name": "diagnosticpro.dr", "version": COLLECTION_VERSION,
                 "pg_dump_version": tool_version("pg_dump"), "format": "custom"},
        "artifact": dict(written, name=planned["name"], layers=planned["layers"],
                         content_type="application/pgp-encrypted"),
        "compression": {"algorithm": compression, "level": level, "pg_dump_compress": pg_dump_compress},
        "encryption": enc_doc,
        "tables": {name: {"rows": rows} for name, rows in sorted(counts.items())},
    }
    manifest_path = manifest_mod.write(doc, manifest_mod.manifest_name(planned["path"]))
    total_rows = sum(counts.values())
    progress("backup %s: %.1f MiB in %.1fs, %d rows in %d tables" % (
        planned["backup_id"], written["size"] / 1048576.0, duration, total_rows, len(counts)))
    return {
        "changed": True,
        "path": planned["path"],
        "manifest_path": manifest_path,
        "backup_id": planned["backup_id"],
        "size": written["size"],
        "sha256": written["sha256"],
        "crc32c": written["crc32c"],
        "duration_s": round(duration, 3),
        "throughput_mb_s": round(database_size / 1e6 / max(duration, 1e-6), 2),
        "rows": total_rows,
        "commands": pipeline.commands(),
        "manifest": doc,
    }


__all__ = ["dump", "plan", "COMPRESSIONS", "DECOMPRESS", "BackupError"]
