"""Everything measured at one dataset size: load, four backups, two restores, the codec study."""

from __future__ import annotations

import contextlib
import time

from sandbox import datagen

# The codec study: pg_dump's own gzip against external compressors fed an uncompressed dump.
# The collection's compressors come from _artifact.compression_stage, so this measures its argv.
COMPRESSION_VARIANTS = {
    "pg_dump -Z0 (none)": {"pg_dump_level": 0, "algorithm": None, "level": None},
    "pg_dump -Z6 (built-in gzip)": {"pg_dump_level": 6, "algorithm": None, "level": None},
    "zstd -1 -T2": {"pg_dump_level": 0, "algorithm": "zstd", "level": 1},
    "zstd -3 -T2 (collection default)": {"pg_dump_level": 0, "algorithm": "zstd", "level": 3},
    "lz4 -1": {"pg_dump_level": 0, "algorithm": "lz4", "level": 1},
}
PROGRESS_EVERY_S = 10.0


def say(size_mb, message):
    print("[%5d MB] %s" % (size_mb, message), flush=True)


def load_dataset(env, size_mb):
    """A fresh database holding the sandbox dataset at ``size_mb``; loaded once per invocation."""
    name = "diagnosticpro_%dmb" % size_mb
    env.query('CREATE DATABASE "%s"' % name)
    started = time.monotonic()
    last = [started]

    def progress(table, rows, sent):
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            say(size_mb, "loading: %s, %d rows, %.0f MB sent" % (table, rows, sent / 1e6))

    datagen.load(env.pg.conninfo(name), size_mb, progress=progress)
    with contextlib.closing(env.pg.connect(name)) as conn:
        rows = datagen.row_counts(conn)
    info = {
        "name": name,
        "size_mb": size_mb,
        "bytes": env.database_size(name),
        "rows": rows,
        "load_s": round(time.monotonic() - started, 1),
    }
    say(
        size_mb,
        "loaded %s: %.1f MB on disk, %d rows in %.0f s"
        % (name, info["bytes"] / 1e6, sum(rows.values()), info["load_s"]),
    )
    return info


def runbook_object(db):
    return "database/%s/db_backup.sql.gpg" % db["name"]


def _report(size_mb, what, result):
    if "error" in result:
        say(size_mb, "%s FAILED: %s" % (what, result["error"]))
    else:
        say(size_mb, "%s: %.1f s %s" % (what, result["wall_s"], result["phases"]))
    return result


def run_backups(env, runner, pgbackrest, db):
    size, name = db["size_mb"], db["name"]
    runs = {
        "pg_dump": lambda: runner.run("pg_dump_limit", database=name),
        "runbook": lambda: runner.run("runbook_backup", database=name, object=runbook_object(db)),
        "ours": lambda: runner.run("ours_backup", database=name, prefix="database/%s/" % name),
        "ours_then_upload": lambda: runner.run(
            "ours_backup_then_upload", database=name, prefix="database/%s/sequential/" % name
        ),
    }
    results = {key: _report(size, "backup %s" % key, run()) for key, run in runs.items()}
    if pgbackrest:
        results["pgbackrest"] = _report(size, "backup pgbackrest", _pgbackrest_backup(runner, pgbackrest))
    return results


def _pgbackrest_backup(runner, pgbackrest):
    try:
        with pgbackrest.archiving():
            result = runner.run("pgbackrest_backup", argv=pgbackrest.backup_argv())
        if "error" not in result:
            backup = pgbackrest.last_backup()
            result.update(artifact_bytes=backup["repository_bytes"], details=backup)
    except RuntimeError as exc:  # `pgbackrest check` or `info` failed: the row says so, the rest still runs
        result = {"error": str(exc)}
    return result


def _restore(env, runner, db, method, **spec):
    """Restore into a new database, check every table's row count against the source, drop it."""
    target = "restored_%s_%dmb" % (method, db["size_mb"])
    case = {"limit": "restore_limit", "ours_2": "ours_restore"}.get(method, "%s_restore" % method)
    result = runner.run(case, target=target, **spec)
    if "error" not in result:
        with contextlib.closing(env.pg.connect(target)) as conn:
            result["rows_match"] = datagen.row_counts(conn) == db["rows"]
    env.drop_database(target)
    return _report(db["size_mb"], "restore %s" % method, result)


def run_restores(env, runner, db, backups):
    results = {"limit": _restore(env, runner, db, "limit", database=db["name"])}
    for method in ("runbook", "ours", "ours_2"):
        backup = backups["ours" if method == "ours_2" else method]
        if "error" in backup:
            results[method] = {"error": "no backup to restore: its backup case failed"}
            continue
        source = {"object": runbook_object(db)} if method == "runbook" else {"url": backup["details"]["url"]}
        if method == "ours_2":
            source["jobs"] = 2
        results[method] = _restore(env, runner, db, method, **source)
        results[method].setdefault("artifact_bytes", backup["artifact_bytes"])
    return results


def run_compression(runner, db):
    return {
        label: _report(
            db["size_mb"], "codec %s" % label, runner.run("compression", database=db["name"], variant=variant)
        )
        for label, variant in COMPRESSION_VARIANTS.items()
    }


def warm_up(runner, db):
    """One untimed dump first, so the first measured case does not pay for a cold read."""
    result = runner.run("compression", database=db["name"], variant=COMPRESSION_VARIANTS["pg_dump -Z0 (none)"])
    db["warmup_s"] = result.get("wall_s")
    _report(db["size_mb"], "warm-up (untimed) dump", result)


def run_size(env, runner, pgbackrest, size_mb, compression=True):
    db = load_dataset(env, size_mb)
    warm_up(runner, db)
    backups = run_backups(env, runner, pgbackrest, db)
    result = {
        "database": db,
        "backup": backups,
        "restore": run_restores(env, runner, db, backups),
        "compression": run_compression(runner, db) if compression else {},
    }
    env.drop_database(db["name"])  # the next size loads its own
    return result
