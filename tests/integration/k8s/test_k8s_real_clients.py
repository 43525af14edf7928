"""The fake API server behaves like a real one to real clients: kubectl and kubernetes.core.

The same scale/restart behaviour the module relies on, checked with the tools an operator
would reach for at 3 a.m., mixed with the module itself.
"""

from __future__ import annotations

import json

import pytest
from k8s_cluster import NAMESPACE

pytestmark = pytest.mark.k8s
RECORDED = "dr.diagnosticpro.io/recorded-replicas"

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: diagnosticpro-api
  namespace: {ns}
  labels: {{app: diagnosticpro}}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: diagnosticpro}}
  template:
    metadata:
      labels: {{app: diagnosticpro}}
    spec:
      containers:
      - name: api
        image: registry.invalid/diagnosticpro-api:1.4.2
        ports: [{{containerPort: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: diagnosticpro-worker
  namespace: {ns}
  labels: {{app: diagnosticpro}}
spec:
  replicas: 2
  serviceName: diagnosticpro-worker
  selector:
    matchLabels: {{app: diagnosticpro-worker}}
  template:
    metadata:
      labels: {{app: diagnosticpro-worker}}
    spec:
      containers:
      - name: worker
        image: registry.invalid/diagnosticpro-worker:1.4.2
""".format(ns=NAMESPACE)


def test_kubectl_apply_scale_rollout_and_the_module(k8s, tmp_path):
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST)
    out = k8s.kubectl("apply", "-f", str(manifest)).stdout
    assert "deployment.apps/diagnosticpro-api created" in out and "statefulset.apps/diagnosticpro-worker created" in out
    for ref in ("deployment/diagnosticpro-api", "statefulset/diagnosticpro-worker"):
        k8s.kubectl("-n", NAMESPACE, "rollout", "status", ref, "--timeout=30s")
    pods = json.loads(k8s.kubectl("-n", NAMESPACE, "get", "pods", "-l", "app=diagnosticpro", "-o", "json").stdout)
    assert len(pods["items"]) == 3 and {p["status"]["phase"] for p in pods["items"]} == {"Running"}

    # kubectl scale goes through the /scale subresource; rollout status waits on the status the controller moves.
    k8s.kubectl("-n", NAMESPACE, "scale", "deployment/diagnosticpro-api", "--replicas=5")
    k8s.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/diagnosticpro-api", "--timeout=30s")
    assert (
        k8s.kubectl(
            "-n", NAMESPACE, "get", "deploy", "diagnosticpro-api", "-o", "jsonpath={.status.readyReplicas}"
        ).stdout
        == "5"
    )

    (down,) = k8s.playbook([k8s.module(label_selector="app=diagnosticpro", state="scaled_down", wait_timeout=30)])
    assert {(w["kind"], w["name"], w["before"], w["after"]) for w in down["workloads"]} == {
        ("Deployment", "diagnosticpro-api", 5, 0),
        ("StatefulSet", "diagnosticpro-worker", 2, 0),
    }
    assert (
        k8s.kubectl(
            "-n",
            NAMESPACE,
            "get",
            "deploy",
            "diagnosticpro-api",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.annotations.dr\\.diagnosticpro\\.io/recorded-replicas}",
        ).stdout
        == "0 5"
    )
    for selector in ("app=diagnosticpro", "app=diagnosticpro-worker"):
        listing = k8s.kubectl("-n", NAMESPACE, "get", "pods", "-l", selector)
        assert "No resources found" in listing.stderr and listing.stdout == ""

    # Back at the size it had (5, not the manifest's 3), and kubectl agrees the rollout is done.
    (up,) = k8s.playbook([k8s.module(label_selector="app=diagnosticpro", state="restored", wait_timeout=30)])
    assert {(w["name"], w["after"]) for w in up["workloads"]} == {("diagnosticpro-api", 5), ("diagnosticpro-worker", 2)}
    for ref in ("deployment/diagnosticpro-api", "statefulset/diagnosticpro-worker"):
        k8s.kubectl("-n", NAMESPACE, "rollout", "status", ref, "--timeout=5s")

    # kubectl rollout restart replaces every pod of the StatefulSet, one ordinal at a time.
    def worker_uids():
        return set(
            k8s.kubectl(
                "-n",
                NAMESPACE,
                "get",
                "pods",
                "-l",
                "app=diagnosticpro-worker",
                "-o",
                "jsonpath={.items[*].metadata.uid}",
            ).stdout.split()
        )

    before = worker_uids()
    k8s.kubectl("-n", NAMESPACE, "rollout", "restart", "statefulset/diagnosticpro-worker")
    k8s.kubectl("-n", NAMESPACE, "rollout", "status", "statefulset/diagnosticpro-worker", "--timeout=30s")
    k8s.server.wait_for(lambda: len(worker_uids()) == 2, what="old worker pods to terminate")
    assert not before & worker_uids()

    # A manifest change (new image) through kubectl apply is rolled out and kubectl waits for it.
    manifest.write_text(MANIFEST.replace("diagnosticpro-api:1.4.2", "diagnosticpro-api:1.4.3"))
    assert "deployment.apps/diagnosticpro-api configured" in k8s.kubectl("apply", "-f", str(manifest)).stdout
    k8s.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/diagnosticpro-api", "--timeout=30s")
    images = k8s.kubectl(
        "-n",
        NAMESPACE,
        "get",
        "deploy",
        "diagnosticpro-api",
        "-o",
        "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
    ).stdout
    assert images == "3 registry.invalid/diagnosticpro-api:1.4.3"


def test_kubernetes_core_k8s_and_k8s_info(k8s):
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "diagnosticpro-api", "namespace": NAMESPACE, "labels": {"app": "diagnosticpro"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "diagnosticpro"}},
            "template": {
                "metadata": {"labels": {"app": "diagnosticpro"}},
                "spec": {"containers": [{"name": "api", "image": "registry.invalid/api:1"}]},
            },
        },
    }
    auth = {"kubeconfig": k8s.kubeconfig}
    created, again, info, down, pods, up, scaled = k8s.playbook(
        [
            {
                "kubernetes.core.k8s": dict(
                    auth, state="present", definition=deployment, apply=True, wait=True, wait_timeout=30
                )
            },
            {"kubernetes.core.k8s": dict(auth, state="present", definition=deployment, apply=True)},
            {
                "kubernetes.core.k8s_info": dict(
                    auth,
                    kind="Deployment",
                    namespace=NAMESPACE,
                    label_selectors=["app=diagnosticpro"],
                    field_selectors=["metadata.name=diagnosticpro-api"],
                )
            },
            k8s.module(name="diagnosticpro-api", state="scaled_down", wait_timeout=30),
            {
                "kubernetes.core.k8s_info": dict(
                    auth, kind="Pod", namespace=NAMESPACE, label_selectors=["app=diagnosticpro"]
                )
            },
            k8s.module(name="diagnosticpro-api", state="restored", wait_timeout=30),
            {
                "kubernetes.core.k8s_info": dict(
                    auth,
                    kind="Deployment",
                    name="diagnosticpro-api",
                    namespace=NAMESPACE,
                    wait=True,
                    wait_condition={"type": "Available", "status": "True"},
                    wait_timeout=30,
                )
            },
        ]
    )
    assert created["changed"] is True and created["result"]["status"]["readyReplicas"] == 3
    assert info["resources"][0]["spec"]["replicas"] == 3
    assert (down["workloads"][0]["before"], down["workloads"][0]["after"]) == (3, 0)
    assert pods["resources"] == []
    assert (up["workloads"][0]["before"], up["workloads"][0]["after"]) == (0, 3)
    obj = scaled["resources"][0]
    assert obj["status"]["readyReplicas"] == 3 and RECORDED not in obj["metadata"].get("annotations", {})
    assert again["changed"] is False
