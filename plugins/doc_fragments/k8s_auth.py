# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes connection options; paired with K8S_AUTH_SPEC in module_utils/_k8s.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to use.
      - When neither O(kubeconfig) nor O(context) is set, the C(KUBECONFIG) environment variable and then
        C(~/.kube/config) are used, and then the in-cluster service account.
    type: path
  context:
    description:
      - Context of the kubeconfig to use (for example the regional cluster's context from the
        inventory's C(dr_k8s_context)). Defaults to the kubeconfig's current context.
    type: str
requirements:
  - kubernetes >= 24.2.0 (the official Python client)
"""
