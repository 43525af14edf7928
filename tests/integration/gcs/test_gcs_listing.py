"""Listing, selection and streaming reads against the real fake-gcs-server."""

from __future__ import annotations

import datetime
import json
import os
import threading

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _gcs, _manifest
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import (
    DownloadError,
    IntegrityError,
    VerifyError,
)
from sandbox.services import free_port
from tests.integration.gcs.gcs_helpers import MIB, write_backup

HOUR = datetime.timedelta(hours=1)


@pytest.fixture()
def history(client, buckets, workdir, prefix):
    """Three backups of appdb 3 h, 2 h and 1 h old, one of otherdb; the newest appdb backup is
    missing from the tertiary bucket (its upload there never happened)."""
    now = _manifest.utcnow()
    made = {}
    for hours, database in ((3, "appdb"), (2, "appdb"), (1, "appdb"), (2.5, "otherdb")):
        path, doc = write_backup(
            os.path.join(workdir, str(hours)), 64 * 1024, database=database, data_timestamp=now - hours * HOUR
        )
        targets = buckets[:2] if hours == 1 else buckets
        _gcs.upload_backup(client, path, targets, prefix=prefix)
        made[hours] = doc
    return now, made


def url(bucket, prefix, doc):
    return "gs://%s/%s%s" % (bucket["name"], prefix, doc["artifact"]["name"])


def test_latest_candidates_age_and_database_filter(client, buckets, prefix, history):
    now, made = history
    listing = _gcs.list_backups(client, buckets, prefix, database="appdb", now=now)

    assert listing["errors"] == []
    newest, middle, oldest = made[1], made[2], made[3]
    assert listing["selected"]["backup_id"] == newest["backup_id"]
    assert listing["selected"]["bucket"] == buckets[0]["name"]
    assert listing["candidates"] == (
        [url(b, prefix, newest) for b in buckets[:2]]
        + [url(b, prefix, middle) for b in buckets]
        + [url(b, prefix, oldest) for b in buckets]
    )
    assert [b["backup_id"] for b in listing["backups"]] == [newest["backup_id"]] * 2 + [middle["backup_id"]] * 3 + [
        oldest["backup_id"]
    ] * 3
    entry = listing["selected"]
    assert entry["age_s"] == pytest.approx(3600, abs=1)
    assert (entry["database"], entry["size"], entry["sha256"], entry["tier"]) == (
        "appdb",
        64 * 1024,
        newest["artifact"]["sha256"],
        "tier1",
    )
    assert entry["manifest_url"] == entry["url"] + _manifest.MANIFEST_SUFFIX
    assert entry["verified"] is False and entry["verified_at"] is None

    everything = _gcs.list_backups(client, buckets, prefix, select="all", now=now)
    assert (everything["selected"], everything["candidates"]) == (None, [])
    assert len(everything["backups"]) == 11
    assert {b["database"] for b in everything["backups"]} == {"appdb", "otherdb"}


def test_latest_before_and_backup_id(client, buckets, prefix, history):
    now, made = history
    before = _manifest.isoformat(now - 1.5 * HOUR)
    listing = _gcs.list_backups(client, buckets, prefix, database="appdb", select="latest_before", before=before)
    assert listing["selected"]["backup_id"] == made[2]["backup_id"]
    assert listing["candidates"] == [url(b, prefix, made[2]) for b in buckets] + [
        url(b, prefix, made[3]) for b in buckets
    ]

    listing = _gcs.list_backups(client, buckets, prefix, select="backup_id", backup_id=made[3]["backup_id"])
    assert listing["candidates"] == [url(b, prefix, made[3]) for b in buckets]

    listing = _gcs.list_backups(client, buckets, prefix, select="backup_id", backup_id="appdb-nope")
    assert (listing["selected"], listing["candidates"]) == (None, [])


def test_only_manifests_with_matching_data_count(client, buckets, workdir, prefix, history):
    _unused, made = history
    bucket = client.bucket(buckets[0]["name"])
    # Stray data without a manifest, a staging object, and a manifest whose data is gone.
    bucket.blob(prefix + "appdb-stray.dump.zst.gpg").upload_from_string(b"partial")
    bucket.blob(prefix + _gcs.STAGING_DIR + "x.manifest.json").upload_from_string(b"{}")
    bucket.blob(prefix + made[3]["artifact"]["name"]).delete()

    listing = _gcs.list_backups(client, buckets, prefix, database="appdb")
    urls = [b["url"] for b in listing["backups"]]
    assert url(buckets[0], prefix, made[3]) not in urls and url(buckets[1], prefix, made[3]) in urls
    assert not any("stray" in u or _gcs.STAGING_DIR in u for u in urls)
    errors = [(e["bucket"], e["url"]) for e in listing["errors"]]
    assert errors == [(buckets[0]["name"], url(buckets[0], prefix, made[3]))]
    assert "its manifest exists but the data object is missing" in listing["errors"][0]["msg"]


def test_verified_from_a_successful_record(client, buckets, prefix, history):
    _unused, made = history
    name = prefix + made[1]["artifact"]["name"]
    _gcs.write_record(client, buckets[1]["name"], _gcs.verify_record_name(name), json.dumps({"ok": False}))
    _gcs.write_record(
        client,
        buckets[1]["name"],
        _gcs.verify_record_name(name),
        json.dumps({"ok": True, "verified_at": "2026-12-03T03:10:44.000000Z"}),
    )
    listing = _gcs.list_backups(client, buckets, prefix, database="appdb")
    copies = [
        (b["bucket"], b["verified"], b["verified_at"])
        for b in listing["backups"]
        if b["backup_id"] == made[1]["backup_id"]
    ]
    assert copies == [(buckets[0]["name"], False, None), (buckets[1]["name"], True, "2026-12-03T03:10:44.000000Z")]


def test_missing_bucket_and_unreachable_server_go_to_errors(client, buckets, prefix, history):
    targets = buckets + [{"name": "dp-test-does-not-exist", "region": "asia-east1"}]
    listing = _gcs.list_backups(client, targets, prefix, database="appdb")
    assert listing["selected"] is not None
    assert [(e["bucket"], e["url"]) for e in listing["errors"]] == [("dp-test-does-not-exist", None)]
    assert "check that bucket dp-test-does-not-exist exists" in listing["errors"][0]["msg"]

    down = _gcs.connect(endpoint="http://127.0.0.1:%d" % free_port(), timeout=2, retry_deadline=1)
    with pytest.raises(DownloadError, match="Failed to list backups in any bucket.*cannot reach the GCS") as err:
        _gcs.list_backups(down, buckets, prefix)
    assert len(err.value.partial["errors"]) == 3


def test_download_chunks_streams_bounded_and_verified(client, buckets, workdir, prefix):
    path, doc = write_backup(workdir, 10 * MIB + 123)
    _gcs.upload_backup(client, path, buckets[:1], prefix=prefix)
    name = prefix + doc["artifact"]["name"]
    sizes = []
    with open(path, "rb") as local:
        for chunk in _gcs.download_chunks(client, buckets[0]["name"], name, chunk_size=3 * MIB):
            sizes.append(len(chunk))
            assert chunk == local.read(len(chunk))
        assert local.read() == b""
    assert max(sizes) == 3 * MIB and sum(sizes) == 10 * MIB + 123

    assert _gcs.read_manifest(client, buckets[0]["name"], name) == doc
    with pytest.raises(VerifyError, match="not a backup"):
        _gcs.read_manifest(client, buckets[0]["name"], prefix + "nothing.dump.zst.gpg")
    with pytest.raises(DownloadError, match="no such object"):
        list(_gcs.download_chunks(client, buckets[0]["name"], prefix + "nothing"))


def test_download_resumes_when_the_server_comes_back(own_gcs, buckets, workdir):
    client = _gcs.connect(endpoint=own_gcs.endpoint, timeout=5, retry_deadline=30)
    path, doc = write_backup(workdir, 9 * MIB)
    _gcs.upload_backup(client, path, buckets[:1], prefix="")
    stream = _gcs.download_chunks(client, buckets[0]["name"], doc["artifact"]["name"], chunk_size=1 * MIB)
    received = [next(stream)]
    own_gcs.stop()
    restart = threading.Timer(1.0, own_gcs.start)
    restart.start()
    try:
        received.extend(stream)
    finally:
        restart.join()
    with open(path, "rb") as handle:
        assert b"".join(received) == handle.read()


def test_download_detects_a_corrupted_object(own_gcs, buckets, workdir):
    """The emulator keeps the CRC32C it computed at upload; bytes flipped on its disk afterwards
    are caught by the end-of-stream check."""
    client = _gcs.connect(endpoint=own_gcs.endpoint, retry_deadline=5)
    path, doc = write_backup(workdir, 2 * MIB)
    _gcs.upload_backup(client, path, buckets[:1], prefix="")
    with open(own_gcs.object_path(buckets[0]["name"], doc["artifact"]["name"]), "r+b") as handle:
        handle.seek(MIB)
        byte = handle.read(1)
        handle.seek(MIB)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(IntegrityError, match="CRC32C of the received bytes"):
        list(_gcs.download_chunks(client, buckets[0]["name"], doc["artifact"]["name"]))
