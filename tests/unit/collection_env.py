"""Run Ansible's command-line tools against this checkout as the collection diagnosticpro.dr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = "diagnosticpro.dr"


def tool(name):
    """Path of an Ansible CLI (ansible-doc, ansible-playbook) installed beside this interpreter."""
    return str(Path(sys.executable).with_name(name))


def collection_env(base):
    """Environment resolving diagnosticpro.dr to this checkout through a link under ``base``.

    The tests make their own collection root so they do not depend on `make install`'s
    .collections link, nor on the ansible.cfg of whoever runs them.
    """
    link = Path(base) / "collections" / "ansible_collections" / "diagnosticpro" / "dr"
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(link.parents[2]), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    return env


def ansible_doc_json(kind, names, base):
    """``(docs, stderr)`` of `ansible-doc --json --type kind` for every one of ``names`` at once
    (one interpreter start, not one per plugin), run from ``base``."""
    if not names:
        return {}, ""
    proc = subprocess.run(
        [tool("ansible-doc"), "--json", "--type", kind, *("%s.%s" % (COLLECTION, name) for name in names)],
        capture_output=True,
        text=True,
        env=collection_env(base),
        cwd=str(base),
        timeout=300,
        check=False,
    )
    return (json.loads(proc.stdout) if proc.stdout.strip() else {}), proc.stderr
