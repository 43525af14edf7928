#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_manifest_backup
short_description: Back up a namespace's workload manifests and Secrets as an encrypted artifact
version_added: 0.1.0
description:
  - Exports the ConfigMaps, Secrets, Services, Deployments, StatefulSets and HorizontalPodAutoscalers of
    a namespace as multi-document YAML, with the fields the cluster manages stripped (uid,
    resourceVersion, generation, managedFields, creationTimestamp, status, clusterIP, last-applied
    annotations) so they can be re-applied server-side with M(diagnosticpro.dr.k8s_manifest_restore).
  - Objects the cluster creates itself are skipped (anything with ownerReferences, service-account token
    Secrets, C(kube-root-ca.crt), the C(kubernetes) Service).
  - The YAML is produced in memory and streamed into zstd and gpg; no plaintext Secret is ever written to
    disk. The manifest lists the objects' kinds and names, never their data.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - diagnosticpro.dr.k8s_auth
  - diagnosticpro.dr.encryption
attributes:
  check_mode:
    support: full
    details: Reads the objects and reports what would be backed up; writes nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  namespace:
    description: Namespace to export.
    type: str
    required: true
  kinds:
    description: Kinds to export.
    type: list
    elements: str
    choices: [ConfigMap, Secret, Service, Deployment, StatefulSet, HorizontalPodAutoscaler]
    default: [ConfigMap, Secret, Service, Deployment, StatefulSet, HorizontalPodAutoscaler]
  dest:
    description: Directory for the local copy. Must exist.
    type: path
    required: true
  label:
    description: First part of the backup id; defaults to C(k8s-<namespace>).
    type: str
  compression:
    description: Compression of the YAML stream.
    type: str
    choices: [zstd, none]
    default: zstd
  tier:
    description: Data tier recorded in the manifest.
    type: str
    choices: [tier1, tier2, tier3, tier4]
    default: tier2
  retention_class:
    description: Retention class recorded in the manifest.
    type: str
    choices: [hot, warm, cold, frozen]
    default: hot
seealso:
  - module: diagnosticpro.dr.k8s_manifest_restore
  - module: diagnosticpro.dr.gcs_backup_upload
"""

EXAMPLES = r"""
- name: Back up the application's manifests and Secrets
  diagnosticpro.dr.k8s_manifest_backup:
    namespace: diagnosticpro
    context: gke_diagnosticpro_us-central1_prod
    dest: /backups/application
    passphrase_file: /etc/diagnosticpro/keys/backup-encryption.key
  register: __manifests
"""

RETURN = r"""
path:
  description: The artifact written.
  returned: always
  type: str
  sample: /backups/application/k8s-diagnosticpro-20261203T150405Z-1a2b3c.yaml.zst.gpg
manifest_path:
  description: Its manifest.
  returned: always
  type: str
  sample: /backups/application/k8s-diagnosticpro-20261203T150405Z-1a2b3c.yaml.zst.gpg.manifest.json
backup_id:
  description: Unique id of this backup.
  returned: always
  type: str
  sample: k8s-diagnosticpro-20261203T150405Z-1a2b3c
layers:
  description: The artifact's layers, innermost first.
  returned: always
  type: list
  elements: str
  sample: [yaml, zstd, openpgp]
objects:
  description: Kind and name of every object in the backup.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "name": "diagnosticpro-api"}, {"kind": "Secret", "name": "stripe"}]
size:
  description: Size of the artifact in bytes.
  returned: success and not check mode
  type: int
  sample: 4096
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
  sample: 0.4
commands:
  description: The pipeline that ran (no secrets).
  returned: success and not check mode
  type: list
  elements: str
  sample: ["/usr/bin/zstd -q -c -T1 -3", "gpg --batch ... --symmetric"]
manifest:
  description: The manifest written beside the artifact.
  returned: success and not check mode
  type: dict
  sample: {"kind": "kubernetes", "kubernetes": {"namespace": "diagnosticpro"}}
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._crypto import (
    ENCRYPTION_RULES,
    ENCRYPTION_SPEC,
    encryption_from_params,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s import K8S_AUTH_SPEC, connect
from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s_manifests import KINDS, backup
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule


def main():
    argument_spec = dict(
        K8S_AUTH_SPEC,
        **ENCRYPTION_SPEC,
        namespace={"type": "str", "required": True},
        kinds={"type": "list", "elements": "str", "choices": list(KINDS), "default": list(KINDS)},
        dest={"type": "path", "required": True},
        label={"type": "str"},
        compression={"type": "str", "choices": ["zstd", "none"], "default": "zstd"},
        tier={"type": "str", "choices": ["tier1", "tier2", "tier3", "tier4"], "default": "tier2"},
        retention_class={"type": "str", "choices": ["hot", "warm", "cold", "frozen"], "default": "hot"},
    )
    module = DRModule(
        argument_spec,
        requires=("kubernetes", "yaml", "google-crc32c"),
        secret_files=("passphrase_file",),
        **ENCRYPTION_RULES,
    )
    params = module.params
    module.run(
        lambda m: backup(
            connect(params["kubeconfig"], params["context"]),
            params["namespace"],
            params["dest"],
            encryption_from_params(params),
            label=params["label"],
            kinds=params["kinds"],
            compression=params["compression"],
            tier=params["tier"],
            retention_class=params["retention_class"],
            progress=m.progress,
            check_mode=m.check_mode,
        )
    )


if __name__ == "__main__":
    main()
