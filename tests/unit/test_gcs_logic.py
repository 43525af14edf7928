"""Pure logic of the GCS layer: URLs, names, selection order, error wording. No server."""

from __future__ import annotations

import datetime
import os

import pytest
import requests
from google.api_core import exceptions as gexc

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _gcs
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError, KeyFileError


@pytest.mark.parametrize(
    "url, expected",
    [
        ("gs://dp-backups-us-central1/database/a.dump.zst.gpg", ("dp-backups-us-central1", "database/a.dump.zst.gpg")),
        ("gs://b12/x", ("b12", "x")),
        ("gs://my.bucket_name/deep/er/obj", ("my.bucket_name", "deep/er/obj")),
    ],
)
def test_parse_url(url, expected):
    assert _gcs.parse_url(url) == expected
    assert _gcs.gs_url(*expected) == url


@pytest.mark.parametrize("url", ["", None, "s3://b/x", "gs://bucket", "gs://bucket/", "gs://UPPER/x", "/tmp/x"])
def test_parse_url_rejects(url):
    with pytest.raises(ConfigError, match="expected gs://<bucket>/<object>"):
        _gcs.parse_url(url)


@pytest.mark.parametrize(
    "prefix, expected",
    [
        ("database/", "database/"),
        ("database", "database/"),
        ("/database/", "database/"),
        ("", ""),
        (None, ""),
        ("a/b", "a/b/"),
    ],
)
def test_normalize_prefix(prefix, expected):
    assert _gcs.normalize_prefix(prefix) == expected


def test_verify_record_names_are_new_per_run_and_recognized():
    artifact = "database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg"
    when = datetime.datetime(2026, 12, 3, 3, 10, 44, 123456, tzinfo=datetime.timezone.utc)
    name = _gcs.verify_record_name(artifact, when)
    assert name == artifact + ".verify.20261203T031044123456Z.json"
    pattern = _gcs._record_re(artifact)
    assert pattern.match(name) and pattern.match(artifact + ".verify.json")
    assert not pattern.match(artifact + ".manifest.json")
    assert not pattern.match("database/appdb-20261203T020000Z-1a2b3cX.dump.zst.gpg.verify.json")


def entry(backup_id, ts, bucket):
    return {"backup_id": backup_id, "data_timestamp": ts, "bucket": bucket, "url": "gs://%s/%s" % (bucket, backup_id)}


ORDER = ["primary", "secondary", "tertiary"]
# Newest "c" is missing from the primary bucket; "b" is everywhere; "a" only in the tertiary.
BACKUPS = [
    entry("c", "2026-12-03T03:00:00.000000Z", "tertiary"),
    entry("c", "2026-12-03T03:00:00.000000Z", "secondary"),
    entry("b", "2026-12-03T02:00:00.000000Z", "primary"),
    entry("b", "2026-12-03T02:00:00.000000Z", "tertiary"),
    entry("b", "2026-12-03T02:00:00.000000Z", "secondary"),
    entry("a", "2026-12-03T01:00:00.000000Z", "tertiary"),
]


@pytest.mark.parametrize(
    "kwargs, selected, candidates",
    [
        (
            {"select": "latest"},
            ("c", "secondary"),
            ["secondary/c", "tertiary/c", "primary/b", "secondary/b", "tertiary/b", "tertiary/a"],
        ),
        (
            {"select": "latest_before", "before": "2026-12-03T03:00:00Z"},
            ("b", "primary"),
            ["primary/b", "secondary/b", "tertiary/b", "tertiary/a"],
        ),
        (
            {"select": "latest_before", "before": "2026-12-03T02:30:00"},
            ("b", "primary"),
            ["primary/b", "secondary/b", "tertiary/b", "tertiary/a"],
        ),
        ({"select": "latest_before", "before": "2026-12-03T01:00:00Z"}, None, []),
        ({"select": "backup_id", "backup_id": "b"}, ("b", "primary"), ["primary/b", "secondary/b", "tertiary/b"]),
        ({"select": "backup_id", "backup_id": "zz"}, None, []),
        ({"select": "all"}, None, []),
    ],
)
def test_select_backups(kwargs, selected, candidates):
    chosen, urls = _gcs.select_backups(BACKUPS, ORDER, **kwargs)
    assert (None if chosen is None else (chosen["backup_id"], chosen["bucket"])) == selected
    assert urls == ["gs://" + c for c in candidates]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"select": "latest_before"}, "needs before"),
        ({"select": "backup_id"}, "needs backup_id"),
        ({"select": "newest"}, "select must be one of"),
    ],
)
def test_select_backups_rejects(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _gcs.select_backups(BACKUPS, ORDER, **kwargs)


CLIENT = _gcs.GCSClient(None, "http://127.0.0.1:4443", timeout=5, retry_deadline=7)


@pytest.mark.parametrize(
    "exc, expected",
    [
        (gexc.Forbidden("denied"), "permission denied (403 denied): check the credentials"),
        (gexc.NotFound("gone"), "check that bucket bkt exists"),
        (gexc.PreconditionFailed("412"), "another writer is active"),
        (requests.ConnectionError("refused"), "cannot reach the GCS endpoint http://127.0.0.1:4443 (refused)"),
        (
            gexc.RetryError("deadline", requests.ConnectionError("refused")),
            "gave up after retrying for 7s: cannot reach the GCS endpoint http://127.0.0.1:4443",
        ),
        (gexc.ServiceUnavailable("busy"), "HTTP 503"),
    ],
)
def test_error_reasons_say_what_to_check(exc, expected):
    assert expected in _gcs._reason(exc, CLIENT, "bkt")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"endpoint": "127.0.0.1:4443"}, "expected http\\(s\\)://host:port"),
        ({"endpoint": "http://127.0.0.1:1", "timeout": 0}, "timeout must be > 0"),
        ({"credentials_file": "/nonexistent/key.json"}, "does not exist"),
    ],
)
def test_connect_rejects(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _gcs.connect(**kwargs)


def test_connect_refuses_a_credentials_file_readable_by_others(tmp_path):
    key = tmp_path / "sa.json"
    key.write_text('{"type": "service_account"}')
    os.chmod(key, 0o644)
    with pytest.raises(KeyFileError, match="accessible by group or others"):
        _gcs.connect(credentials_file=str(key))
    os.chmod(key, 0o600)
    with pytest.raises(ConfigError, match="expected a service-account JSON key"):
        _gcs.connect(credentials_file=str(key))


def test_emulator_client_needs_no_credentials():
    client = _gcs.connect(endpoint="http://127.0.0.1:4443/")
    assert client.endpoint == "http://127.0.0.1:4443"
    assert client.storage.project == _gcs.EMULATOR_PROJECT
    assert client.retry_deadline == 300.0


def test_auth_spec_matches_doc_fragment():
    import yaml

    from ansible_collections.diagnosticpro.dr.plugins.doc_fragments.gcs_auth import ModuleDocFragment

    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(documented) == set(_gcs.GCS_AUTH_SPEC)
    for name, spec in _gcs.GCS_AUTH_SPEC.items():
        assert documented[name]["type"] == spec["type"]
        assert documented[name].get("default") == spec.get("default")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"overwrite": "always"}, "overwrite must be one of never, different"),
        ({"buckets": []}, "no buckets given"),
        ({"chunk_size": 1000}, "multiple of 256 KiB"),
    ],
)
def test_upload_rejects_before_touching_anything(kwargs, message):
    args = {"client": CLIENT, "src": "/nonexistent", "buckets": [{"name": "b"}]}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        _gcs.upload_backup(**args)


# (data, manifest, overwrite) -> (action, write_data, delete_manifest, write_manifest)
DECISIONS = [
    ("absent", "absent", "never", ("upload", True, False, True)),
    ("same", "same", "never", ("none", False, False, False)),
    ("same", "same", "different", ("none", False, False, False)),
    ("same", "absent", "never", ("manifest", False, False, True)),
    # A manifest without its data: the data is written, the (identical) manifest removed first
    # and written back last, so it never describes a missing object.
    ("absent", "same", "never", ("upload", True, True, True)),
    ("different", "absent", "never", ("refuse", False, False, False)),
    ("same", "different", "never", ("refuse", False, False, False)),
    ("different", "different", "never", ("refuse", False, False, False)),
    ("different", "different", "different", ("replace", True, True, True)),
    ("different", "same", "different", ("replace", True, True, True)),
    ("different", "absent", "different", ("replace", True, False, True)),
    ("same", "different", "different", ("replace", False, True, True)),
    ("absent", "different", "different", ("replace", True, True, True)),
]


@pytest.mark.parametrize("data, manifest, overwrite, expected", DECISIONS)
def test_decide(data, manifest, overwrite, expected):
    steps = _gcs.decide(data, manifest, overwrite)
    assert (steps["action"], steps["write_data"], steps["delete_manifest"], steps["write_manifest"]) == expected
