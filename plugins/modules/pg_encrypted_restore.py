#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_encrypted_restore
short_description: Restore an encrypted backup into a database, verified, without risking the current data
version_added: 0.1.0
description:
  - Streams a backup made by M(diagnosticpro.dr.pg_encrypted_dump) from a local file or a GCS object
    through C(gpg --decrypt), decompression and C(pg_restore), hashing it on the way and comparing
    the result with its manifest. No plaintext touches disk.
  - The restore goes into a staging database first. Only when the artifact's SHA-256 and size match
    the manifest, pg_restore succeeded and every table's row count equals the manifest's is the
    staging database swapped in (two renames in one transaction). A corrupt object, a wrong key or a
    failed pg_restore leaves the target exactly as it was.
  - Refuses a target that has tables unless O(clean=true). The database it replaces is kept, renamed to
    C(<database>_pre_<UTC timestamp>), unless O(keep_previous=false).
  - Can first take a pre-restore snapshot of the current target as another encrypted backup
    (O(snapshot_before)); its path is returned, and also reported when the restore fails.
  - O(backup) may be a list of candidates (for example the same backup in the primary, secondary and
    tertiary regions, then older backups); they are tried in order until one restores and verifies.
  - Refuses to run while other sessions are connected to the target; stop the application first
    (M(diagnosticpro.dr.k8s_scale_restore)).
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
    details: Checks the target (refusing a non-empty one without O(clean)), reads the first candidate's
      manifest and checks the key; restores nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  backup:
    description:
      - Artifact to restore, a local path or C(gs://bucket/object); or a list of them, tried in order.
      - Its manifest (C(<artifact>.manifest.json)) must be beside it.
    type: list
    elements: str
    required: true
  database:
    description: Target database. Created if it does not exist.
    type: str
    required: true
  clean:
    description: Replace a target that already has tables. Without it a non-empty target is refused.
    type: bool
    default: false
  keep_previous:
    description:
      - Keep the replaced database, renamed to C(<database>_pre_<timestamp>). Set to V(false) to drop it
        after a successful, verified restore.
    type: bool
    default: true
  no_owner:
    description: Do not restore ownership and privileges (C(pg_restore --no-owner --no-acl)).
    type: bool
    default: false
  snapshot_before:
    description: Back up the current target (if it has tables) before restoring, to O(snapshot_dest).
    type: bool
    default: false
  snapshot_dest:
    description: Directory for the pre-restore snapshot. Required with O(snapshot_before=true).
    type: path
  snapshot_passphrase_file:
    description: Passphrase file to encrypt the snapshot with. Defaults to O(passphrase_file).
    type: path
  snapshot_recipients:
    description: Public-key recipients for the snapshot, instead of a passphrase.
    type: list
    elements: str
  snapshot_public_key_files:
    description: Public keys of O(snapshot_recipients), imported for this run only.
    type: list
    elements: path
  progress_file:
    description: Append progress lines to this file while the restore runs.
    type: path
notes:
  - A streamed custom-format archive is not seekable and C(pg_restore --jobs) needs a seekable file, which would
    mean the decrypted dump on disk; O(jobs) reads the stream several times instead. Every session also uses a
    larger C(maintenance_work_mem) and parallel index builds (C(max_parallel_maintenance_workers)).
  - Database-level settings (C(ALTER DATABASE ... SET)) are not part of a C(pg_dump) archive; set them
    again on the restored database if you use them.
seealso:
  - module: diagnosticpro.dr.backup_verify
  - module: diagnosticpro.dr.gcs_backup_info
"""

EXAMPLES = r"""
- name: Find the newest backup, primary region first
  diagnosticpro.dr.gcs_backup_info:
    buckets:
      - {name: diagnosticpro-backups-us-central1, region: us-central1}
      - {name: diagnosticpro-backups-us-east1, region: us-east1}
  register: __backups

- name: Restore it, snapshotting the current state first
  diagnosticpro.dr.pg_encrypted_restore:
    backup: "{{ __backups.candidates }}"
    database: diagnosticpro
    clean: true
    snapshot_before: true
    snapshot_dest: /recovery
    passphrase_file: /etc/diagnosticpro/keys/backup-encryption.key
    password_file: /etc/diagnosticpro/restore.pgpass
    user: postgres
  register: __restore
"""

RETURN = r"""
backup_id:
  description: The backup that was restored.
  returned: success
  type: str
  sample: diagnosticpro-20261203T150405Z-1a2b3c
source:
  description: The candidate that was restored.
  returned: success
  type: str
  sample: gs://diagnosticpro-backups-us-central1/database/diagnosticpro-20261203T150405Z-1a2b3c.dump.zst.gpg
attempts:
  description: Every candidate tried, with the error of those that failed (null for the one used).
  returned: always
  type: list
  elements: dict
  sample: [{"source": "gs://diagnosticpro-backups-us-central1/database/x.dump.zst.gpg",
            "error": "Failed to verify ..."},
           {"source": "gs://diagnosticpro-backups-us-east1/database/x.dump.zst.gpg", "error": null}]
snapshot:
  description: The pre-restore snapshot (path, manifest_path, backup_id), or null. Also returned on failure.
  returned: always
  type: dict
  sample: {"path": "/recovery/diagnosticpro-pre-restore-20261203T150000Z-aa11bb.dump.zst.gpg",
           "manifest_path": "/recovery/diagnosticpro-pre-restore-20261203T150000Z-aa11bb.dump.zst.gpg.manifest.json",
           "backup_id": "diagnosticpro-pre-restore-20261203T150000Z-aa11bb"}
previous_database:
  description: Name the replaced database was kept under, or null.
  returned: success
  type: str
  sample: diagnosticpro_pre_20261203150405
tables:
  description: Per table, the row count in the manifest (expected) and after the restore (actual).
  returned: success and not check mode
  type: dict
  sample: {"public.customers": {"expected": 1000, "actual": 1000, "ok": true}}
rows_restored:
  description: Total rows in the restored database.
  returned: success and not check mode
  type: int
  sample: 1250000
timings:
  description: Seconds from the start until the download, decryption and pg_restore finished (they overlap).
  returned: success and not check mode
  type: dict
  sample: {"download": 10.2, "decrypt": 10.3, "restore": 31.0}
duration_s:
  description: Wall time of the whole restore.
  returned: success and not check mode
  type: float
  sample: 42.0
data_timestamp:
  description: When the restored data was current (the backup's snapshot time).
  returned: success and not check mode
  type: str
  sample: "2026-12-03T15:04:05.123456Z"
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._crypto import (
    DECRYPTION_SPEC,
    Encryption,
    decryption_from_params,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError
from ansible_collections.diagnosticpro.dr.plugins.module_utils._gcs import GCS_AUTH_SPEC
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule
from ansible_collections.diagnosticpro.dr.plugins.module_utils._pg import (
    MAINTENANCE_DB_SPEC,
    POSTGRES_SPEC,
    conn_from_params,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._restore import RESTORE_SPEC, restore


def _snapshot(params):
    if not params["snapshot_before"]:
        return None
    if not params["snapshot_dest"]:
        raise ConfigError("Failed to plan the pre-restore snapshot: snapshot_before needs snapshot_dest")
    passphrase = params["snapshot_passphrase_file"] or (
        None if params["snapshot_recipients"] else params["passphrase_file"]
    )
    return {
        "dest": params["snapshot_dest"],
        "encryption": Encryption(
            passphrase_file=passphrase,
            recipients=params["snapshot_recipients"],
            public_key_files=params["snapshot_public_key_files"],
        ),
    }


def _run(module):
    params = module.params
    return restore(
        conn_from_params(params),
        params["backup"],
        params["database"],
        decryption_from_params(params),
        clean=params["clean"],
        snapshot=_snapshot(params),
        keep_previous=params["keep_previous"],
        gcs={key: params[key] for key in GCS_AUTH_SPEC},
        maintenance_db=params["maintenance_db"],
        no_owner=params["no_owner"],
        jobs=params["jobs"],
        progress=module.progress,
        check_mode=module.check_mode,
    )


def main():
    argument_spec = dict(
        POSTGRES_SPEC,
        **MAINTENANCE_DB_SPEC,
        **DECRYPTION_SPEC,
        **GCS_AUTH_SPEC,
        backup={"type": "list", "elements": "str", "required": True},
        database={"type": "str", "required": True},
        clean={"type": "bool", "default": False},
        keep_previous={"type": "bool", "default": True},
        no_owner={"type": "bool", "default": False},
        snapshot_before={"type": "bool", "default": False},
        snapshot_dest={"type": "path"},
        snapshot_passphrase_file={"type": "path", "no_log": False},
        snapshot_recipients={"type": "list", "elements": "str"},
        snapshot_public_key_files={"type": "list", "elements": "path"},
        progress_file={"type": "path"},
        **RESTORE_SPEC,
    )
    module = DRModule(
        argument_spec,
        requires=("psycopg2", "google-crc32c"),
        secret_files=("passphrase_file", "secret_key_passphrase_file", "snapshot_passphrase_file"),
        passfiles=("password_file",),
        mutually_exclusive=[["snapshot_passphrase_file", "snapshot_recipients"]],
    )
    module.run(_run)


if __name__ == "__main__":
    main()
