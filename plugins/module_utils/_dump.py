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

from . import _artifact
from . import _manifest as manifest_mod
from ._artifact import check_dest
from ._crypto import Encryption
from ._errors import DumpError
from ._pg import Conn, exported_snapshot, row_counts, table_sizes, tool, tool_version, validate_identifier
from ._pipeline import Stage


def plan(
    database,
    dest,
    label=None,
    compression="zstd",
    compression_level=None,
    tier="tier1",
    retention_class="hot",
    now=None,
):
    validate_identifier(database)
    return _artifact.plan(
        label or database, dest, "pg_dump-custom", compression, compression_level, tier, retention_class, now
    )


def dump(
    conn,
    database,
    dest,
    encryption,
    compression="zstd",
    compression_level=None,
    jobs=2,
    tier="tier1",
    retention_class="hot",
    label=None,
    progress=None,
    check_mode=False,
    followers=(),
):
    """Back up ``database`` to ``dest``; return the result dict the module reports.

    ``followers`` read the local copy while it is written (``_gcs.backup_and_upload``)."""
    if not isinstance(conn, Conn) or not isinstance(encryption, Encryption):
        raise TypeError("conn must be a Conn and encryption an Encryption")
    check_dest(dest)
    encryption.preflight()
    tool("pg_dump")
    planned = plan(database, dest, label, compression, compression_level, tier, retention_class)
    level = planned["level"]
    if check_mode:
        with conn.connect(database):
            pass  # reachable with these credentials: the backup would run
        return _artifact.planned_result(planned)

    progress = progress or (lambda message: None)
    started, t0 = manifest_mod.utcnow(), time.monotonic()
    pg_dump_compress = level if compression == "pg_dump" else 0
    counts, sizes, count_error = {}, {}, []
    with exported_snapshot(conn, database) as snap:
        progress(
            "snapshot %s exported; dumping %s (%.1f MiB on disk)"
            % (snap["snapshot"], database, snap["database_size"] / 1048576.0)
        )

        def count_rows():
            try:
                sizes.update(table_sizes(snap["cursor"]))
                counts.update(row_counts(snap["cursor"]))
            except Exception as exc:  # noqa: BLE001 - reported as a dump failure below
                count_error.append(exc)

        counter = threading.Thread(target=count_rows, name="row-counts", daemon=True)
        counter.start()
        pg_dump = Stage(
            "pg_dump",
            [
                tool("pg_dump"),
                "--format=custom",
                "--compress=%d" % pg_dump_compress,
                "--snapshot=%s" % snap["snapshot"],
                "--no-sync",
            ]
            + conn.cli_args(database),
            env=conn.env(),
        )
        try:
            pipeline, enc_doc, written = _artifact.encrypt_to_file(
                planned,
                encryption,
                "back up %s" % database,
                head=[pg_dump],
                jobs=jobs,
                progress=progress,
                followers=followers,
            )
        finally:
            counter.join()
        if count_error:
            os.unlink(planned["path"])
            raise DumpError("Failed to count rows in %s: %s" % (database, count_error[0]))
    doc, manifest_path = _artifact.write_manifest(
        "postgresql",
        planned,
        written,
        enc_doc,
        started,
        t0,
        {
            "database": database,
            "source": {
                "host": conn.host,
                "port": conn.port,
                "server_version": snap["server_version"],
                "server_version_num": snap["server_version_num"],
                "database_size": snap["database_size"],
                "data_timestamp": manifest_mod.isoformat(snap["data_timestamp"]),
            },
            "tool": {"pg_dump_version": tool_version("pg_dump"), "format": "custom"},
            "compression": {"pg_dump_compress": pg_dump_compress},
            # Bytes on disk let a parallel restore share the tables out evenly.
            "tables": {name: {"rows": rows, "bytes": sizes.get(name)} for name, rows in sorted(counts.items())},
        },
    )
    total_rows = sum(counts.values())
    progress(
        "backup %s: %.1f MiB in %.1fs, %d rows in %d tables"
        % (planned["backup_id"], written["size"] / 1048576.0, doc["duration_s"], total_rows, len(counts))
    )
    return dict(
        _artifact.result(planned, manifest_path, written, doc, pipeline),
        rows=total_rows,
        throughput_mb_s=round(snap["database_size"] / 1e6 / max(doc["duration_s"], 1e-6), 2),
    )
