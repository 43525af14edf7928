#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_manifest_restore
short_description: Re-apply manifests and Secrets from an encrypted backup, server-side
version_added: 0.1.0
description:
  - Reads a backup made by M(diagnosticpro.dr.k8s_manifest_backup) from a local file or GCS, verifies its
    size and SHA-256 against the manifest, decrypts it into memory (never to disk) and applies each object
    with server-side apply (field manager C(diagnosticpro.dr), conflicts forced; the backup wins).
  - Objects whose live state already matches the backup are left alone and reported C(unchanged), so a
    second run reports no change.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - diagnosticpro.dr.k8s_auth
  - diagnosticpro.dr.encryption.decryption
  - diagnosticpro.dr.gcs_auth
attributes:
  check_mode:
    support: full
    details: Decrypts and compares with the live objects; applies nothing.
  diff_mode:
    support: partial
    details: Reports per object whether it would be created, updated or left unchanged, not field-level diffs.
  platform:
    support: full
    platforms: posix
options:
  backup:
    description: The artifact, a local path or C(gs://bucket/object); its manifest must be beside it.
    type: str
    required: true
  namespace:
    description: Namespace to apply into; defaults to the namespace the backup was taken from.
    type: str
  kinds:
    description: Only apply objects of these kinds.
    type: list
    elements: str
    choices: [ConfigMap, Secret, Service, Deployment, StatefulSet, HorizontalPodAutoscaler]
    default: [ConfigMap, Secret, Service, Deployment, StatefulSet, HorizontalPodAutoscaler]
  names:
    description: Only apply objects with these names.
    type: list
    elements: str
seealso:
  - module: diagnosticpro.dr.k8s_manifest_backup
  - module: diagnosticpro.dr.k8s_scale_restore
"""

EXAMPLES = r"""
- name: Redeploy the application from its newest manifest backup
  diagnosticpro.dr.k8s_manifest_restore:
    backup: gs://diagnosticpro-backups-us-central1/application/k8s-diagnosticpro-20261203T150405Z-1a2b3c.yaml.zst.gpg
    passphrase_file: /etc/diagnosticpro/keys/backup-encryption.key
    kinds: [ConfigMap, Secret, Deployment]
"""

RETURN = r"""
backup_id:
  description: The backup applied.
  returned: success
  type: str
  sample: k8s-diagnosticpro-20261203T150405Z-1a2b3c
namespace:
  description: The namespace applied into.
  returned: success
  type: str
  sample: diagnosticpro
objects:
  description: Per object, its kind, name and the action (create, update, unchanged).
  returned: success
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "name": "diagnosticpro-api", "action": "create"}]
"""

from ansible_collections.diagnosticpro.dr.plugins.module_utils._crypto import DECRYPTION_SPEC, decryption_from_params
from ansible_collections.diagnosticpro.dr.plugins.module_utils._gcs import GCS_AUTH_SPEC
from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s import K8S_AUTH_SPEC, connect
from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s_manifests import KINDS, restore
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule
from ansible_collections.diagnosticpro.dr.plugins.module_utils._restore import Source


def _run(module):
    params = module.params
    source = Source(params["backup"], {key: params[key] for key in GCS_AUTH_SPEC}, kind="kubernetes")
    return restore(
        connect(params["kubeconfig"], params["context"]),
        source,
        decryption_from_params(params),
        namespace=params["namespace"],
        kinds=params["kinds"],
        names=params["names"],
        check_mode=module.check_mode,
        progress=module.progress,
    )


def main():
    argument_spec = dict(
        K8S_AUTH_SPEC,
        **DECRYPTION_SPEC,
        **GCS_AUTH_SPEC,
        backup={"type": "str", "required": True},
        namespace={"type": "str"},
        kinds={"type": "list", "elements": "str", "choices": list(KINDS), "default": list(KINDS)},
        names={"type": "list", "elements": "str"},
    )
    module = DRModule(
        argument_spec,
        requires=("kubernetes", "yaml", "google-crc32c"),
        secret_files=("passphrase_file", "secret_key_passphrase_file"),
    )
    module.run(_run)


if __name__ == "__main__":
    main()
