"""Pure tests of the planning code in plugins/module_utils/_k8s.py (no cluster, no client)."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError, ScaleError
from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s import (
    HPA_ANNOTATION,
    REPLICAS_ANNOTATION,
    RESTARTED_AT,
    Conflict,
    is_ready,
    plan,
    scale_workloads,
    selector_string,
)


def deployment(replicas=3, annotations=None, name="api", status=None, generation=1):
    return {
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "annotations": dict(annotations or {}),
            "resourceVersion": "7",
            "generation": generation,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}},
        },
        "status": status if status is not None else {},
    }


HPA = {
    "metadata": {"name": "api", "labels": {"team": "sre"}, "uid": "x", "resourceVersion": "3"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
        "minReplicas": 2,
        "maxReplicas": 6,
    },
    "status": {"currentReplicas": 3},
}


@pytest.mark.parametrize(
    "state, obj, hpas, steps, after",
    [
        pytest.param(
            "scaled_down",
            deployment(3),
            [],
            {"record": {REPLICAS_ANNOTATION: "3"}, "replicas": 0},
            {"replicas": 0, "recorded_replicas": 3},
            id="down-records-count",
        ),
        pytest.param(
            "scaled_down",
            deployment(0, {REPLICAS_ANNOTATION: "5"}),
            [],
            {},
            {"replicas": 0, "recorded_replicas": 5},
            id="down-again-keeps-record",
        ),
        pytest.param(
            "scaled_down",
            deployment(2, {REPLICAS_ANNOTATION: "5"}),
            [],
            {"replicas": 0},
            {"replicas": 0, "recorded_replicas": 5},
            id="down-after-partial-keeps-first-record",
        ),
        pytest.param(
            "scaled_down",
            deployment(0),
            [],
            {"record": {REPLICAS_ANNOTATION: "0"}},
            {"replicas": 0, "recorded_replicas": 0},
            id="down-at-zero-records-zero",
        ),
        pytest.param(
            "restored",
            deployment(0, {REPLICAS_ANNOTATION: "5"}),
            [],
            {"replicas": 5, "forget": [REPLICAS_ANNOTATION]},
            {"replicas": 5, "recorded_replicas": None},
            id="restore-recorded",
        ),
        pytest.param(
            "restored",
            deployment(5, {REPLICAS_ANNOTATION: "5"}),
            [],
            {"forget": [REPLICAS_ANNOTATION]},
            {"replicas": 5, "recorded_replicas": None},
            id="restore-after-crash-between-steps",
        ),
        pytest.param(
            "restored",
            deployment(3),
            [],
            {},
            {"replicas": 3, "recorded_replicas": None},
            id="restore-nothing-recorded-is-noop",
        ),
    ],
)
def test_plan(state, obj, hpas, steps, after):
    got_steps, got_after = plan(state, obj, hpas)
    assert got_steps == steps
    assert {k: got_after[k] for k in after} == after


def test_plan_suspends_and_restores_autoscaler_exactly():
    steps, after = plan("scaled_down", deployment(3), [HPA])
    recorded = json.loads(steps["record"][HPA_ANNOTATION])
    assert recorded == [
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "labels": {"team": "sre"}},
            "spec": HPA["spec"],
        }
    ]
    assert steps["delete_hpas"] == ["api"]
    assert after["autoscalers"] == [] and after["suspended_autoscalers"] == ["api"]

    down = deployment(0, {REPLICAS_ANNOTATION: "3", HPA_ANNOTATION: steps["record"][HPA_ANNOTATION]})
    steps, after = plan("restored", down, [])
    assert steps["create_hpas"] == recorded and steps["replicas"] == 3
    assert after["autoscalers"] == ["api"] and after["suspended_autoscalers"] == []
    # Already re-created by a run that died before removing the annotations: not created twice.
    steps, _unused = plan("restored", down, [HPA])
    assert "create_hpas" not in steps


def test_plan_ignore_leaves_autoscalers():
    steps, _unused = plan("scaled_down", deployment(3), [HPA], hpa_mode="ignore")
    assert "delete_hpas" not in steps and HPA_ANNOTATION not in steps["record"]


def test_plan_restart():
    steps, after = plan("restarted", deployment(3), [], now="2026-01-01T00:00:00Z")
    assert steps == {"restart": "2026-01-01T00:00:00Z"}
    assert after["restarted_at"] == "2026-01-01T00:00:00Z" and after["replicas"] == 3


def full(replicas, **extra):
    status = {
        "observedGeneration": 2,
        "replicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "updatedReplicas": replicas,
    }
    status.update(extra)
    return status


@pytest.mark.parametrize(
    "kind, replicas, status, ready",
    [
        ("Deployment", 3, full(3), True),
        ("Deployment", 3, full(3, observedGeneration=1), False),
        ("Deployment", 3, full(3, updatedReplicas=2), False),
        ("Deployment", 3, full(3, availableReplicas=2), False),
        ("Deployment", 3, full(4), False),  # old pods still counted
        ("Deployment", 0, {"observedGeneration": 2}, True),
        ("StatefulSet", 2, full(2, currentRevision="a", updateRevision="a"), True),
        ("StatefulSet", 2, full(2, currentRevision="a", updateRevision="b"), False),
    ],
)
def test_is_ready(kind, replicas, status, ready):
    obj = dict(deployment(replicas, status=status, generation=2), kind=kind)
    assert is_ready(obj) is ready


@pytest.mark.parametrize(
    "selector, text",
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchExpressions": [
                    {"key": "t", "operator": "In", "values": ["x", "y"]},
                    {"key": "u", "operator": "NotIn", "values": ["z"]},
                    {"key": "v", "operator": "Exists"},
                    {"key": "w", "operator": "DoesNotExist"},
                ]
            },
            "t in (x,y),u notin (z),v,!w",
        ),
    ],
)
def test_selector_string(selector, text):
    assert selector_string(selector) == text


def test_empty_selector_is_refused():
    with pytest.raises(ScaleError):
        selector_string({})


class DictKube:
    """A tiny in-memory Kube: enough to drive scale_workloads without a server."""

    def __init__(self, *objs, conflicts=0):
        self.objs = {o["metadata"]["name"]: copy.deepcopy(o) for o in objs}
        self.conflicts = conflicts
        self.writes = []

    def list_workloads(self, kind, namespace, label_selector=None):
        return [copy.deepcopy(o) for o in self.objs.values() if o["kind"] == kind]

    def read_workload(self, kind, namespace, name):
        obj = self.objs.get(name)
        return copy.deepcopy(obj) if obj and obj["kind"] == kind else None

    def patch_workload(self, kind, namespace, name, patch):
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("stale")
        self.writes.append(patch)
        obj = self.objs[name]
        for key, value in (patch.get("metadata", {}).get("annotations") or {}).items():
            if value is None:
                obj["metadata"]["annotations"].pop(key, None)
            else:
                obj["metadata"]["annotations"][key] = value
        obj["spec"].update({k: v for k, v in patch.get("spec", {}).items() if k == "replicas"})
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(obj)

    def list_hpas(self, namespace):
        return []

    def list_pods(self, namespace, selector):
        return []


def test_check_mode_predicts_without_writing():
    kube = DictKube(deployment(3))
    result = scale_workloads(kube, "ns", "scaled_down", name="api", kinds=["Deployment"], check_mode=True)
    assert result["changed"] is True and kube.writes == [] and result["warnings"] == []
    assert result["workloads"][0] == {
        "kind": "Deployment",
        "name": "api",
        "before": 3,
        "after": 0,
        "changed": True,
        "waited_s": 0.0,
        "recorded_replicas": 3,
        "autoscalers": [],
    }
    assert result["diff"]["before"]["Deployment/api"]["replicas"] == 3


def test_conflicts_are_retried_then_reported():
    kube = DictKube(deployment(3), conflicts=2)
    result = scale_workloads(kube, "ns", "scaled_down", name="api", kinds=["Deployment"], wait=False)
    assert result["changed"] is True and kube.objs["api"]["spec"]["replicas"] == 0
    # The record carries the resourceVersion it was planned from: a precondition, not a blind write.
    assert kube.writes[0]["metadata"]["resourceVersion"] == "7"
    with pytest.raises(ScaleError, match="kept changing"):
        scale_workloads(DictKube(deployment(3), conflicts=99), "ns", "scaled_down", name="api", wait=False)


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="exactly one of name or label_selector"):
        scale_workloads(DictKube(), "ns", "scaled_down", name="a", label_selector="b")
    with pytest.raises(ConfigError, match="unknown state"):
        scale_workloads(DictKube(), "ns", "stopped", name="a")


def test_restart_annotation_key():
    kube = DictKube(deployment(2))
    scale_workloads(kube, "ns", "restarted", name="api", kinds=["Deployment"], wait=False, now="T")
    assert kube.writes == [{"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "T"}}}}}]


def test_recording_zero_warns():
    result = scale_workloads(DictKube(deployment(0)), "ns", "scaled_down", name="api", kinds=["Deployment"], wait=False)
    assert result["workloads"][0]["recorded_replicas"] == 0
    assert result["warnings"] and "restored will leave it at 0" in result["warnings"][0]


def test_hpa_recreated_by_someone_mid_restore_is_suspended_again_without_rewriting_the_record():
    steps, _unused = plan("scaled_down", deployment(3), [HPA])
    down = deployment(0, {REPLICAS_ANNOTATION: "3", HPA_ANNOTATION: steps["record"][HPA_ANNOTATION]})
    changed = dict(HPA, spec=dict(HPA["spec"], minReplicas=4))
    steps, after = plan("scaled_down", down, [changed])
    assert steps == {"delete_hpas": ["api"]}
    assert after["suspended_autoscalers"] == ["api"] and after["autoscalers"] == []
