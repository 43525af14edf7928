"""Planning a backup: compression choices and levels, names, destination checks."""

from __future__ import annotations

import os

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _artifact, _dump
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError


@pytest.mark.parametrize(
    "algorithm, level, expected",
    [
        ("zstd", None, 3),
        ("zstd", 19, 19),
        ("lz4", None, 1),
        ("pg_dump", None, 6),
        ("none", None, 0),
    ],
)
def test_levels(algorithm, level, expected):
    assert _artifact.resolve_compression(algorithm, level)[1] == expected


@pytest.mark.parametrize("algorithm, level", [("zstd", 20), ("lz4", -1), ("none", 1), ("brotli", None)])
def test_bad_levels_and_algorithms_are_refused(algorithm, level):
    with pytest.raises(ConfigError):
        _artifact.resolve_compression(algorithm, level)


@pytest.mark.parametrize(
    "compression, suffix, layers",
    [
        ("zstd", ".dump.zst.gpg", ["pg_dump-custom", "zstd", "openpgp"]),
        ("lz4", ".dump.lz4.gpg", ["pg_dump-custom", "lz4", "openpgp"]),
        ("pg_dump", ".dump.gpg", ["pg_dump-custom", "openpgp"]),
        ("none", ".dump.gpg", ["pg_dump-custom", "openpgp"]),
    ],
)
def test_plan_names_the_layers(tmp_path, compression, suffix, layers):
    planned = _dump.plan("diagnosticpro", str(tmp_path), compression=compression)
    assert planned["path"].endswith(suffix) and planned["layers"] == layers
    assert planned["backup_id"].startswith("diagnosticpro-")


def test_plan_refuses_unsafe_database_names(tmp_path):
    with pytest.raises(ConfigError):
        _dump.plan("x; DROP DATABASE y", str(tmp_path))


def test_dest_must_exist_and_be_writable(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        _artifact.check_dest(str(tmp_path / "missing"))
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="not writable"):
            _artifact.check_dest(str(ro))


def test_archive_excludes_are_anchored_only_when_they_have_a_slash():
    from ansible_collections.diagnosticpro.dr.plugins.module_utils._archive import exclude_args

    assert exclude_args(["opt/app"], ["node_modules", "*.log", "tmp/*"]) == [
        "--no-anchored",
        "--exclude=node_modules",
        "--exclude=*.log",
        "--anchored",
        "--exclude=opt/app/tmp/*",
    ]
    assert exclude_args(["a", "b"], []) == ["--no-anchored"]
