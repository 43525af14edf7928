"""Application/configuration archives: runbook excludes, stock tools can unpack them, failures leave nothing."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _archive, _manifest
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError, DumpError
from tests.integration.helpers import kill_when_running, ls, symmetric


@pytest.fixture()
def app_dir(tmp_path):
    root = tmp_path / "opt" / "diagnosticpro"
    for rel, content in {
        "server.js": "console.log('diagnosticpro')\n",
        "k8s/deployment.yaml": "kind: Deployment\n",
        "node_modules/left-pad/index.js": "x\n",
        "logs/app.log": "noise\n",
        "tmp/cache.bin": "junk\n",
        "config/settings.json": '{"region": "us-central1"}\n',
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return str(root)


def test_archive_honours_excludes_and_unpacks_with_stock_tools(app_dir, keys, dest, tmp_path):
    result = _archive.archive([app_dir], dest, symmetric(keys)[0], "application")
    assert result["path"].endswith(".tar.zst.gpg")
    doc = _manifest.read(result["manifest_path"])
    assert doc["kind"] == "files" and doc["files"]["paths"] == [app_dir]
    out = tmp_path / "unpacked"
    out.mkdir()
    gpg = subprocess.Popen(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase-file",
            keys["passphrase_file"],
            "--decrypt",
            result["path"],
        ],
        stdout=subprocess.PIPE,
    )
    zstd = subprocess.Popen(["zstd", "-d", "-c"], stdin=gpg.stdout, stdout=subprocess.PIPE)
    gpg.stdout.close()
    subprocess.run(["tar", "-x", "-C", str(out)], stdin=zstd.stdout, check=True)
    zstd.stdout.close()
    assert zstd.wait() == 0 and gpg.wait() == 0
    unpacked = out / app_dir.lstrip("/")
    files = sorted(str(p.relative_to(unpacked)) for p in unpacked.rglob("*") if p.is_file())
    assert files == ["config/settings.json", "k8s/deployment.yaml", "server.js"]


def test_missing_path_is_refused_before_anything_is_written(keys, dest):
    with pytest.raises(ConfigError, match="does not exist"):
        _archive.archive(["/nonexistent/app"], dest, symmetric(keys)[0], "application")
    assert ls(dest) == []


def test_tar_killed_midway_leaves_nothing(app_dir, keys, dest):
    # Enough incompressible data that tar is still streaming when the killer finds it.
    with open(os.path.join(app_dir, "uploads.bin"), "wb") as handle:
        handle.write(os.urandom(64 * 1024 * 1024))
    thread, killed = kill_when_running("tar", "--totals")
    with pytest.raises(DumpError, match="tar was killed by SIGKILL"):
        _archive.archive([app_dir], dest, symmetric(keys)[0], "application")
    thread.join()
    assert killed and ls(dest) == []
