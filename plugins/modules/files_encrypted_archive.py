#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: files_encrypted_archive
short_description: Archive directories (application, configuration) into an encrypted backup with a manifest
version_added: 0.1.0
description:
  - Streams C(tar) of O(paths) through compression and OpenPGP encryption into one local artifact
    (C(<id>.tar.zst.gpg)), with the same manifest, naming and checks as database backups, so
    M(diagnosticpro.dr.gcs_backup_upload) and M(diagnosticpro.dr.gcs_backup_info) handle it the same way.
  - The tar stream never touches disk unencrypted. Members are stored relative to C(/)
    (C(opt/diagnosticpro/...)), with numeric owners, sorted by name.
  - Any failure (a path vanishing mid-read, gpg failing, disk full) removes the partial file.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - diagnosticpro.dr.encryption
attributes:
  check_mode:
    support: full
    details: Checks the paths, the key and the destination and reports the artifact it would write.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  paths:
    description: Absolute paths of the directories or files to archive.
    type: list
    elements: path
    required: true
  excludes:
    description:
      - C(tar --exclude) patterns. The default is the runbook's application excludes.
      - A pattern without a slash (V(node_modules), V(*.log)) matches that name at any depth; a pattern
        with a slash (V(tmp/*)) is relative to each archived path.
    type: list
    elements: str
    default: [node_modules, "*.log", "tmp/*"]
  dest:
    description: Directory for the local copy. Must exist; an existing file is never overwritten.
    type: path
    required: true
  label:
    description: First part of the backup id and file name, for example C(application) or C(config).
    type: str
    required: true
  compression:
    description: Compression of the tar stream.
    type: str
    choices: [zstd, lz4, none]
    default: zstd
  compression_level:
    description: Compression level; defaults to 3 for zstd and 1 for lz4.
    type: int
  jobs:
    description: Threads for the compressor (zstd C(-T)).
    type: int
    default: 2
  tier:
    description: Data tier recorded in the manifest (application and configuration data are tier2 in the DR procedures).
    type: str
    choices: [tier1, tier2, tier3, tier4]
    default: tier2
  retention_class:
    description: Retention class recorded in the manifest.
    type: str
    choices: [hot, warm, cold, frozen]
    default: hot
  progress_file:
    description: Append progress lines to this file while the archive is written.
    type: path
seealso:
  - module: diagnosticpro.dr.gcs_backup_upload
  - module: diagnosticpro.dr.k8s_manifest_backup
"""

EXAMPLES = r"""
- name: Back up the application directory with the runbook's excludes
  diagnosticpro.dr.files_encrypted_archive:
    paths: [/opt/diagnosticpro]
    label: application
    dest: /backups/application
    passphrase_file: /etc/diagnosticpro/keys/backup-encryption.key

- name: Back up configuration directories
  diagnosticpro.dr.files_encrypted_archive:
    paths: [/etc/diagnosticpro, /opt/config, /var/lib/config]
    excludes: []
    label: config
    dest: /backups/config
    recipients: [7D1A0E9C4B2F6E3A8C5D9B0F1E2A3C4D5E6F7A8B]
    public_key_files: [/etc/diagnosticpro/keys/backup-public.asc]
"""

RETURN = r"""
path:
  description: The artifact written.
  returned: always
  type: str
  sample: /backups/application/application-20261203T150405Z-1a2b3c.tar.zst.gpg
manifest_path:
  description: Its manifest.
  returned: always
  type: str
  sample: /backups/application/application-20261203T150405Z-1a2b3c.tar.zst.gpg.manifest.json
backup_id:
  description: Unique id of this backup.
  returned: always
  type: str
  sample: application-20261203T150405Z-1a2b3c
layers:
  description: The artifact's layers, innermost first.
  returned: always
  type: list
  elements: str
  sample: [tar, zstd, openpgp]
size:
  description: Size of the artifact in bytes.
  returned: success and not check mode
  type: int
  sample: 5242880
sha256:
  description: SHA-256 of the artifact, verified on disk.
  returned: success and not check mode
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
crc32c:
  description: CRC32C of the artifact, base64 as GCS reports it.
  returned: success and not check mode
  type: str
  sample: vDIdQA==
duration_s:
  description: Wall time in seconds.
  returned: success and not check mode
  type: float
  sample: 2.5
commands:
  description: The pipeline that ran (no secrets).
  returned: success and not check mode
  type: list
  elements: str
  sample: ["/usr/bin/tar --create --file=- --directory=/ ... -- opt/diagnosticpro", "/usr/bin/zstd -q -c -T2 -3"]
manifest:
  description: The manifest written beside the artifact.
  returned: success and not check mode
  type: dict
  sample: {"kind": "files", "files": {"paths": ["/opt/diagnosticpro"], "excludes": ["node_modules"]}}
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._archive import DEFAULT_EXCLUDES, archive
from ansible_collections.diagnosticpro.dr.plugins.module_utils._crypto import (
    ENCRYPTION_RULES,
    ENCRYPTION_SPEC,
    encryption_from_params,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule


def main():
    argument_spec = dict(
        ENCRYPTION_SPEC,
        paths={"type": "list", "elements": "path", "required": True},
        excludes={"type": "list", "elements": "str", "default": list(DEFAULT_EXCLUDES)},
        dest={"type": "path", "required": True},
        label={"type": "str", "required": True},
        compression={"type": "str", "choices": ["zstd", "lz4", "none"], "default": "zstd"},
        compression_level={"type": "int"},
        jobs={"type": "int", "default": 2},
        tier={"type": "str", "choices": ["tier1", "tier2", "tier3", "tier4"], "default": "tier2"},
        retention_class={"type": "str", "choices": ["hot", "warm", "cold", "frozen"], "default": "hot"},
        progress_file={"type": "path"},
    )
    module = DRModule(argument_spec, requires=("google-crc32c",), secret_files=("passphrase_file",), **ENCRYPTION_RULES)
    params = module.params
    module.run(
        lambda m: archive(
            params["paths"],
            params["dest"],
            encryption_from_params(params),
            params["label"],
            excludes=params["excludes"],
            compression=params["compression"],
            compression_level=params["compression_level"],
            jobs=params["jobs"],
            tier=params["tier"],
            retention_class=params["retention_class"],
            progress=m.progress,
            check_mode=m.check_mode,
        )
    )


if __name__ == "__main__":
    main()
