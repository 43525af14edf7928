#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: gcs_backup_upload
short_description: Upload a backup artifact and its manifest to several GCS buckets, verified
version_added: 0.1.0
description:
  - Uploads a local backup artifact (for example the output of M(diagnosticpro.dr.pg_encrypted_dump)) and its
    manifest C(<artifact>.manifest.json) to every bucket in O(buckets), under O(prefix).
  - The data object is written and verified first (size and CRC32C of what landed against the local file, and the
    SHA-256 recorded as object metadata); the manifest is written last. A backup exists only once its manifest does,
    so a run that fails half way never leaves something that M(diagnosticpro.dr.gcs_backup_info) or a restore would
    take for a backup.
  - Artifacts larger than 8 MiB are uploaded (resumable, in chunks of O(chunk_size_mb)) to a unique staging name
    under C(<prefix>.incoming/), verified there, and only then published to the final name with a server-side
    rewrite, which is verified again. A truncated or partial object never sits at a final name. Staging objects
    left behind by an interrupted run are ignored by listings and safe to delete.
  - Idempotent. An identical object (same size and CRC32C) already at the final name is not sent again and that
    bucket reports RV(uploads[].changed=false). A different object at the name is refused (O(overwrite=never)),
    or replaced only with a precondition on the generation that was inspected (O(overwrite=different)).
  - Every bucket is inspected before anything is written. A refusal stops the run before any bucket is touched.
    An unreachable bucket does not stop the upload to the others; the task then fails, naming that bucket, and the
    failure result still lists the buckets that hold a verified copy.
  - The local artifact is checked against its manifest (size, SHA-256, CRC32C) before anything is sent.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - diagnosticpro.dr.gcs_auth
  - diagnosticpro.dr.gcs_upload
attributes:
  check_mode:
    support: full
    description: Inspects every bucket and reports which would get an upload, which already hold an identical copy
      and which would be refused (the task then fails, as the real run would), without writing.
  diff_mode:
    support: none
    description: No diff; RV(uploads) says per bucket what was (or would be) written.
options:
  src:
    description:
      - Path of the local artifact. Its manifest must be beside it, named C(<src>.manifest.json).
    type: path
    required: true
  buckets:
    description:
      - Buckets to upload to, in priority order (primary first).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Bucket name.
        type: str
        required: true
      region:
        description: The bucket's region; reported back, not checked.
        type: str
  progress_file:
    description:
      - File to append progress lines to while uploading (also sent to the host's log).
    type: path
seealso:
  - module: diagnosticpro.dr.gcs_backup_info
  - module: diagnosticpro.dr.pg_encrypted_dump
"""

EXAMPLES = r"""
- name: Upload the new backup to the three regional buckets
  diagnosticpro.dr.gcs_backup_upload:
    src: "{{ __dump.path }}"
    buckets: "{{ dr_buckets }}"
    prefix: "{{ dr_gcs_prefix }}"
    storage_class: NEARLINE
  register: __upload

- name: Against the local emulator (make sandbox-up)
  diagnosticpro.dr.gcs_backup_upload:
    src: /var/backups/dr/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg
    buckets:
      - {name: dp-backups-us-central1, region: us-central1}
      - {name: dp-backups-us-east1, region: us-east1}
    endpoint: http://127.0.0.1:4443

- name: Replace a broken copy that an earlier, interrupted tool left at the same name
  diagnosticpro.dr.gcs_backup_upload:
    src: "{{ __dump.path }}"
    buckets: "{{ dr_buckets }}"
    overwrite: different
    credentials_file: /etc/dr/gcs-backup-writer.json
"""

RETURN = r"""
backup_id:
  description: Backup id from the manifest.
  returned: always
  type: str
  sample: appdb-20261203T020000Z-1a2b3c
artifact:
  description: File name of the artifact (the last part of every object name).
  returned: always
  type: str
  sample: appdb-20261203T020000Z-1a2b3c.dump.zst.gpg
size:
  description: Size of the artifact in bytes.
  returned: always
  type: int
  sample: 734003200
crc32c:
  description: CRC32C of the artifact, base64 as GCS reports it.
  returned: always
  type: str
  sample: mW9XYg==
sha256:
  description: SHA-256 of the artifact, hex.
  returned: always
  type: str
  sample: 9f2c4b0e2a6d0f6c7b1e8d3a5c4b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291
uploads:
  description: One entry per bucket, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    bucket:
      description: Bucket name.
      type: str
      sample: dp-backups-us-central1
    region:
      description: Region as given in O(buckets).
      type: str
      sample: us-central1
    url:
      description: The artifact's object.
      type: str
      sample: gs://dp-backups-us-central1/database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg
    manifest_url:
      description: The manifest's object.
      type: str
      sample: gs://dp-backups-us-central1/database/appdb-20261203T020000Z-1a2b3c.dump.zst.gpg.manifest.json
    crc32c:
      description: CRC32C of the artifact (the stored object has it once RV(uploads[].verified) is true).
      type: str
      sample: mW9XYg==
    size:
      description: Size of the artifact in bytes.
      type: int
      sample: 734003200
    generation:
      description: Generation of the verified data object; null when nothing was verified (check mode planning an
        upload, or a failure).
      type: int
      sample: 1796313701765213
    storage_class:
      description: Storage class of the stored data object, when this run wrote it.
      type: str
      sample: NEARLINE
    verified:
      description: The data object at the final name was checked against the local artifact and its manifest is in
        place.
      type: bool
      sample: true
    changed:
      description: Something was (or in check mode, would be) written to this bucket.
      type: bool
      sample: true
    action:
      description: >-
        V(none) identical copy already there; V(upload) new backup; V(manifest) data already verified, manifest
        missing; V(replace) a different object replaced (O(overwrite=different)); V(refuse) a different object is
        there; V(error) the bucket could not be inspected.
      type: str
      sample: upload
    reason:
      description: Why the bucket was refused, else null.
      type: str
      sample: null
    error:
      description: Why this bucket failed, else null.
      type: str
      sample: null
    duration_s:
      description: Seconds spent on this bucket, when something was written.
      type: float
      sample: 12.4
    throughput_mb_s:
      description: Artifact size in MB (10^6 bytes) divided by RV(uploads[].duration_s), when data was written.
      type: float
      sample: 59.2
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._gcs import (
    BUCKETS_SPEC,
    GCS_AUTH_SPEC,
    MIB,
    UPLOAD_SPEC,
    connect_params,
    upload_backup,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule


def main():
    argument_spec = dict(
        src=dict(type="path", required=True),
        buckets=dict(BUCKETS_SPEC, required=True),
        progress_file=dict(type="path"),
        **UPLOAD_SPEC,
        **GCS_AUTH_SPEC,
    )
    module = DRModule(argument_spec, requires=("google-cloud-storage", "google-crc32c"))
    module.run(_upload)


def _upload(m):
    p = m.params
    return upload_backup(
        connect_params(p),
        p["src"],
        p["buckets"],
        prefix=p["prefix"],
        storage_class=p["storage_class"],
        overwrite=p["overwrite"],
        check_mode=m.check_mode,
        chunk_size=p["chunk_size_mb"] * MIB,
        progress=m.progress,
    )


if __name__ == "__main__":
    main()
