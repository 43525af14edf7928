"""Restores with several pg_restore sessions (``jobs``): the artifact is streamed once per
session, never decrypted to disk. The result must be the database a one-session restore
gives, down to the schema, and every failure must leave the target as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _crypto, _dump, _gcs, _manifest, _pg, _restore
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError, RestoreError
from tests.integration.helpers import checksums, databases, kill_when_running, symmetric


@pytest.fixture(scope="module")
def backup(source_db, pg, keys, buckets, gcs):
    conn = _pg.Conn(host=pg.host, port=pg.port, user=pg.superuser, password_file=pg.passfile)
    out = tempfile.mkdtemp(prefix="dr-test-parallel-")
    taken = _dump.dump(conn, source_db["name"], out, symmetric(keys)[0], label="parallel")
    uploaded = _gcs.upload_backup(_gcs.connect(endpoint=gcs.endpoint), taken["path"], buckets[:1], prefix="parallel/")
    yield dict(taken, url=uploaded["uploads"][0]["url"])
    shutil.rmtree(out, ignore_errors=True)


def _schema(conn, database):
    """`pg_dump --schema-only` of ``database``, without the per-run \\restrict key lines."""
    out = subprocess.run(
        [_pg.tool("pg_dump"), "--schema-only", *conn.cli_args(database)],
        env=conn.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("where", ["local", "gcs"])
def test_parallel_restore_gives_the_same_database(pg, conn, keys, gcs, backup, source_db, fresh_db_name, jobs, where):
    messages = []
    location = backup["path"] if where == "local" else backup["url"]
    result = _restore.restore(
        conn,
        [location],
        fresh_db_name,
        symmetric(keys)[1],
        gcs={"endpoint": gcs.endpoint},
        jobs=jobs,
        progress=messages.append,
    )
    assert checksums(pg, fresh_db_name) == source_db["checksums"]
    # Same tables, keys, indexes, foreign keys, views, functions and triggers as the source.
    assert _schema(conn, fresh_db_name) == _schema(conn, source_db["name"])
    assert any(m.endswith("tables, %d session(s)" % jobs) for m in messages), messages
    assert {"schema", "tables", "constraints", "download", "decrypt", "restore"} <= set(result["timings"])
    assert all(t["ok"] for t in result["tables"].values())


def test_parallel_verify(conn, keys, backup):
    result = _restore.verify(conn, backup["path"], symmetric(keys)[1], jobs=2)
    assert result["ok"] and result["rows_verified"] == sum(t["rows"] for t in backup["manifest"]["tables"].values())


def test_flipped_byte_refused_by_every_pass(pg, conn, keys, backup, fresh_db_name, tmp_path):
    copy = str(tmp_path / os.path.basename(backup["path"]))
    with open(backup["path"], "rb") as handle:
        data = bytearray(handle.read())
    data[len(data) * 2 // 3] ^= 0x01
    with open(copy, "wb") as handle:
        handle.write(data)
    shutil.copy(backup["manifest_path"], _manifest.manifest_name(copy))
    before = databases(pg)
    with pytest.raises(RestoreError, match="corrupt or incomplete") as info:
        _restore.restore(conn, [copy], fresh_db_name, symmetric(keys)[1], jobs=2)
    assert "%s is unchanged" % fresh_db_name in str(info.value)
    assert databases(pg) == before, "a staging database was left behind"


def test_pg_restore_killed_in_one_pass_stops_all_and_leaves_nothing(pg, conn, keys, backup, fresh_db_name):
    before = databases(pg)
    thread, killed = kill_when_running("pg_restore", "tables-1.list")
    with pytest.raises(RestoreError, match="pg_restore was killed by SIGKILL") as info:
        _restore.restore(conn, [backup["path"]], fresh_db_name, symmetric(keys)[1], jobs=2)
    thread.join()
    assert killed, "the second table pass was never seen running"
    assert "%s is unchanged" % fresh_db_name in str(info.value)
    assert databases(pg) == before, "a staging database was left behind"


def test_wrong_passphrase_fails_in_the_first_phase(pg, conn, backup, fresh_db_name, tmp_path):
    # Without a key id in the manifest, the first thing to notice is gpg, in four passes at once.
    copy = str(tmp_path / os.path.basename(backup["path"]))
    shutil.copy(backup["path"], copy)
    doc = _manifest.read(backup["manifest_path"])
    del doc["encryption"]["key_id"]
    _manifest.write(doc, _manifest.manifest_name(copy))
    key = tmp_path / "wrong.key"
    key.write_text("not the key\n")
    key.chmod(0o600)
    before = databases(pg)
    with pytest.raises(RestoreError, match="wrong passphrase or key"):
        _restore.restore(conn, [copy], fresh_db_name, _crypto.Decryption(passphrase_file=str(key)), jobs=2)
    assert databases(pg) == before


def test_jobs_must_be_positive(conn, keys, backup, fresh_db_name):
    with pytest.raises(ConfigError, match="jobs=0"):
        _restore.restore(conn, [backup["path"]], fresh_db_name, symmetric(keys)[1], jobs=0)
