#!/usr/bin/python
# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_scale_restore
short_description: Stop Kubernetes workloads around a database restore and bring them back at their original size
version_added: 0.1.0
description:
  - For the Deployments and StatefulSets selected by O(name) or O(label_selector) in O(namespace).
  - O(state=scaled_down) records each workload's replica count in the annotation
    C(dr.diagnosticpro.io/recorded-replicas) on the workload itself, scales it to 0 and waits until its
    pods are actually gone (pods listed by the workload's selector, terminating ones included), not only
    until the status counters say 0. An annotation left by an earlier run (one that crashed after scaling
    down) is never overwritten, so a second run does not record 0.
  - A HorizontalPodAutoscaler targeting the workload would scale it back up, and cannot be pinned at 0
    (C(minReplicas) must be at least 1). With O(hpa_mode=suspend) its definition (name, labels,
    annotations, spec) is recorded in the annotation C(dr.diagnosticpro.io/recorded-hpa) on the workload
    and the HPA is deleted; O(state=restored) re-creates it exactly.
  - O(state=restored) scales each workload back to its recorded count (never a fixed number), re-creates
    suspended autoscalers, removes the annotations and waits for the rollout to be ready (observed
    generation current, updated, ready and available replicas equal to the spec). Because everything is
    recorded on the workloads, it can be run from another machine after a crashed run.
  - O(state=restarted) does a rollout restart (pod template annotation C(kubectl.kubernetes.io/restartedAt))
    and waits for readiness.
  - Writes are optimistic (resourceVersion preconditions); a 409 conflict is retried after a fresh read.
author:
  - DiagnosticPro Technical Operations (@diagnosticpro)
extends_documentation_fragment:
  - diagnosticpro.dr.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the workloads and autoscalers and reports the planned before/after without writing or waiting.
  diff_mode:
    support: full
    details: Per workload, replicas, recorded replicas, autoscalers and restart time before and after.
  platform:
    support: full
    platforms: posix
options:
  namespace:
    description: Namespace of the workloads.
    type: str
    required: true
  name:
    description: Name of the workload (looked up in every kind of O(kinds)). Mutually exclusive with O(label_selector).
    type: str
  label_selector:
    description:
      - Label selector for the workloads, for example V(app=diagnosticpro) or V(tier in (api,worker)).
      - Selecting nothing is an error, so a typo cannot leave the application running during a restore.
    type: str
  kinds:
    description: Kinds of workload to select.
    type: list
    elements: str
    choices: [Deployment, StatefulSet]
    default: [Deployment, StatefulSet]
  state:
    description:
      - What the workloads should be; see the description above.
      - V(scaled_down) and V(restored) are idempotent (a second run reports C(changed=false)); V(restarted) always
        changes the pod template, so it always reports C(changed=true).
    type: str
    choices: [scaled_down, restored, restarted]
    required: true
  wait:
    description:
      - Wait until the pods are gone (V(scaled_down)) or the rollout is ready (V(restored), V(restarted)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all selected workloads together before failing with the names of those not done.
    type: int
    default: 300
  hpa_mode:
    description:
      - V(suspend) takes HorizontalPodAutoscalers that target a workload out of play while it is scaled down, as
        described above.
      - V(ignore) leaves them alone (only if you know none can scale the workload up during the restore).
    type: str
    choices: [suspend, ignore]
    default: suspend
seealso:
  - module: kubernetes.core.k8s_scale
    description: Scales without remembering the original count; its default wait is 20 seconds and it waits on status
      counters, not on the pods being gone.
"""

EXAMPLES = r"""
- name: Stop the application before the restore
  diagnosticpro.dr.k8s_scale_restore:
    namespace: "{{ dr_k8s_namespace }}"
    label_selector: "{{ dr_app_label_selector }}"
    context: "{{ dr_k8s_context }}"
    state: scaled_down
    wait_timeout: 300

- name: Bring it back at the size it had (also finishes the job after a crashed run)
  diagnosticpro.dr.k8s_scale_restore:
    namespace: "{{ dr_k8s_namespace }}"
    label_selector: "{{ dr_app_label_selector }}"
    context: "{{ dr_k8s_context }}"
    state: restored
  register: __dr_app_restored

- name: Rolling restart of one Deployment
  diagnosticpro.dr.k8s_scale_restore:
    namespace: diagnosticpro
    name: diagnosticpro-api
    kinds: [Deployment]
    state: restarted
    wait_timeout: 600
"""

RETURN = r"""
workloads:
  description: One entry per selected workload.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(Deployment) or V(StatefulSet).
      type: str
    name:
      description: Name of the workload.
      type: str
    before:
      description: C(spec.replicas) before this run.
      type: int
    after:
      description: C(spec.replicas) after this run (predicted in check mode).
      type: int
    changed:
      description: Whether this workload was (or in check mode would be) changed.
      type: bool
    recorded_replicas:
      description: The replica count recorded on the workload (after V(scaled_down), before V(restored)), or null.
      type: int
    autoscalers:
      description: Names of the HPAs suspended (V(scaled_down)) or re-created (V(restored)) by this run.
      type: list
      elements: str
    waited_s:
      description: Seconds until this workload was done (0 without waiting).
      type: float
  sample:
    - kind: Deployment
      name: diagnosticpro-api
      before: 3
      after: 0
      changed: true
      recorded_replicas: 3
      autoscalers: [diagnosticpro-api]
      waited_s: 4.2
waited_s:
  description: Seconds waited for all workloads.
  returned: always
  type: float
  sample: 4.2
diff:
  description: Per workload (C(<kind>/<name>)), the managed fields before and after.
  returned: when diff mode is on
  type: dict
  sample:
    before:
      Deployment/diagnosticpro-api: {replicas: 3, recorded_replicas: null, autoscalers: [diagnosticpro-api],
                                     suspended_autoscalers: [], restarted_at: null}
    after:
      Deployment/diagnosticpro-api: {replicas: 0, recorded_replicas: 3, autoscalers: [],
                                     suspended_autoscalers: [diagnosticpro-api], restarted_at: null}
not_ready:
  description: On a timeout, the workloads (C(<kind>/<name>)) that were not done.
  returned: failure
  type: list
  elements: str
  sample: [Deployment/diagnosticpro-api]
"""

# Ansible modules put DOCUMENTATION first, so the imports come after it.
from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s import (  # noqa: E402
    HPA_MODES,
    K8S_AUTH_SPEC,
    KINDS,
    STATES,
    connect,
    scale_workloads,
)
from ansible_collections.diagnosticpro.dr.plugins.module_utils._module import DRModule  # noqa: E402


def main():
    argument_spec = dict(
        K8S_AUTH_SPEC,
        namespace={"type": "str", "required": True},
        name={"type": "str"},
        label_selector={"type": "str"},
        kinds={"type": "list", "elements": "str", "choices": list(KINDS), "default": list(KINDS)},
        state={"type": "str", "choices": list(STATES), "required": True},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 300},
        hpa_mode={"type": "str", "choices": list(HPA_MODES), "default": "suspend"},
    )
    module = DRModule(
        argument_spec,
        requires=("kubernetes",),
        mutually_exclusive=[("name", "label_selector")],
        required_one_of=[("name", "label_selector")],
    )
    params = module.params

    def run(m):
        result = scale_workloads(
            connect(params["kubeconfig"], params["context"]),
            params["namespace"],
            params["state"],
            name=params["name"],
            label_selector=params["label_selector"],
            kinds=params["kinds"],
            wait=params["wait"],
            wait_timeout=params["wait_timeout"],
            hpa_mode=params["hpa_mode"],
            check_mode=m.check_mode,
            progress=m.progress,
        )
        if not m.diff_mode:
            result.pop("diff")
        return result

    module.run(run)


if __name__ == "__main__":
    main()
