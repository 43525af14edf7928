"""Plain helpers for the GCS tests: fake artifacts with real manifests, bucket listings.

Artifacts are random bytes with a manifest built by the _manifest helpers: the upload path
does not care what the bytes are, so no database is needed here.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _manifest
from ansible_collections.diagnosticpro.dr.plugins.module_utils._pipeline import hash_file

LAYERS = ["pg_dump-custom", "zstd", "openpgp"]
MIB = 1024 * 1024


def write_backup(directory, size, database="appdb", data_timestamp=None, backup_id=None):
    """An artifact of ``size`` random bytes and its manifest in ``directory``; returns (path, manifest)."""
    ts = data_timestamp or _manifest.utcnow()
    backup_id = backup_id or _manifest.new_backup_id(database, ts)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, _manifest.artifact_name(backup_id, LAYERS))
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, 4 * MIB))
            handle.write(block)
            remaining -= len(block)
    doc = {
        "manifest_version": 1,
        "kind": "postgresql",
        "backup_id": backup_id,
        "started_at": _manifest.isoformat(ts),
        "finished_at": _manifest.isoformat(ts + datetime.timedelta(seconds=5)),
        "artifact": {
            "name": os.path.basename(path),
            "layers": LAYERS,
            "content_type": "application/pgp-encrypted",
            **hash_file(path),
        },
        "encryption": {"mode": "symmetric", "key_id": "test"},
        "database": database,
        "label": database,
        "source": {"data_timestamp": _manifest.isoformat(ts)},
        "tier": "tier1",
    }
    _manifest.write(doc, _manifest.manifest_name(path))
    return path, doc


def names(client, bucket, prefix=""):
    """Every object name under ``prefix``, sorted."""
    return sorted(blob.name for blob in client.storage.list_blobs(bucket, prefix=prefix))
