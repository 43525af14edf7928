#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: gcs_backup_info
short_description: List the backups in GCS buckets and pick the one to restore
version_added: 0.1.0
description:
  - Reads every manifest (C(*.manifest.json)) under O(prefix) in every bucket of O(buckets). Only manifests count;
    data objects without a manifest (an interrupted upload) and staging objects are ignored.
  - A manifest whose data object is missing or has a different size or CRC32C is not listed as a backup; it is
    reported in RV(errors).
  - Reports each backup's age (how old its data is, which is the recovery point if the database were lost now)
    and whether a successful verification by M(diagnosticpro.dr.backup_verify) was recorded beside it.
  - Selects a backup (O(select)) and returns RV(candidates), the ordered list of URLs a restore should try.
  - A bucket that cannot be listed (missing, unreachable, permission denied) goes into RV(errors); the module fails
    only when no bucket can be listed.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - diagnosticpro.dr.gcs_auth
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  buckets:
    description:
      - Buckets to read, in priority order (primary first). RV(candidates) follows this order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Bucket name.
        type: str
        required: true
      region:
        description: The bucket's region; reported back.
        type: str
  prefix:
    description:
      - Folder in each bucket, as given to M(diagnosticpro.dr.gcs_backup_upload).
    type: str
    default: database/
  select:
    description:
      - V(latest) the backup with the newest data.
      - V(latest_before) the newest backup whose data is older than O(before).
      - V(backup_id) the backup O(backup_id). Its candidates are only its own copies; another backup is never
        substituted for one asked for by name.
      - V(all) selects nothing; RV(backups) lists everything.
    type: str
    choices: [all, latest, latest_before, backup_id]
    default: latest
  before:
    description:
      - With O(select=latest_before), an ISO 8601 timestamp such as V(2026-12-03T14:05:00Z); naive times are UTC.
    type: str
  backup_id:
    description:
      - With O(select=backup_id), the backup id to select.
    type: str
  database:
    description:
      - Only backups of this database (the manifest's C(database)).
    type: str
seealso:
  - module: diagnosticpro.dr.gcs_backup_upload
  - module: diagnosticpro.dr.pg_encrypted_restore
"""

EXAMPLES = r"""
- name: Find the newest backup of appdb in any region
  diagnosticpro.dr.gcs_backup_info:
    buckets: "{{ dr_buckets }}"
    prefix: "{{ dr_gcs_prefix }}"
    database: appdb
  register: __backups

- name: Restore it, trying every copy (primary region first), then older backups
  diagnosticpro.dr.pg_encrypted_restore:
    backup: "{{ __backups.candidates }}"
    database: appdb
    passphrase_file: "{{ dr_passphrase_file }}"
  when: __backups.selected is not none

- name: The last backup taken before the bad migration at 14:05
  diagnosticpro.dr.gcs_backup_info:
    buckets: "{{ dr_buckets }}"
    select: latest_before
    before: "2026-12-03T14:05:00Z"
  register: __before

- name: Alert when the newest backup is older than the tier's RPO
  ansible.builtin.assert:
    that: __backups.selected is not none and __backups.selected.age_s < 3600
    fail_msg: "Newest backup is {{ (__backups.selected.age_s | default(0) / 3600) | round(1) }} h old"
"""

RETURN = r"""
backups:
  description: Every usable backup copy (manifest plus matching data object), newest data first; the same backup
    appears once per bucket that has it, primary bucket first.
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: Backup id.
      type: str
      sample: appdb-20261203T020000Z-1a2b3c
    database:
      description: Database the backup is of.
      type: str
      sample: appdb
    bucket:
      description: Bucket holding this copy.
      type: str
      sample: dp-backups-us-east1
    region:
      description: The bucket's region as given in O(buckets).
      type: str
      sample: us-east1
    url:
      description: The artifact's object.
      type: str
      sample: gs://dp-backups-us-east1/database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg
    manifest_url:
      description: The manifest's object.
      type: str
      sample: gs://dp-backups-us-east1/database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg.manifest.json
    data_timestamp:
      description: Time of the data in the backup (the snapshot of the dump), UTC.
      type: str
      sample: "2026-12-03T02:00:01.123456Z"
    age_s:
      description: Seconds between RV(backups[].data_timestamp) and now.
      type: float
      sample: 5400.2
    size:
      description: Artifact size in bytes.
      type: int
      sample: 734003200
    sha256:
      description: SHA-256 of the artifact from the manifest.
      type: str
      sample: 9f2c4b0e2a6d0f6c7b1e8d3a5c4b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291
    crc32c:
      description: CRC32C of the artifact from the manifest, equal to the stored object's.
      type: str
      sample: mW9XYg==
    generation:
      description: Generation of the data object.
      type: int
      sample: 1796313701765213
    tier:
      description: Backup tier from the manifest.
      type: str
      sample: tier1
    verified:
      description: A successful verification (restore test) of this backup is recorded in this bucket.
      type: bool
      sample: true
    verified_at:
      description: Time of the newest successful verification, else null.
      type: str
      sample: "2026-12-03T03:10:44.000000Z"
selected:
  description: The selected backup (an element of RV(backups), in the first bucket that has it), or null when
    nothing matches or O(select=all).
  returned: always
  type: dict
  sample:
    backup_id: appdb-20261203T020000Z-1a2b3c
    bucket: dp-backups-us-central1
    url: gs://dp-backups-us-central1/database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg
    age_s: 5400.2
    verified: true
candidates:
  description: URLs to try in order for a restore. The selected backup in every bucket that has it (primary
    first), then each older backup the same way. Only the selected backup's copies with O(select=backup_id).
  returned: always
  type: list
  elements: str
  sample:
    - gs://dp-backups-us-central1/database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg
    - gs://dp-backups-us-east1/database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg
    - gs://dp-backups-us-central1/database/appdb-20261202T020000Z-9f8e7d.dump.zst.gpg
errors:
  description: Buckets that could not be listed (RV(errors[].url) null), and manifests whose data object is
    missing or different, or that cannot be read.
  returned: always
  type: list
  elements: dict
  contains:
    bucket:
      description: Bucket name.
      type: str
      sample: dp-backups-europe-west1
    region:
      description: The bucket's region.
      type: str
      sample: europe-west1
    url:
      description: The artifact concerned, or null for a bucket-wide failure.
      type: str
      sample: null
    msg:
      description: What failed and what to check.
      type: str
      sample: "Failed to list gs://dp-backups-europe-west1/database/: cannot reach the GCS endpoint ..."
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._gcs import (
    GCS_AUTH_SPEC,
    SELECT_MODES,
    connect_params,
    list_backups,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule


def main():
    argument_spec = dict(
        buckets=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(name=dict(type="str", required=True), region=dict(type="str")),
        ),
        prefix=dict(type="str", default="database/"),
        select=dict(type="str", choices=list(SELECT_MODES), default="latest"),
        before=dict(type="str"),
        backup_id=dict(type="str"),
        database=dict(type="str"),
    )
    argument_spec.update(GCS_AUTH_SPEC)
    module = DRModule(
        argument_spec,
        requires=("google-cloud-storage", "google-crc32c"),
        required_if=[("select", "latest_before", ("before",)), ("select", "backup_id", ("backup_id",))],
    )
    p = module.params
    module.run(
        lambda m: list_backups(
            connect_params(p),
            p["buckets"],
            prefix=p["prefix"],
            database=p["database"],
            select=p["select"],
            before=p["before"],
            backup_id=p["backup_id"],
        )
    )


if __name__ == "__main__":
    main()
