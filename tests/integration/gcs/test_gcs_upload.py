"""Uploads against the real fake-gcs-server: verified, idempotent, refusing, all-or-nothing."""

from __future__ import annotations

import json
import os
import threading

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _gcs, _manifest
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import IntegrityError, UploadError
from tests.integration.gcs.gcs_helpers import MIB, names, write_backup

CHUNK = 8 * MIB  # several chunks per large test artifact, so the resumable path really resumes


@pytest.mark.parametrize("size", [300 * 1024, 20 * MIB], ids=["multipart", "staged-resumable"])
def test_upload_to_three_buckets_verified_manifest_last(client, buckets, workdir, prefix, size):
    path, doc = write_backup(workdir, size)
    result = _gcs.upload_backup(client, path, buckets, prefix=prefix, chunk_size=CHUNK)

    assert result["changed"] is True
    assert result["backup_id"] == doc["backup_id"]
    assert [u["bucket"] for u in result["uploads"]] == [b["name"] for b in buckets]
    for upload, entry in zip(result["uploads"], buckets):
        assert (upload["action"], upload["changed"], upload["verified"]) == ("upload", True, True)
        assert upload["error"] is None
        assert upload["region"] == entry["region"]
        bucket, name = _gcs.parse_url(upload["url"])
        data = client.bucket(bucket).get_blob(name)
        manifest = client.bucket(bucket).get_blob(name + _manifest.MANIFEST_SUFFIX)
        assert (data.size, data.crc32c) == (size, doc["artifact"]["crc32c"]) == (upload["size"], upload["crc32c"])
        assert data.generation == upload["generation"]
        assert data.metadata["sha256"] == doc["artifact"]["sha256"]
        assert data.metadata["backup_id"] == doc["backup_id"]
        assert data.metadata["layers"] == "pg_dump-custom,zstd,openpgp"
        assert (data.content_type, manifest.content_type) == ("application/pgp-encrypted", "application/json")
        assert json.loads(manifest.download_as_bytes()) == doc
        # The manifest was created after the data object was in place (generations are write times).
        assert manifest.generation > data.generation
        # The staging object is gone: only the backup itself is left.
        assert names(client, bucket, prefix) == [name, name + _manifest.MANIFEST_SUFFIX]


def test_second_upload_is_unchanged_and_check_mode_writes_nothing(client, buckets, workdir, prefix):
    path, _unused = write_backup(workdir, 12 * MIB)
    first = _gcs.upload_backup(client, path, buckets, prefix=prefix, chunk_size=CHUNK)

    again = _gcs.upload_backup(client, path, buckets, prefix=prefix, chunk_size=CHUNK)
    assert again["changed"] is False
    assert [(u["action"], u["changed"], u["verified"]) for u in again["uploads"]] == [("none", False, True)] * 3
    assert [u["generation"] for u in again["uploads"]] == [u["generation"] for u in first["uploads"]]

    before = {b["name"]: names(client, b["name"], prefix) for b in buckets}
    new_path, _unused = write_backup(os.path.join(workdir, "new"), 12 * MIB)
    plan = _gcs.upload_backup(client, new_path, buckets, prefix=prefix, check_mode=True)
    assert plan["changed"] is True
    assert [(u["action"], u["changed"], u["verified"], u["generation"]) for u in plan["uploads"]] == [
        ("upload", True, False, None)
    ] * 3
    assert {b["name"]: names(client, b["name"], prefix) for b in buckets} == before

    plan = _gcs.upload_backup(client, path, buckets, prefix=prefix, check_mode=True)
    assert plan["changed"] is False


def test_missing_manifest_is_completed_without_resending_data(client, buckets, workdir, prefix):
    """A run that died after publishing the data is finished by the next run (manifest only)."""
    path, _unused = write_backup(workdir, 10 * MIB)
    first = _gcs.upload_backup(client, path, buckets[:1], prefix=prefix, chunk_size=CHUNK)
    bucket, name = _gcs.parse_url(first["uploads"][0]["manifest_url"])
    client.bucket(bucket).blob(name).delete()

    again = _gcs.upload_backup(client, path, buckets[:1], prefix=prefix, chunk_size=CHUNK)
    upload = again["uploads"][0]
    assert (upload["action"], upload["changed"], upload["verified"]) == ("manifest", True, True)
    assert upload["generation"] == first["uploads"][0]["generation"]  # data not rewritten
    assert client.bucket(bucket).get_blob(name) is not None


def test_different_object_refused_then_replaced_with_overwrite_different(client, buckets, workdir, prefix):
    original, doc = write_backup(os.path.join(workdir, "a"), 10 * MIB)
    _gcs.upload_backup(client, original, buckets, prefix=prefix, chunk_size=CHUNK)
    # Same backup id, therefore same object names, different bytes.
    other, other_doc = write_backup(
        os.path.join(workdir, "b"),
        11 * MIB,
        backup_id=doc["backup_id"],
        data_timestamp=_manifest.parse_time(doc["started_at"]),
    )
    assert os.path.basename(other) == os.path.basename(original)

    for check_mode in (True, False):
        with pytest.raises(UploadError) as err:
            _gcs.upload_backup(client, other, buckets, prefix=prefix, check_mode=check_mode)
        message = str(err.value)
        assert "a different object already exists at gs://%s/%s" % (buckets[0]["name"], prefix) in message
        assert "Nothing was written to any bucket" in message and "overwrite=different" in message
        assert [u["action"] for u in err.value.partial["uploads"]] == ["refuse"] * 3
    for entry in buckets:
        blob = client.bucket(entry["name"]).get_blob(prefix + os.path.basename(original))
        assert (blob.size, blob.crc32c) == (doc["artifact"]["size"], doc["artifact"]["crc32c"])

    result = _gcs.upload_backup(client, other, buckets, prefix=prefix, overwrite="different", chunk_size=CHUNK)
    assert [(u["action"], u["changed"], u["verified"]) for u in result["uploads"]] == [("replace", True, True)] * 3
    for entry in buckets:
        blob = client.bucket(entry["name"]).get_blob(prefix + os.path.basename(other))
        assert (blob.size, blob.crc32c) == (other_doc["artifact"]["size"], other_doc["artifact"]["crc32c"])
        assert _gcs.read_manifest(client, entry["name"], prefix + os.path.basename(other)) == other_doc


def test_local_artifact_that_does_not_match_its_manifest_is_not_uploaded(client, buckets, workdir, prefix):
    path, _unused = write_backup(workdir, 1 * MIB)
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00" if handle.read(1) != b"\x00" else b"\x01")
    with pytest.raises(IntegrityError, match="does not match its manifest"):
        _gcs.upload_backup(client, path, buckets, prefix=prefix)
    assert names(client, buckets[0]["name"], prefix) == []


@pytest.mark.parametrize("damage", ["truncate", "flip-byte"])
def test_damaged_staging_object_is_never_published(own_gcs, buckets, workdir, damage):
    """The steps of one bucket's upload, run one by one so the staging object can be damaged
    on the emulator's disk between upload and publish: the publish must refuse it."""
    client = _gcs.connect(endpoint=own_gcs.endpoint, retry_deadline=5)
    prefix = "database/"
    path, _unused = write_backup(workdir, 12 * MIB)
    local = _gcs._local_backup(path)
    plan = _gcs._plan_bucket(client, buckets[0], prefix, local, "never")
    staged = _gcs._stage(client, plan["bucket"], prefix, local, CHUNK, None)
    assert staged.name.startswith(prefix + _gcs.STAGING_DIR)

    on_disk = own_gcs.object_path(plan["bucket"], staged.name)
    if damage == "truncate":
        os.truncate(on_disk, local["size"] // 2)
    else:
        with open(on_disk, "r+b") as handle:
            handle.seek(local["size"] // 3)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(IntegrityError, match="does not match the local artifact.*no manifest was written"):
        _gcs._publish(client, plan, local, None, _gcs._rewrite_from(client, staged))
    assert client.bucket(plan["bucket"]).get_blob(plan["data_name"]) is None
    assert client.bucket(plan["bucket"]).get_blob(plan["manifest_name"]) is None
    assert _gcs.list_backups(client, buckets[:1], prefix)["backups"] == []


@pytest.mark.slow
def test_server_stopped_mid_upload_leaves_no_backup(own_gcs, buckets, workdir):
    """The emulator dies while the data is uploading: a clear error naming the endpoint, no
    manifest, and once it is back nothing passes for a backup (partial or staging objects)."""
    client = _gcs.connect(endpoint=own_gcs.endpoint, timeout=5, retry_deadline=2)
    prefix = "database/"
    path, _unused = write_backup(workdir, 96 * MIB)
    # Small chunks make the emulator slow (its cost grows with object size x chunk count), so
    # the upload is still running when the timer fires.
    stopper = threading.Timer(1.0, own_gcs.stop)
    stopper.start()
    try:
        with pytest.raises(UploadError) as err:
            _gcs.upload_backup(client, path, buckets[:2], prefix=prefix, chunk_size=2 * MIB)
    finally:
        stopper.join()
    message = str(err.value)
    assert "cannot reach the GCS endpoint %s" % own_gcs.endpoint in message
    assert "Failed to upload %s to 2 of 2 buckets" % os.path.basename(path) in message

    own_gcs.start()
    listing = _gcs.list_backups(client, buckets[:2], prefix)
    assert listing["backups"] == [] and listing["selected"] is None and listing["candidates"] == []
    for entry in buckets[:2]:
        leftovers = names(client, entry["name"], prefix)
        assert all(name.startswith(prefix + _gcs.STAGING_DIR) for name in leftovers), leftovers

    # Once the server is back, the same call (with the default timeouts) completes the backup.
    result = _gcs.upload_backup(_gcs.connect(endpoint=own_gcs.endpoint), path, buckets[:2], prefix=prefix)
    assert [u["verified"] for u in result["uploads"]] == [True, True]
    assert len(_gcs.list_backups(client, buckets[:2], prefix)["backups"]) == 2


def test_unreachable_bucket_does_not_stop_the_others(client, buckets, workdir, prefix):
    path, _unused = write_backup(workdir, 256 * 1024)
    targets = buckets[:2] + [{"name": "dp-test-does-not-exist", "region": "asia-east1"}]
    with pytest.raises(UploadError) as err:
        _gcs.upload_backup(client, path, targets, prefix=prefix)
    assert "Failed to upload %s to 1 of 3 buckets" % os.path.basename(path) in str(err.value)
    assert "check that bucket dp-test-does-not-exist exists" in str(err.value)
    uploads = err.value.partial["uploads"]
    assert [(u["action"], u["verified"]) for u in uploads] == [("upload", True), ("upload", True), ("error", False)]


def test_write_record_never_overwrites(client, buckets, prefix):
    bucket = buckets[0]["name"]
    name = _gcs.verify_record_name(prefix + "x.dump.zst.gpg")
    first = _gcs.write_record(client, bucket, name, json.dumps({"ok": True}))
    assert first["url"] == "gs://%s/%s" % (bucket, name)
    with pytest.raises(UploadError, match="another writer is active. Nothing was overwritten"):
        _gcs.write_record(client, bucket, name, json.dumps({"ok": False}))
    assert json.loads(client.bucket(bucket).blob(name).download_as_bytes()) == {"ok": True}
