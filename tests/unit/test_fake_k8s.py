"""The fake Kubernetes API server (sandbox/fake_k8s.py): its pieces, and its HTTP API as clients see it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from sandbox.fake_k8s import (
    STUCK_ANNOTATION,
    FakeKubeAPIServer,
    json_patch,
    labels_match,
    merge_patch,
    parse_label_selector,
    pod_ready,
    strategic_merge_patch,
    workload,
)

pytestmark = pytest.mark.k8s
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    "selector, labels, match",
    [
        ("app=api", {"app": "api"}, True),
        ("app==api", {"app": "web"}, False),
        ("app!=api", {}, True),
        ("app!=api", {"app": "api"}, False),
        ("tier in (a, b),app", {"tier": "b", "app": "x"}, True),
        ("tier in (a,b)", {"tier": "c"}, False),
        ("tier notin (a,b)", {}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("!canary", {"canary": "1"}, False),
        ("app.kubernetes.io/part-of=shop", {"app.kubernetes.io/part-of": "shop"}, True),
        ("", {"any": "thing"}, True),
    ],
)
def test_label_selectors(selector, labels, match):
    assert labels_match(parse_label_selector(selector), labels) is match


@pytest.mark.parametrize(
    "func, target, patch, result",
    [
        (merge_patch, {"a": 1, "b": {"c": 2}}, {"b": {"c": None, "d": 3}}, {"a": 1, "b": {"d": 3}}),
        (merge_patch, {"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
        (
            strategic_merge_patch,
            {"c": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]},
            {"c": [{"name": "b", "image": "2"}], "$setElementOrder/c": [{"name": "a"}, {"name": "b"}]},
            {"c": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]},
        ),
        (
            strategic_merge_patch,
            {"c": [{"name": "a"}, {"name": "b"}]},
            {"c": [{"name": "a", "$patch": "delete"}]},
            {"c": [{"name": "b"}]},
        ),
        (
            json_patch,
            {"a": {"b": [1, 2]}},
            [
                {"op": "add", "path": "/a/b/-", "value": 3},
                {"op": "add", "path": "/a/c", "value": "x"},
                {"op": "replace", "path": "/a/c", "value": "y"},
                {"op": "remove", "path": "/a/b/0"},
            ],
            {"a": {"b": [2, 3], "c": "y"}},
        ),
        (
            json_patch,
            {"metadata": {"annotations": {"k8s.io/x": "1"}}},
            [{"op": "remove", "path": "/metadata/annotations/k8s.io~1x"}],
            {"metadata": {"annotations": {}}},
        ),
    ],
)
def test_patches(func, target, patch, result):
    assert func(target, patch) == result


@pytest.fixture()
def server(tmp_path):
    srv = FakeKubeAPIServer(str(tmp_path), tick=0.05)
    srv.start()
    yield srv
    srv.stop()


def call(server, method, path, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the fake server on loopback
        server.url + path,
        data=data,
        method=method,  # noqa: S310
        headers={"Content-Type": content_type, "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def test_discovery(server):
    assert call(server, "GET", "/version")[1]["major"] == "1"
    assert call(server, "GET", "/api")[1]["versions"] == ["v1"]
    groups = {g["name"]: [v["version"] for v in g["versions"]] for g in call(server, "GET", "/apis")[1]["groups"]}
    assert groups == {"apps": ["v1"], "autoscaling": ["v2", "v1"]}
    core = {r["name"]: r for r in call(server, "GET", "/api/v1")[1]["resources"]}
    assert {"namespaces", "pods", "secrets", "configmaps", "services"} <= set(core)
    assert core["namespaces"]["namespaced"] is False and "watch" in core["pods"]["verbs"]
    apps = {r["name"]: r for r in call(server, "GET", "/apis/apps/v1")[1]["resources"]}
    for plural in ("deployments", "statefulsets"):
        scale = apps[plural + "/scale"]
        assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    for version in ("v1", "v2"):
        names = [r["name"] for r in call(server, "GET", "/apis/autoscaling/" + version)[1]["resources"]]
        assert "horizontalpodautoscalers" in names
    assert "apis/apps/v1" in call(server, "GET", "/openapi/v3")[1]["paths"]


def test_crud_errors_and_versions(server):
    code, obj = call(server, "POST", DEPLOYMENTS, workload("Deployment", "api", 2, {"app": "api"}))
    assert code == 201 and obj["metadata"]["generation"] == 1 and obj["metadata"]["uid"]
    code, err = call(server, "POST", DEPLOYMENTS, workload("Deployment", "api", 2, {"app": "api"}))
    assert (code, err["kind"], err["reason"]) == (409, "Status", "AlreadyExists")
    code, err = call(server, "GET", DEPLOYMENTS + "/nope")
    assert (code, err["reason"], err["details"]["name"]) == (404, "NotFound", "nope")
    code, err = call(server, "POST", "/api/v1/namespaces/missing/configmaps", {"metadata": {"name": "x"}})
    assert code == 404

    # Metadata-only change: new resourceVersion, same generation.
    code, labelled = call(
        server, "PATCH", DEPLOYMENTS + "/api", {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json"
    )
    assert code == 200 and labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])
    # Spec change bumps generation.
    code, scaled = call(
        server, "PATCH", DEPLOYMENTS + "/api/scale", {"spec": {"replicas": 4}}, "application/merge-patch+json"
    )
    assert (code, scaled["kind"], scaled["spec"]["replicas"]) == (200, "Scale", 4)
    current = call(server, "GET", DEPLOYMENTS + "/api")[1]
    assert current["metadata"]["generation"] == 2
    # A stale resourceVersion is a conflict, for PUT and for PATCH.
    code, err = call(server, "PUT", DEPLOYMENTS + "/api", obj)
    assert (code, err["reason"]) == (409, "Conflict")
    code, err = call(
        server, "PATCH", DEPLOYMENTS + "/api", {"metadata": {"resourceVersion": "1"}}, "application/merge-patch+json"
    )
    assert code == 409
    # JSON patch, dry run, server-side apply.
    code, patched = call(
        server,
        "PATCH",
        DEPLOYMENTS + "/api?dryRun=All",
        [{"op": "replace", "path": "/spec/replicas", "value": 9}],
        "application/json-patch+json",
    )
    assert code == 200 and patched["spec"]["replicas"] == 9
    assert call(server, "GET", DEPLOYMENTS + "/api")[1]["spec"]["replicas"] == 4
    code, applied = call(
        server,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cfg?fieldManager=t",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}},
        "application/apply-patch+yaml",
    )
    assert code == 201 and applied["data"] == {"a": "1"}
    code, status = call(server, "DELETE", "/api/v1/namespaces/default/configmaps/cfg")
    assert (code, status["status"]) == (200, "Success")


def test_lists_with_selectors(server):
    server.apply(workload("Deployment", "api", 0, {"app": "api", "tier": "web"}))
    server.apply(workload("Deployment", "db", 0, {"app": "db"}))

    def names(query):
        return [o["metadata"]["name"] for o in call(server, "GET", DEPLOYMENTS + query)[1]["items"]]

    assert names("?labelSelector=tier%20in%20(web)") == ["api"]
    assert names("?labelSelector=app!%3Dapi") == ["db"]
    assert names("?fieldSelector=metadata.name%3Ddb") == ["db"]
    assert names("?fieldSelector=metadata.namespace%3Ddefault") == ["api", "db"]


def read_watch(server, query, count, timeout=10):
    with urllib.request.urlopen(server.url + DEPLOYMENTS + query, timeout=timeout) as response:  # noqa: S310
        return [json.loads(response.readline()) for _unused in range(count)]


def test_watch_list_initial_events_then_bookmark(server):
    server.apply(workload("Deployment", "api", 0, {"app": "api"}))
    events = read_watch(
        server,
        "?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=2",
        2,
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_from_resource_version_and_timeout(server):
    obj = server.apply(workload("Deployment", "api", 0, {"app": "api"}))
    server.apply(dict(obj, spec=dict(obj["spec"], replicas=0, paused=True)))
    started = time.monotonic()
    with urllib.request.urlopen(  # noqa: S310 - the fake server on loopback
        server.url
        + DEPLOYMENTS
        + "?watch=true&timeoutSeconds=1&resourceVersion="  # noqa: S310
        + obj["metadata"]["resourceVersion"],
        timeout=10,
    ) as response:
        lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    assert 1 <= time.monotonic() - started < 3
    assert lines and lines[0]["type"] == "MODIFIED" and lines[0]["object"]["spec"]["paused"] is True


def test_controller_pods_follow_spec(server):
    server.apply(workload("Deployment", "api", 3, {"app": "api"}))
    server.wait_for(lambda: len([p for p in server.pods("default", "app=api") if pod_ready(p)]) == 3)
    pod = server.pods("default", "app=api")[0]
    assert pod["status"]["phase"] == "Running" and pod["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    obj = server.get("apps/v1", "Deployment", "api")
    server.apply(dict(obj, spec=dict(obj["spec"], replicas=0)))
    # The counters reach 0 while the pods are still terminating, as in a real cluster.
    server.wait_for(lambda: server.get("apps/v1", "Deployment", "api")["status"]["replicas"] == 0)
    assert server.pods("default", "app=api"), "pods should linger while terminating"
    assert all(p["metadata"].get("deletionTimestamp") for p in server.pods("default", "app=api"))
    server.wait_for(lambda: server.pods("default", "app=api") == [])


def test_stuck_workload_never_becomes_ready(server):
    server.apply(workload("StatefulSet", "db", 2, {"app": "db"}, annotations={STUCK_ANNOTATION: "true"}))
    server.wait_for(lambda: server.pods("default", "app=db"))
    time.sleep(0.5)
    pods = server.pods("default", "app=db")
    assert [p["metadata"]["name"] for p in pods] == ["db-0"] and not pod_ready(pods[0])


def test_hpa_controller_is_strict(server):
    server.apply(workload("Deployment", "api", 0, {"app": "api"}))
    server.apply(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                "minReplicas": 2,
                "maxReplicas": 4,
            },
        }
    )
    server.wait_for(lambda: server.get("apps/v1", "Deployment", "api")["spec"]["replicas"] == 2)
    v1 = call(server, "GET", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/api")[1]
    assert v1["apiVersion"] == "autoscaling/v1" and v1["spec"]["maxReplicas"] == 4


def test_official_client_deserializes_everything(server):
    from kubernetes import client, config

    server.apply(workload("Deployment", "api", 1, {"app": "api"}))
    server.apply(workload("StatefulSet", "db", 1, {"app": "db"}))
    server.wait_for(lambda: len(server.pods("default")) == 2 and all(pod_ready(p) for p in server.pods("default")))
    api = config.new_client_from_config(server.kubeconfig, context="fake")
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    assert apps.read_namespaced_stateful_set("db", "default").status.replicas == 1
    assert apps.read_namespaced_deployment("api", "default").status.ready_replicas == 1
    assert apps.read_namespaced_deployment_scale("api", "default").status.selector == "app=api"
    assert len(core.list_namespaced_pod("default").items) == 2
    assert [n.metadata.name for n in core.list_namespace().items] == ["default", "kube-public", "kube-system"]
    with pytest.raises(client.exceptions.ApiException) as caught:
        apps.read_namespaced_deployment("missing", "default")
    assert caught.value.status == 404


def test_cli_runs_in_the_foreground_until_sigterm(tmp_path):
    from sandbox.services import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.fake_k8s", "--port", str(port), "--dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "fake Kubernetes API server on http://127.0.0.1:%d" % port in proc.stdout.readline()
        with urllib.request.urlopen("http://127.0.0.1:%d/version" % port, timeout=5) as response:  # noqa: S310
            assert json.loads(response.read())["gitVersion"].startswith("v1.37")
        assert "server: http://127.0.0.1:%d" % port in (tmp_path / "kubeconfig").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_kubectl_get_gets_a_table(server):
    server.apply(workload("Deployment", "api", 1, {"app": "api"}))
    server.wait_for(lambda: server.get("apps/v1", "Deployment", "api")["status"].get("readyReplicas") == 1)
    request = urllib.request.Request(  # noqa: S310 - the fake server on loopback
        server.url + DEPLOYMENTS,
        headers={  # noqa: S310
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        table = json.loads(response.read())
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:2] == ["api", "1/1"]


def test_cli_demo_seed(tmp_path):
    from sandbox.services import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.fake_k8s", "--port", str(port), "--dir", str(tmp_path), "--demo"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        proc.stdout.readline()
        url = "http://127.0.0.1:%d/apis/apps/v1/namespaces/diagnosticpro/deployments/diagnosticpro-api" % port
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            obj = json.loads(response.read())
        assert obj["spec"]["replicas"] == 3 and obj["metadata"]["labels"] == {"app": "diagnosticpro"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
