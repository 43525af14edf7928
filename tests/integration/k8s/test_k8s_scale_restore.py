"""diagnosticpro.dr.k8s_scale_restore through ansible-playbook against the fake API server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from k8s_cluster import NAMESPACE, REPO, VENV_BIN, Cluster

from sandbox.fake_k8s import STUCK_ANNOTATION, FakeKubeAPIServer

pytestmark = pytest.mark.k8s
RECORDED = "dr.diagnosticpro.io/recorded-replicas"
SELECTOR = "app.kubernetes.io/part-of=shop"


def seed_shop(k8s):
    """A Deployment at 5 replicas, a StatefulSet at 1, and an unrelated Deployment that must not be touched."""
    part_of = {"app.kubernetes.io/part-of": "shop"}
    k8s.seed("Deployment", "api", 5, dict(part_of, app="api"))
    k8s.seed("StatefulSet", "queue", 1, dict(part_of, app="queue"))
    k8s.seed("Deployment", "unrelated", 2, {"app": "unrelated"})
    for kind, name in (("Deployment", "api"), ("StatefulSet", "queue"), ("Deployment", "unrelated")):
        k8s.wait_ready(kind, name)


def by_name(result):
    return {w["name"]: w for w in result["workloads"]}


def test_check_mode_then_scale_down_then_restore(k8s):
    seed_shop(k8s)
    rv_before = k8s.get("Deployment", "api")["metadata"]["resourceVersion"]

    check, after_check, down, again = k8s.playbook(
        [
            dict(k8s.module(label_selector=SELECTOR, state="scaled_down"), check_mode=True, diff=True),
            k8s_info(k8s, "Deployment", name="api"),
            k8s.module(label_selector=SELECTOR, state="scaled_down", wait_timeout=30),
            k8s.module(label_selector=SELECTOR, state="scaled_down"),
        ]
    )
    # Check mode wrote nothing.
    assert after_check["resources"][0]["metadata"]["resourceVersion"] == rv_before
    assert after_check["resources"][0]["spec"]["replicas"] == 5
    # Check mode predicted exactly what the real run then did.
    assert check["changed"] is True
    assert {n: (w["before"], w["after"]) for n, w in by_name(check).items()} == {"api": (5, 0), "queue": (1, 0)}
    assert check["diff"]["before"]["Deployment/api"]["replicas"] == 5
    assert check["diff"]["after"]["Deployment/api"] == dict(
        check["diff"]["before"]["Deployment/api"], replicas=0, recorded_replicas=5
    )
    assert {n: (w["before"], w["after"]) for n, w in by_name(down).items()} == {"api": (5, 0), "queue": (1, 0)}
    assert down["changed"] is True and down["waited_s"] > 0
    # The module returned only once the pods were gone, not just the counters.
    assert k8s.pods("app=api") == [] and k8s.pods("app=queue") == []
    api, queue = k8s.get("Deployment", "api"), k8s.get("StatefulSet", "queue")
    assert api["metadata"]["resourceVersion"] != rv_before
    assert (api["spec"]["replicas"], api["metadata"]["annotations"][RECORDED]) == (0, "5")
    assert (queue["spec"]["replicas"], queue["metadata"]["annotations"][RECORDED]) == (0, "1")
    # A second scale down keeps the original counts, not 0.
    assert again["changed"] is False
    assert {n: w["recorded_replicas"] for n, w in by_name(again).items()} == {"api": 5, "queue": 1}
    assert len(k8s.pods("app=unrelated")) == 2

    up, again = k8s.playbook(
        [
            k8s.module(label_selector=SELECTOR, state="restored", wait_timeout=30),
            k8s.module(label_selector=SELECTOR, state="restored"),
        ]
    )
    assert {n: (w["before"], w["after"]) for n, w in by_name(up).items()} == {"api": (0, 5), "queue": (0, 1)}
    assert again["changed"] is False
    api, queue = k8s.get("Deployment", "api"), k8s.get("StatefulSet", "queue")
    assert api["spec"]["replicas"] == 5 and queue["spec"]["replicas"] == 1
    assert RECORDED not in api["metadata"]["annotations"] and RECORDED not in queue["metadata"]["annotations"]
    # Ready when the module returned: every pod exists and is Running.
    assert api["status"]["readyReplicas"] == 5 and queue["status"]["readyReplicas"] == 1
    assert len(k8s.pods("app=api")) == 5 and len(k8s.pods("app=queue")) == 1


def k8s_info(k8s, kind, **kwargs):
    return {
        "kubernetes.core.k8s_info": dict({"kind": kind, "namespace": NAMESPACE, "kubeconfig": k8s.kubeconfig}, **kwargs)
    }


def _sigkill_when(proc, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        assert proc.poll() is None, "the run finished before it could be killed: %s" % proc.communicate()[0]
        time.sleep(0.05)
    raise AssertionError("the run never scaled down")


def test_killed_run_is_finished_from_another_machine(tmp_path):
    # Pods take ~5 s to terminate here, so the first run is still waiting when it is killed.
    server = FakeKubeAPIServer(str(tmp_path / "fake-k8s"), termination_ticks=50)
    server.start()
    try:
        first = Cluster(server, str(tmp_path / "operator-a"))
        os.makedirs(first.home)
        first.seed("Deployment", "api", 5, {"app": "api"})
        first.wait_ready("Deployment", "api")
        play = os.path.join(first.home, "down.yml")
        with open(play, "w") as handle:
            yaml.safe_dump(
                [
                    {
                        "hosts": "localhost",
                        "gather_facts": False,
                        "vars": {"ansible_python_interpreter": os.path.join(VENV_BIN, "python")},
                        "tasks": [first.module(name="api", state="scaled_down", wait_timeout=60)],
                    }
                ],
                handle,
            )
        proc = subprocess.Popen(
            [os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", play],
            env=first.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        _sigkill_when(proc, lambda: first.get("Deployment", "api")["spec"]["replicas"] == 0)
        assert first.get("Deployment", "api")["metadata"]["annotations"][RECORDED] == "5"

        # Another operator, another HOME and kubeconfig: nothing but the cluster is shared.
        second = Cluster(server, str(tmp_path / "operator-b"))
        os.makedirs(second.home)
        second.kubeconfig = server.write_kubeconfig(os.path.join(second.home, "kubeconfig"))
        again, up = second.playbook(
            [
                second.module(name="api", state="scaled_down", wait_timeout=60),
                second.module(name="api", state="restored", wait_timeout=60),
            ]
        )
        assert again["workloads"][0]["recorded_replicas"] == 5 and again["changed"] is False
        assert (up["workloads"][0]["before"], up["workloads"][0]["after"]) == (0, 5)
        api = second.get("Deployment", "api")
        assert api["spec"]["replicas"] == 5 and RECORDED not in api["metadata"]["annotations"]
    finally:
        server.stop()


HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {
        "name": "api",
        "namespace": NAMESPACE,
        "labels": {"team": "sre"},
        "annotations": {"owner": "platform"},
    },
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            }
        ],
    },
}


def test_autoscaler_is_suspended_during_restore_and_back_exactly(k8s):
    k8s.seed("Deployment", "api", 3, {"app": "api"})
    k8s.server.apply(HPA)
    k8s.wait_ready("Deployment", "api")
    original = k8s.get("HorizontalPodAutoscaler", "api")

    down, hpas, _unused, later, pods, up = k8s.playbook(
        [
            k8s.module(name="api", state="scaled_down", wait_timeout=30),
            k8s_info(k8s, "HorizontalPodAutoscaler", api_version="autoscaling/v2"),
            # The fake's HPA controller would scale a 0-replica target back to minReplicas within a
            # tick (0.1 s); two seconds later the app is still down.
            {"ansible.builtin.wait_for": {"timeout": 2}},
            k8s_info(k8s, "Deployment", name="api"),
            k8s_info(k8s, "Pod", label_selectors=["app=api"]),
            k8s.module(name="api", state="restored", wait_timeout=30),
        ]
    )
    assert down["workloads"][0]["autoscalers"] == ["api"]
    assert hpas["resources"] == []
    assert later["resources"][0]["spec"]["replicas"] == 0 and pods["resources"] == []
    assert up["workloads"][0]["autoscalers"] == ["api"]
    restored = k8s.get("HorizontalPodAutoscaler", "api")
    for field in ("labels", "annotations", "name", "namespace"):
        assert restored["metadata"].get(field) == original["metadata"].get(field)
    assert restored["spec"] == original["spec"]
    api = k8s.get("Deployment", "api")
    assert api["spec"]["replicas"] == 3
    assert not any(k.startswith("dr.diagnosticpro.io/") for k in api["metadata"]["annotations"])


def test_stuck_rollout_fails_naming_the_workload_within_the_timeout(k8s):
    # As a previous scaled_down left them; api's pods will never become ready.
    k8s.seed("Deployment", "api", 0, {"app": "api"}, annotations={RECORDED: "2", STUCK_ANNOTATION: "true"})
    k8s.seed("StatefulSet", "queue", 0, {"app": "queue"}, annotations={RECORDED: "1"})

    started = time.monotonic()
    (up,) = k8s.playbook(
        [k8s.module(label_selector="app in (api,queue)", state="restored", wait_timeout=4)], expect_failure=True
    )
    elapsed = time.monotonic() - started
    assert up["failed"] is True
    assert "Failed to roll out Deployment/api in namespace %s: not done after 4s" % NAMESPACE in up["msg"]
    assert "StatefulSet/queue" not in up["msg"] and up["not_ready"] == ["Deployment/api"]
    assert 4 <= up["waited_s"] < 5.5
    assert elapsed < 4 + 10, "ansible-playbook took %.1fs" % elapsed  # ansible's own start-up is the slack
    by = {w["name"]: w for w in up["workloads"]}
    assert by["api"]["after"] == 2 and by["queue"]["after"] == 1


def test_restarted_replaces_every_pod(k8s):
    k8s.seed("Deployment", "api", 3, {"app": "api"})
    k8s.seed("StatefulSet", "queue", 2, {"app": "queue"})
    k8s.wait_ready("Deployment", "api")
    k8s.wait_ready("StatefulSet", "queue")
    old = {p["metadata"]["uid"] for p in k8s.pods("app in (api,queue)")}
    (restart,) = k8s.playbook(
        [k8s.module(label_selector="app in (api,queue)", state="restarted", wait_timeout=30)], diff=True
    )
    assert restart["changed"] is True
    assert restart["diff"]["after"]["Deployment/api"]["restarted_at"]
    live = [p for p in k8s.pods("app in (api,queue)") if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 5 and not old & {p["metadata"]["uid"] for p in live}
    assert json.loads(k8s.kubectl("-n", NAMESPACE, "get", "deploy", "api", "-o", "json").stdout)["spec"]["template"][
        "metadata"
    ]["annotations"]["kubectl.kubernetes.io/restartedAt"]
