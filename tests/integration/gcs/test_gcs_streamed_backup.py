"""A backup streamed to the buckets while it is written (``_gcs.backup_and_upload``): the
real dump, the real emulator. Published exactly like ``upload_backup``; a failed dump leaves
nothing in any bucket; a failed upload leaves a complete local backup that can be sent later."""

from __future__ import annotations

import functools
import os
import threading
import time

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _dump, _gcs, _restore
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import DumpError, UploadError
from sandbox import datagen
from tests.integration.gcs.gcs_helpers import MIB, names
from tests.integration.helpers import checksums, kill_process, ls, symmetric

STREAM_DB = "diagnosticpro_stream"
# Uncompressed, so the artifact (~30 MB) is well above the 8 MiB under which objects are sent
# in one request, and small chunks, so it goes out in many pieces while the dump runs.
STREAM_DB_MB = 40
CHUNK = 2 * MIB


@pytest.fixture(scope="module")
def stream_db(pg):
    pg.psql("CREATE DATABASE %s" % STREAM_DB)
    datagen.load(pg.conninfo(STREAM_DB), STREAM_DB_MB)
    yield STREAM_DB
    pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % STREAM_DB)


def _backup(conn, dest, encryption, messages=None):
    return functools.partial(
        _dump.dump, conn, STREAM_DB, dest, encryption, compression="none", progress=(messages or []).append
    )


def _no_objects(client, buckets, prefix):
    for entry in buckets:
        assert names(client, entry["name"], prefix) == [], "objects left in %s" % entry["name"]


# 2 MiB: a dozen parts, composed at once; 256 KiB: over a hundred, composed in rounds of 32.
@pytest.mark.parametrize("part_size", [CHUNK, 256 * 1024], ids=["one-compose", "compose-in-rounds"])
def test_streamed_backup_is_published_verified_and_restores(
    pg, conn, keys, stream_db, dest, client, buckets, prefix, fresh_db_name, part_size
):
    encryption, decryption = symmetric(keys)
    messages = []
    result = _gcs.backup_and_upload(
        lambda followers: _backup(conn, dest, encryption, messages)(followers=followers),
        client,
        buckets[:2],
        prefix=prefix,
        chunk_size=part_size,
        progress=messages.append,
    )
    parts = -(-result["size"] // part_size)
    assert parts > (_gcs.COMPOSE_MAX if part_size < CHUNK else 1)

    assert result["size"] > 8 * MIB
    assert [(u["action"], u["verified"]) for u in result["uploads"]] == [("upload", True), ("upload", True)]
    for upload, entry in zip(result["uploads"], buckets):
        streamed = "%s: %d bytes were streamed during the backup in %d parts" % (entry["name"], result["size"], parts)
        assert streamed in messages
        blob = client.bucket(entry["name"]).get_blob(_gcs.parse_url(upload["url"])[1])
        assert (blob.size, blob.crc32c, blob.metadata["sha256"]) == (result["size"], result["crc32c"], result["sha256"])
        # Nothing but the artifact and its manifest: the parts and intermediate objects are gone.
        assert names(client, entry["name"], prefix) == sorted(
            [prefix + os.path.basename(result["path"]), prefix + os.path.basename(result["manifest_path"])]
        )
    # The local copy is a complete backup too, and a later upload finds nothing to do.
    again = _gcs.upload_backup(client, result["path"], buckets[:2], prefix=prefix)
    assert again["changed"] is False

    url = result["uploads"][1]["url"]
    restored = _restore.restore(conn, [url], fresh_db_name, decryption, gcs={"endpoint": client.endpoint})
    assert restored["source"] == url
    assert checksums(pg, fresh_db_name) == checksums(pg, STREAM_DB)


def _when_written(dest, size, action):
    """Run ``action()`` once the local copy being written in ``dest`` has ``size`` bytes: by then
    several chunks have been streamed and more are in flight."""
    done = []

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = [f for f in ls(dest) if f.endswith(".partial")]
            try:
                if partial and os.path.getsize(os.path.join(dest, partial[0])) >= size:
                    done.append(action())
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, done


def test_dump_killed_midway_leaves_nothing_in_any_bucket(conn, keys, stream_db, dest, client, buckets, prefix):
    encryption, _unused = symmetric(keys)
    thread, killed = _when_written(dest, 3 * CHUNK, lambda: kill_process("pg_dump", "--snapshot="))
    with pytest.raises(DumpError, match="pg_dump was killed by SIGKILL"):
        _gcs.backup_and_upload(
            lambda followers: _backup(conn, dest, encryption)(followers=followers),
            client,
            buckets[:2],
            prefix=prefix,
            chunk_size=CHUNK,
        )
    thread.join()
    assert killed and killed[0], "pg_dump was never killed"
    assert [f for f in ls(dest) if not f.startswith(".")] == []
    # Neither a partial object nor a staging object: the streams were cancelled and removed.
    _no_objects(client, buckets[:2], prefix)


@pytest.mark.slow
def test_server_stopped_while_streaming_leaves_a_complete_local_backup(conn, keys, stream_db, dest, own_gcs, buckets):
    """The emulator dies during the dump: the dump still completes on local disk, the error
    names that copy, nothing passes for a backup in the bucket, and the copy uploads later."""
    encryption, _unused = symmetric(keys)
    client = _gcs.connect(endpoint=own_gcs.endpoint, timeout=5, retry_deadline=2)
    prefix = "database/"
    backup = _backup(conn, dest, encryption)
    thread, stopped = _when_written(dest, 3 * CHUNK, own_gcs.stop)
    with pytest.raises(UploadError) as err:
        _gcs.backup_and_upload(
            lambda followers: backup(followers=followers), client, buckets[:1], prefix=prefix, chunk_size=CHUNK
        )
    thread.join()
    assert stopped, "the emulator was never stopped"
    message = str(err.value)
    local = err.value.partial["path"]
    assert "Backup %s is complete at %s, but its upload failed" % (err.value.partial["backup_id"], local) in message
    assert "cannot reach the GCS endpoint %s" % own_gcs.endpoint in message
    assert os.path.isfile(local) and os.path.isfile(err.value.partial["manifest_path"])

    own_gcs.start()
    assert _gcs.list_backups(client, buckets[:1], prefix)["backups"] == []
    result = _gcs.upload_backup(_gcs.connect(endpoint=own_gcs.endpoint), local, buckets[:1], prefix=prefix)
    assert result["uploads"][0]["verified"] is True
    assert len(_gcs.list_backups(client, buckets[:1], prefix)["backups"]) == 1


def test_module_streams_to_the_buckets_and_the_upload_after_it_sends_nothing(
    pg, keys, stream_db, dest, gcs, buckets, prefix, tmp_path
):
    """pg_encrypted_dump with buckets, as the pg_backup role runs it: check mode sends nothing;
    the real run publishes in every bucket; gcs_backup_upload afterwards only checks; the copy
    passes backup_verify with jobs=2."""
    from tests.integration.gcs.test_gcs_modules import run_tasks

    auth = {"endpoint": gcs.endpoint, "retry_deadline": 5}
    dump = dict(
        database=STREAM_DB,
        host=pg.host,
        port=pg.port,
        user=pg.superuser,
        password_file=pg.passfile,
        passphrase_file=keys["passphrase_file"],
        dest=dest,
        compression="none",
        buckets=buckets[:2],
        prefix=prefix,
        chunk_size_mb=2,
        **auth,
    )
    planned, done = run_tasks(tmp_path, ("pg_encrypted_dump", dump, True), ("pg_encrypted_dump", dump, False))
    assert planned["changed"] and not planned.get("failed"), planned
    assert done["changed"] and not done.get("failed"), done.get("msg")
    assert [(u["bucket"], u["verified"]) for u in done["uploads"]] == [(b["name"], True) for b in buckets[:2]]
    client = _gcs.connect(**auth)
    for entry in buckets[:2]:
        assert names(client, entry["name"], prefix) == sorted(
            [prefix + os.path.basename(done["path"]), prefix + os.path.basename(done["manifest_path"])]
        )
    (again,) = run_tasks(
        tmp_path, ("gcs_backup_upload", dict(src=done["path"], buckets=buckets[:2], prefix=prefix, **auth), False)
    )
    assert again["changed"] is False and not again.get("failed"), again
    assert [u["action"] for u in again["uploads"]] == ["none", "none"]

    # The secondary region's copy passes a test restore with two sessions.
    verify = dict(
        backup=[done["uploads"][1]["url"]],
        host=pg.host,
        port=pg.port,
        user=pg.superuser,
        password_file=pg.passfile,
        passphrase_file=keys["passphrase_file"],
        jobs=2,
        **auth,
    )
    (verified,) = run_tasks(tmp_path, ("backup_verify", verify, False))
    assert verified["ok"] and not verified.get("failed"), verified.get("msg")
    assert verified["rows_verified"] == done["rows"]
