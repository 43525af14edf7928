"""Run Ansible's command-line tools against this checkout as the collection diagnosticpro.dr."""

from __future__ import annotations

import os
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
