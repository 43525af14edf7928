"""Backup -> three regional buckets -> verify -> restore, for every encryption mode and compression.

Proves restored rows are identical to the source by comparing per-table checksums of the
ordered table contents, not just counts.
"""

from __future__ import annotations

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _dump, _gcs, _restore
from tests.integration.helpers import ENCRYPTION_MODES, checksums, databases


@pytest.mark.parametrize("compression", ["zstd", "lz4", "pg_dump", "none"])
@pytest.mark.parametrize("mode", list(ENCRYPTION_MODES))
def test_backup_upload_verify_restore(
    pg, source_db, conn, keys, buckets, gcs_client, gcs_opts, dest, fresh_db_name, mode, compression
):
    encryption, decryption = ENCRYPTION_MODES[mode](keys)
    backup = _dump.dump(conn, source_db["name"], dest, encryption, compression=compression)
    manifest = backup["manifest"]
    assert manifest["encryption"]["mode"] == mode
    assert manifest["compression"]["algorithm"] == compression
    assert backup["path"].endswith({"zstd": ".dump.zst.gpg", "lz4": ".dump.lz4.gpg"}.get(compression, ".dump.gpg"))
    assert sum(t["rows"] for t in manifest["tables"].values()) == backup["rows"] > 0
    if mode == "public-key":
        assert manifest["encryption"]["recipients"] == [keys["fingerprint"]]
    else:
        assert manifest["encryption"]["key_id"].startswith("scrypt:")

    uploaded = _gcs.upload_backup(gcs_client, backup["path"], buckets, prefix="database/")
    assert [u["verified"] for u in uploaded["uploads"]] == [True, True, True]
    urls = [u["url"] for u in uploaded["uploads"]]

    # Verify from the secondary region, restore from the tertiary: every copy is a backup.
    verified = _restore.verify(
        conn,
        urls[1],
        decryption,
        gcs=gcs_opts,
        checks=[
            {"name": "customers without email", "sql": "SELECT 1 FROM customers WHERE email IS NULL OR email = ''"}
        ],
    )
    assert verified["ok"] and verified["rows_verified"] == backup["rows"]
    assert verified["scratch_database"] not in databases(pg)

    restored = _restore.restore(conn, [urls[2]], fresh_db_name, decryption, gcs=gcs_opts)
    assert restored["source"] == urls[2]
    assert restored["rows_restored"] == backup["rows"]
    assert checksums(pg, fresh_db_name) == source_db["checksums"]
