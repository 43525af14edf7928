"""plugins/module_utils/_k8s.py called directly, over the official client, against the fake API server."""

from __future__ import annotations

import time

import pytest
from k8s_cluster import NAMESPACE

from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ScaleError
from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s import (
    REPLICAS_ANNOTATION,
    connect,
    converge,
    scale_workloads,
)
from sandbox.fake_k8s import STUCK_ANNOTATION

pytestmark = pytest.mark.k8s


@pytest.fixture()
def kube(k8s):
    return connect(k8s.kubeconfig, "fake")


def test_stale_read_gets_a_409_and_is_planned_again(k8s, kube):
    k8s.seed("Deployment", "api", 3)
    stale = kube.read_workload("Deployment", NAMESPACE, "api")
    # Someone scales it to 4 between our read and our write: recording 3 would be wrong.
    fresh = k8s.get("Deployment", "api")
    fresh["spec"]["replicas"] = 4
    k8s.server.apply(fresh)
    notes = []
    obj, before, after, _unused = converge(kube, NAMESPACE, stale, "scaled_down", "suspend", False, notes.append, None)
    assert any("409" in n for n in notes)
    assert (before["replicas"], after["recorded_replicas"]) == (4, 4)
    assert obj["metadata"]["annotations"][REPLICAS_ANNOTATION] == "4" and obj["spec"]["replicas"] == 0


def test_without_suspending_the_autoscaler_the_app_comes_back(k8s, kube):
    """The control experiment: with hpa_mode=ignore the HPA undoes the scale-down, and the module says so."""
    k8s.seed("Deployment", "api", 3)
    k8s.server.apply(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": NAMESPACE},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                "minReplicas": 2,
                "maxReplicas": 5,
            },
        }
    )
    with pytest.raises(ScaleError) as caught:
        scale_workloads(kube, NAMESPACE, "scaled_down", name="api", hpa_mode="ignore", wait_timeout=2)
    assert caught.value.partial["not_ready"] == ["Deployment/api"]
    assert k8s.get("Deployment", "api")["spec"]["replicas"] == 2


def test_timeout_is_honoured_and_names_only_the_stuck_workload(k8s, kube):
    k8s.seed("Deployment", "api", 0, annotations={REPLICAS_ANNOTATION: "3", STUCK_ANNOTATION: "true"})
    k8s.seed("Deployment", "web", 0, annotations={REPLICAS_ANNOTATION: "2"})
    started = time.monotonic()
    with pytest.raises(ScaleError) as caught:
        scale_workloads(kube, NAMESPACE, "restored", label_selector="app in (api,web)", wait_timeout=2)
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 3.5
    message = str(caught.value)
    assert message.startswith("Failed to roll out Deployment/api in namespace %s: not done after 2s" % NAMESPACE)
    assert "Deployment/web" not in message and "0 ready" in message
    assert {w["name"]: w["after"] for w in caught.value.partial["workloads"]} == {"api": 3, "web": 2}


def test_selecting_nothing_is_an_error_and_changes_nothing(k8s, kube):
    k8s.seed("Deployment", "api", 2)
    with pytest.raises(ScaleError, match="no Deployment/StatefulSet matching 'app=typo' in namespace"):
        scale_workloads(kube, NAMESPACE, "scaled_down", label_selector="app=typo")
    with pytest.raises(ScaleError, match="no StatefulSet named 'api'"):
        scale_workloads(kube, NAMESPACE, "scaled_down", name="api", kinds=["StatefulSet"])
    assert k8s.get("Deployment", "api")["spec"]["replicas"] == 2


def test_unreadable_kubeconfig_is_a_config_error(tmp_path):
    from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError

    with pytest.raises(ConfigError, match="Failed to load Kubernetes configuration"):
        connect(str(tmp_path / "missing"), "fake")


def test_api_errors_and_an_unreachable_server_are_scale_errors(k8s, kube):
    # An invalid selector is a 400 from the server, reported with its message.
    with pytest.raises(ScaleError, match=r"Failed to list namespaced deployment: HTTP 400"):
        scale_workloads(kube, NAMESPACE, "scaled_down", label_selector="app in (")
    k8s.server.stop()
    with pytest.raises(ScaleError, match="cannot reach the Kubernetes API server"):
        scale_workloads(kube, NAMESPACE, "scaled_down", name="api")
