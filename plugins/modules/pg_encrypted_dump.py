#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_encrypted_dump
short_description: Take an encrypted, verified PostgreSQL backup with a manifest
version_added: 0.1.0
description:
  - Streams C(pg_dump --format=custom) through compression and OpenPGP encryption (stock C(gpg)) into
    a local file, the on-site copy. No plaintext ever touches disk.
  - The dump reads a snapshot exported by a C(REPEATABLE READ) transaction that also counts every
    table's rows, so the per-table counts in the manifest describe exactly the data in the dump.
  - Every stage's exit status is checked; any failure (pg_dump killed, gpg failing, disk full) fails
    the task and removes the partial file. The file is hashed again where it landed before it counts.
  - Writes a versioned JSON manifest beside the artifact (C(<artifact>.manifest.json)) with the backup
    id, server and pg_dump versions, timestamps (including the snapshot's data timestamp, for RPO),
    per-table row counts, size, SHA-256 and CRC32C, compression, and the encryption mode with a key id
    or recipients' fingerprints (never key material).
  - With O(buckets), the artifact is also sent to every bucket while it is being written. It is read back from the local
    copy (so a slow upload never holds the dump up) and uploaded in parts of O(chunk_size_mb) to a staging folder
    under C(<prefix>.incoming/). Once the dump is complete and checked, the parts are composed into the final object
    server-side (all or nothing, so a partial object never sits at the final name), which is verified (size, CRC32C,
    recorded SHA-256) before the manifest is written last, as M(diagnosticpro.dr.gcs_backup_upload) does. The
    upload overlaps the dump instead of following it. A bucket whose stream failed is uploaded again from the local
    copy; if that fails too, the task fails naming the complete local copy, which
    M(diagnosticpro.dr.gcs_backup_upload) can send later. A failed dump leaves no parts behind.
  - Without O(buckets), use M(diagnosticpro.dr.gcs_backup_upload) to copy the artifact to regional buckets.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - diagnosticpro.dr.postgres
  - diagnosticpro.dr.encryption
  - diagnosticpro.dr.gcs_auth
  - diagnosticpro.dr.gcs_upload
attributes:
  check_mode:
    support: full
    details: Checks inputs, tools and the database connection, and reports the path it would write; nothing is
      sent to O(buckets).
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  database:
    description: Database to back up.
    type: str
    required: true
  dest:
    description:
      - Directory for the local copy. Must exist. The artifact is written as C(<name>.partial) and renamed
        only when complete; an existing file is never overwritten.
    type: path
    required: true
  compression:
    description:
      - V(zstd) (default) compresses in a separate multi-threaded process; measured fastest for its ratio
        on the DiagnosticPro dataset (see C(docs/benchmarks.md)).
      - V(lz4) is faster with a larger artifact; V(pg_dump) uses pg_dump's built-in gzip; V(none) stores
        the dump uncompressed (still encrypted).
    type: str
    choices: [zstd, lz4, pg_dump, none]
    default: zstd
  compression_level:
    description: Compression level; defaults to 3 for zstd, 1 for lz4 and 6 for pg_dump.
    type: int
  jobs:
    description: Threads for the compressor (zstd C(-T)).
    type: int
    default: 2
  label:
    description: First part of the backup id and file name; defaults to O(database).
    type: str
  tier:
    description:
      - Data tier from the DR procedures (RPO tier1 15 min, tier2 1 h, tier3 4 h, tier4 24 h), recorded in the
        manifest.
    type: str
    choices: [tier1, tier2, tier3, tier4]
    default: tier1
  retention_class:
    description: Retention class recorded in the manifest (the storage strategy's hot, warm, cold, frozen).
    type: str
    choices: [hot, warm, cold, frozen]
    default: hot
  progress_file:
    description: Append progress lines (MiB written, throughput) to this file while the dump runs.
    type: path
  buckets:
    description:
      - Buckets to stream the backup to while it is written, in priority order (primary first). Omit to only write
        the local copy.
    type: list
    elements: dict
    suboptions:
      name:
        description: Bucket name.
        type: str
        required: true
      region:
        description: The bucket's region; reported back, not checked.
        type: str
notes:
  - Restore by hand without Ansible; see the README section "Restore by hand".
seealso:
  - module: diagnosticpro.dr.gcs_backup_upload
  - module: diagnosticpro.dr.backup_verify
  - module: diagnosticpro.dr.pg_encrypted_restore
"""

EXAMPLES = r"""
- name: Back up the production database (symmetric key, the current practice)
  diagnosticpro.dr.pg_encrypted_dump:
    database: diagnosticpro
    host: db-primary.internal
    user: backup
    password_file: /etc/diagnosticpro/backup.pgpass
    passphrase_file: /etc/diagnosticpro/keys/backup-encryption.key
    dest: /backups/database
  register: __backup

- name: Back up and stream the backup to the three regional buckets while it is written
  diagnosticpro.dr.pg_encrypted_dump:
    database: diagnosticpro
    passphrase_file: /etc/diagnosticpro/keys/backup-encryption.key
    dest: /backups/database
    buckets: "{{ dr_buckets }}"
    prefix: database/
    credentials_file: /etc/dr/gcs-backup-writer.json

- name: Back up with public-key encryption; this host cannot decrypt its own backups
  diagnosticpro.dr.pg_encrypted_dump:
    database: diagnosticpro
    recipients: [7D1A0E9C4B2F6E3A8C5D9B0F1E2A3C4D5E6F7A8B]
    public_key_files: [/etc/diagnosticpro/keys/backup-public.asc]
    dest: /backups/database
"""

RETURN = r"""
path:
  description: The artifact written.
  returned: always
  type: str
  sample: /backups/database/diagnosticpro-20261203T150405Z-1a2b3c.dump.zst.gpg
manifest_path:
  description: Its manifest.
  returned: always
  type: str
  sample: /backups/database/diagnosticpro-20261203T150405Z-1a2b3c.dump.zst.gpg.manifest.json
backup_id:
  description: Unique id of this backup (label, UTC time, random suffix).
  returned: always
  type: str
  sample: diagnosticpro-20261203T150405Z-1a2b3c
size:
  description: Size of the artifact in bytes.
  returned: success and not check mode
  type: int
  sample: 104857600
sha256:
  description: SHA-256 of the artifact (the ciphertext), verified on disk.
  returned: success and not check mode
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
crc32c:
  description: CRC32C of the artifact, base64 as GCS reports it.
  returned: success and not check mode
  type: str
  sample: vDIdQA==
duration_s:
  description: Wall time of the backup in seconds.
  returned: success and not check mode
  type: float
  sample: 12.5
throughput_mb_s:
  description: Database size (C(pg_database_size), MB) divided by wall time.
  returned: success and not check mode
  type: float
  sample: 85.3
rows:
  description: Total rows in all tables, counted in the dump's snapshot.
  returned: success and not check mode
  type: int
  sample: 1250000
commands:
  description: The pipeline that ran (no secrets; keys are passed by file descriptor).
  returned: success and not check mode
  type: list
  elements: str
  sample: ["/usr/lib/postgresql/15/bin/pg_dump --format=custom --compress=0 --snapshot=00000003-0000001B-1 ...",
           "/usr/bin/zstd -q -c -T2 -3", "gpg --batch ... --passphrase-fd 4 --symmetric"]
manifest:
  description: The manifest written beside the artifact.
  returned: success and not check mode
  type: dict
  sample: {"manifest_version": 1, "kind": "postgresql", "backup_id": "diagnosticpro-20261203T150405Z-1a2b3c"}
uploads:
  description:
    - One entry per bucket in O(buckets), as RV(diagnosticpro.dr.gcs_backup_upload#module:uploads) describes it
      (C(bucket), C(region), C(url), C(manifest_url), C(crc32c), C(generation), C(verified), C(action), C(error)).
  returned: success with O(buckets), not check mode
  type: list
  elements: dict
  sample: [{"bucket": "dp-backups-us-central1", "url": "gs://dp-backups-us-central1/database/x.dump.zst.gpg",
            "verified": true, "generation": 1796323232940185, "action": "upload"}]
layers:
  description: The artifact's layers, innermost first.
  returned: always
  type: list
  elements: str
  sample: [pg_dump-custom, zstd, openpgp]
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._artifact import COMPRESSIONS
from ansible_collections.diagnosticpro.dr.plugins.module_utils._crypto import (
    ENCRYPTION_RULES,
    ENCRYPTION_SPEC,
    encryption_from_params,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._dump import dump
from ansible_collections.diagnosticpro.dr.plugins.module_utils._gcs import (
    BUCKETS_SPEC,
    GCS_AUTH_SPEC,
    MIB,
    UPLOAD_SPEC,
    backup_and_upload,
    connect_params,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule
from ansible_collections.diagnosticpro.dr.plugins.module_utils._pg import POSTGRES_SPEC, conn_from_params


def main():
    argument_spec = dict(
        POSTGRES_SPEC,
        **ENCRYPTION_SPEC,
        database={"type": "str", "required": True},
        dest={"type": "path", "required": True},
        compression={"type": "str", "choices": list(COMPRESSIONS), "default": "zstd"},
        compression_level={"type": "int"},
        jobs={"type": "int", "default": 2},
        label={"type": "str"},
        tier={"type": "str", "choices": ["tier1", "tier2", "tier3", "tier4"], "default": "tier1"},
        retention_class={"type": "str", "choices": ["hot", "warm", "cold", "frozen"], "default": "hot"},
        progress_file={"type": "path"},
        buckets=BUCKETS_SPEC,
        **UPLOAD_SPEC,
        **GCS_AUTH_SPEC,
    )
    module = DRModule(
        argument_spec,
        requires=("psycopg2", "google-crc32c"),
        secret_files=("passphrase_file",),
        passfiles=("password_file",),
        **ENCRYPTION_RULES,
    )
    module.run(_backup)


def _backup(m):
    p = m.params

    def backup(followers=()):
        return dump(
            conn_from_params(p),
            p["database"],
            p["dest"],
            encryption_from_params(p),
            compression=p["compression"],
            compression_level=p["compression_level"],
            jobs=p["jobs"],
            tier=p["tier"],
            retention_class=p["retention_class"],
            label=p["label"],
            progress=m.progress,
            check_mode=m.check_mode,
            followers=followers,
        )

    if not p["buckets"] or m.check_mode:
        return backup()
    m.require("google-cloud-storage")
    return backup_and_upload(
        backup,
        connect_params(p),
        p["buckets"],
        prefix=p["prefix"],
        storage_class=p["storage_class"],
        overwrite=p["overwrite"],
        chunk_size=p["chunk_size_mb"] * MIB,
        progress=m.progress,
    )


if __name__ == "__main__":
    main()
