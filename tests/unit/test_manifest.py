"""Pure tests of the manifest: names state the layers, validation refuses what is not a backup."""

from __future__ import annotations

import datetime
import json
import os

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _manifest as m
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError, VerifyError

UTC = datetime.timezone.utc


def doc(**overrides):
    base = {
        "manifest_version": 1,
        "kind": "postgresql",
        "backup_id": "db-20261203T150405Z-abcdef",
        "started_at": "2026-12-03T15:04:05.000000Z",
        "finished_at": "2026-12-03T15:05:05.000000Z",
        "artifact": {
            "name": "db-20261203T150405Z-abcdef.dump.zst.gpg",
            "size": 10,
            "sha256": "a" * 64,
            "crc32c": "AAAAAA==",
            "layers": ["pg_dump-custom", "zstd", "openpgp"],
        },
        "encryption": {"mode": "symmetric", "key_id": "scrypt:00"},
        "source": {"data_timestamp": "2026-12-03T15:04:05.500000Z"},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "layers, suffix",
    [
        (["pg_dump-custom", "openpgp"], ".dump.gpg"),
        (["pg_dump-custom", "zstd", "openpgp"], ".dump.zst.gpg"),
        (["pg_dump-custom", "lz4", "openpgp"], ".dump.lz4.gpg"),
        (["tar", "zstd", "openpgp"], ".tar.zst.gpg"),
        (["yaml", "openpgp"], ".yaml.gpg"),
    ],
)
def test_artifact_name_states_the_layers(layers, suffix):
    assert m.artifact_name("x-1", layers) == "x-1" + suffix


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "-x", "a b", "x" * 202])
def test_backup_id_refuses_unsafe_names(bad):
    with pytest.raises(ConfigError):
        m.validate_backup_id(bad)


def test_new_backup_id_sorts_by_time_and_is_unique():
    t1 = datetime.datetime(2026, 12, 3, 15, 4, 5, tzinfo=UTC)
    t2 = t1 + datetime.timedelta(seconds=1)
    a, b, c = m.new_backup_id("diagnostic pro!", t1), m.new_backup_id("diagnostic pro!", t1), m.new_backup_id("x", t2)
    assert a.startswith("diagnostic-pro-20261203T150405Z-") and a != b
    assert m.new_backup_id("db", t1) < m.new_backup_id("db", t2)
    m.validate_backup_id(c)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("artifact"), "missing artifact"),
        (lambda d: d.update(manifest_version=99), "not supported"),
        (lambda d: d["artifact"].update(sha256="xyz"), "not a SHA-256"),
        (lambda d: d["artifact"].update(size=-1), "not a byte count"),
        (lambda d: d["artifact"].pop("crc32c"), "missing crc32c"),
    ],
)
def test_validate_refuses_broken_manifests(mutate, message):
    broken = doc()
    mutate(broken)
    with pytest.raises(VerifyError, match=message):
        m.validate(broken)


def test_loads_refuses_non_json():
    with pytest.raises(VerifyError, match="not valid JSON"):
        m.loads("{", "x")


def test_write_is_atomic_and_private(tmp_path):
    path = str(tmp_path / "a.dump.gpg.manifest.json")
    m.write(doc(), path)
    assert json.loads(open(path).read())["backup_id"] == doc()["backup_id"]
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.dump.gpg.manifest.json"]
    with pytest.raises(VerifyError):
        m.write(doc(artifact={}), str(tmp_path / "b.manifest.json"))
    assert not (tmp_path / "b.manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.dump.gpg.manifest.json"], "a temp file was left behind"


def test_read_missing_manifest_says_it_is_not_a_backup(tmp_path):
    with pytest.raises(VerifyError, match="not a backup"):
        m.read(str(tmp_path / "nope.manifest.json"))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-12-03T15:04:05Z", datetime.datetime(2026, 12, 3, 15, 4, 5, tzinfo=UTC)),
        ("2026-12-03T16:04:05+01:00", datetime.datetime(2026, 12, 3, 15, 4, 5, tzinfo=UTC)),
        ("2026-12-03 15:04:05", datetime.datetime(2026, 12, 3, 15, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_time(text, expected):
    assert m.parse_time(text) == expected


def test_parse_time_refuses_garbage():
    with pytest.raises(ConfigError, match="ISO 8601"):
        m.parse_time("yesterday")


def test_age_uses_the_data_timestamp():
    now = datetime.datetime(2026, 12, 3, 15, 19, 5, 500000, tzinfo=UTC)
    assert m.age_seconds(doc(), now) == 900.0
    assert m.age_seconds(doc(source={}), now) == 900.5


def test_manifest_names_round_trip():
    assert m.artifact_from_manifest_name(m.manifest_name("a.dump.gpg")) == "a.dump.gpg"
    with pytest.raises(ConfigError):
        m.artifact_from_manifest_name("a.json")
