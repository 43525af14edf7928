#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_verify
short_description: Prove a backup restores (hash, decrypt, test-restore, count rows, run checks)
version_added: 0.1.0
description:
  - Streams a backup (local file or GCS object) and verifies its size and SHA-256 against its manifest
    while decrypting and restoring it into a uniquely named scratch database
    (C(dr_verify_<id>_<random>)), which is always dropped, also when anything fails.
  - Compares every table's row count with the counts the manifest took in the dump's own snapshot, and
    runs O(checks), queries that must return no rows (for example customers with a NULL or empty email).
  - Fails when the hash, the decryption, the restore, a row count or a check fails, naming which.
  - With O(record=true) and a GCS backup, stores the result as a new object
    C(<artifact>.verify.<timestamp>.json) beside it; M(diagnosticpro.dr.gcs_backup_info) reports backups
    with a successful record as verified.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - diagnosticpro.dr.restore
  - ansible.builtin.action_common_attributes
  - diagnosticpro.dr.postgres
  - diagnosticpro.dr.postgres.maintenance
  - diagnosticpro.dr.encryption.decryption
  - diagnosticpro.dr.gcs_auth
attributes:
  check_mode:
    support: full
    details: Verifies the hash and decrypts (reading the archive's table of contents) without creating a
      scratch database or writing a record.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  backup:
    description:
      - Artifact to verify, a local path or C(gs://bucket/object); or a list, tried in order until one
        can be read (the first readable one is verified).
    type: list
    elements: str
    required: true
  checks:
    description: Queries that must return zero rows in the restored copy.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: What the check proves, shown in the result.
        type: str
        required: true
      sql:
        description: The query.
        type: str
        required: true
  record:
    description: Store the verification result beside a GCS backup.
    type: bool
    default: false
  progress_file:
    description: Append progress lines to this file while the verification runs.
    type: path
seealso:
  - module: diagnosticpro.dr.pg_encrypted_dump
  - module: diagnosticpro.dr.pg_encrypted_restore
"""

EXAMPLES = r"""
- name: Verify the newest backup in the primary region, as the weekly restore test
  diagnosticpro.dr.backup_verify:
    backup: gs://diagnosticpro-backups-us-central1/database/diagnosticpro-20261203T150405Z-1a2b3c.dump.zst.gpg
    passphrase_file: /etc/diagnosticpro/keys/backup-encryption.key
    user: postgres
    password_file: /etc/diagnosticpro/verify.pgpass
    record: true
    checks:
      - name: customers with NULL or empty email
        sql: SELECT 1 FROM customers WHERE email IS NULL OR email = ''
      - name: payments without a customer
        sql: >-
          SELECT 1 FROM payment_transactions p
          LEFT JOIN customers c ON c.id = p.customer_id WHERE c.id IS NULL
  register: __verify
"""

RETURN = r"""
ok:
  description: Whether everything verified. The task fails when it is false.
  returned: always
  type: bool
  sample: true
backup_id:
  description: The backup verified.
  returned: success
  type: str
  sample: diagnosticpro-20261203T150405Z-1a2b3c
source:
  description: The candidate verified.
  returned: success
  type: str
  sample: gs://diagnosticpro-backups-us-central1/database/diagnosticpro-20261203T150405Z-1a2b3c.dump.zst.gpg
scratch_database:
  description: The scratch database used (already dropped); null in check mode.
  returned: success
  type: str
  sample: dr_verify_1a2b3c_9f8e7d
tables:
  description: Per table, the manifest's row count (expected), the restored one (actual) and ok.
  returned: success and not check mode
  type: dict
  sample: {"public.customers": {"expected": 1000, "actual": 1000, "ok": true}}
checks:
  description: Per check, its name, the query, the number of offending rows, ok, and up to 5 sample rows.
  returned: success and not check mode
  type: list
  elements: dict
  sample: [{"name": "customers with NULL or empty email", "rows": 0, "ok": true, "sample": []}]
rows_verified:
  description: Total rows counted in the restored copy.
  returned: success
  type: int
  sample: 1250000
timings:
  description: >-
    Seconds from the start until the download, decryption and restore finished (they overlap, being
    one stream), the time the checks took, and the total.
  returned: success
  type: dict
  sample: {"download": 10.1, "decrypt": 10.2, "restore": 30.5, "check": 0.4, "total": 31.2}
record_url:
  description: The verification record written with O(record=true).
  returned: when record is true and the backup is in GCS
  type: str
  sample: gs://diagnosticpro-backups-us-central1/database/diagnosticpro-20261203T150405Z-1a2b3c.dump.zst.gpg.verify.20261203T160000000000Z.json
attempts:
  description: Candidates tried, with the error of those that could not be read.
  returned: always
  type: list
  elements: dict
  sample: [{"source": "gs://bucket/database/x.dump.zst.gpg", "error": null}]
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._crypto import DECRYPTION_SPEC, decryption_from_params
from ansible_collections.diagnosticpro.dr.plugins.module_utils._gcs import GCS_AUTH_SPEC
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule
from ansible_collections.diagnosticpro.dr.plugins.module_utils._pg import (
    MAINTENANCE_DB_SPEC,
    POSTGRES_SPEC,
    conn_from_params,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._restore import RESTORE_SPEC, record_in_gcs, verify


def _run(module):
    params = module.params
    return verify(
        conn_from_params(params),
        params["backup"],
        decryption_from_params(params),
        checks=params["checks"],
        gcs={key: params[key] for key in GCS_AUTH_SPEC},
        maintenance_db=params["maintenance_db"],
        progress=module.progress,
        check_mode=module.check_mode,
        record=record_in_gcs if params["record"] else None,
        jobs=params["jobs"],
    )


def main():
    argument_spec = dict(
        POSTGRES_SPEC,
        **MAINTENANCE_DB_SPEC,
        **DECRYPTION_SPEC,
        **GCS_AUTH_SPEC,
        backup={"type": "list", "elements": "str", "required": True},
        checks={
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {"name": {"type": "str", "required": True}, "sql": {"type": "str", "required": True}},
        },
        record={"type": "bool", "default": False},
        progress_file={"type": "path"},
        **RESTORE_SPEC,
    )
    module = DRModule(
        argument_spec,
        requires=("psycopg2", "google-crc32c"),
        secret_files=("passphrase_file", "secret_key_passphrase_file"),
        passfiles=("password_file",),
    )
    module.run(_run)


if __name__ == "__main__":
    main()
