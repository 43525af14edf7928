"""`ansible-galaxy collection build` ships the collection and nothing of the workshop around it.

galaxy.yml's build_ignore keeps inventories, tests, molecule, bench, the sandbox and local state
(virtualenvs, links, build output) out of the tarball; users get plugins, roles, playbooks and
meta, with the files execution-environment builders read (requirements.txt, bindep.txt).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_GALAXY = str(Path(sys.executable).with_name("ansible-galaxy"))

# Top-level entries a built collection must not contain.
EXCLUDED = (
    ".venv",
    ".collections",
    ".sandbox",
    ".ansible",
    ".ansible-lint",
    ".yamllint",
    ".git",
    ".ci",
    ".pytest_cache",
    ".ruff_cache",
    "inventories",
    "tests",
    "molecule",
    "bench",
    "sandbox",
    "build",
    "Makefile",
    "mk",
    "pyproject.toml",
    "requirements-dev.txt",
    "ansible.cfg",
)
REQUIRED = ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "plugins", "roles", "playbooks")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [ANSIBLE_GALAXY, "collection", "build", "--output-path", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, "ansible-galaxy collection build failed:\n%s%s" % (proc.stdout, proc.stderr)
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    tarball = out / ("%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"]))
    assert tarball.exists(), "no %s in %s" % (tarball.name, sorted(p.name for p in out.iterdir()))
    with tarfile.open(tarball) as archive:
        return [member.name.removeprefix("./") for member in archive.getmembers()]


@pytest.mark.parametrize("entry", EXCLUDED)
def test_workshop_files_are_not_shipped(members, entry):
    shipped = [name for name in members if name == entry or name.startswith(entry + "/")]
    assert not shipped, "the tarball contains %s" % shipped[:10]


def test_no_bytecode_or_caches(members):
    junk = [name for name in members if name.endswith((".pyc", ".tar.gz")) or "__pycache__" in name.split("/")]
    assert not junk, "the tarball contains %s" % junk[:10]


@pytest.mark.parametrize("entry", REQUIRED)
def test_collection_content_is_shipped(members, entry):
    assert any(name == entry or name.startswith(entry + "/") for name in members), "the tarball lacks %s" % entry


def test_every_module_and_role_is_shipped(members):
    expected = ["plugins/modules/%s" % p.name for p in (ROOT / "plugins" / "modules").glob("*.py")]
    expected += ["roles/%s/tasks/main.yml" % p.parent.parent.name for p in (ROOT / "roles").glob("*/tasks/main.yml")]
    missing = sorted(set(expected) - set(members))
    assert not missing, "the tarball lacks %s" % missing
