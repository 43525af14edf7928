# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stop an application before a database restore and bring it back at the size it had.

The replica count (and any HorizontalPodAutoscaler that targets the workload) is recorded
in annotations on the workload itself, so a run that died half-way can be finished from
another machine, and a second ``scaled_down`` never overwrites the recorded count with 0.

An HPA cannot be pinned at 0 (``minReplicas`` must be >= 1), so while the application is
down it is taken out of play: its definition (labels, annotations, spec) is recorded on
the workload, the HPA is deleted, and ``restored`` re-creates it exactly as it was.

Plain Python over the official ``kubernetes`` client; ``Kube`` holds the few API calls and
returns the objects as plain JSON dicts, so the planning code is testable without a cluster.
"""

from __future__ import annotations

import datetime
import json
import time

from ._errors import ConfigError, ScaleError

REPLICAS_ANNOTATION = "dr.diagnosticpro.io/recorded-replicas"
HPA_ANNOTATION = "dr.diagnosticpro.io/recorded-hpa"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
KINDS = ("Deployment", "StatefulSet")
STATES = ("scaled_down", "restored", "restarted")
HPA_MODES = ("suspend", "ignore")
CONFLICT_RETRIES = 5
POLL_S = 0.25

# Paired with plugins/doc_fragments/k8s_auth.py.
K8S_AUTH_SPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}


class Conflict(Exception):
    """The object changed between read and write (HTTP 409): re-read and plan again."""


class Kube:
    """The API calls this library makes, over the official client, returning plain dicts."""

    def __init__(self, api_client):
        from kubernetes import client

        self._exc = client.exceptions.ApiException
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)

    def call(self, method, *args, **kwargs):
        """One API call: the object as a dict, None on 404, Conflict on 409, ScaleError otherwise."""
        import urllib3

        what = method.__name__.replace("_", " ")
        try:
            response = method(*args, _preload_content=False, **kwargs)
        except self._exc as exc:
            if exc.status == 404:
                return None
            if exc.status == 409:
                raise Conflict(exc.reason) from exc
            try:
                detail = json.loads(exc.body).get("message")
            except (TypeError, ValueError, AttributeError):
                detail = exc.body
            raise ScaleError(
                "Failed to %s: HTTP %s %s: %s" % (what, exc.status, exc.reason, detail),
                hint="Check the kube context's permissions (RBAC) for this namespace",
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ScaleError(
                "Failed to %s: cannot reach the Kubernetes API server: %s" % (what, exc),
                hint="Check the kubeconfig/context and that the cluster is reachable from here",
            ) from exc
        return json.loads(response.data or b"null")

    def _kind(self, kind, verb):
        suffix = {"Deployment": "deployment", "StatefulSet": "stateful_set"}[kind]
        return getattr(self.apps, "%s_namespaced_%s" % (verb, suffix))

    # Items of a list response carry no kind: every workload dict gets one here.
    def list_workloads(self, kind, namespace, label_selector=None):
        kwargs = {"label_selector": label_selector} if label_selector else {}
        return [dict(o, kind=kind) for o in self.call(self._kind(kind, "list"), namespace, **kwargs)["items"]]

    def read_workload(self, kind, namespace, name):
        obj = self.call(self._kind(kind, "read"), name, namespace)
        return dict(obj, kind=kind) if obj else None

    def patch_workload(self, kind, namespace, name, patch):
        obj = self.call(self._kind(kind, "patch"), name, namespace, patch, _content_type="application/merge-patch+json")
        return dict(obj, kind=kind)

    def list_pods(self, namespace, label_selector):
        return self.call(self.core.list_namespaced_pod, namespace, label_selector=label_selector)["items"]

    def list_hpas(self, namespace):
        return self.call(self.autoscaling.list_namespaced_horizontal_pod_autoscaler, namespace)["items"]

    def create_hpa(self, namespace, body):
        try:
            return self.call(self.autoscaling.create_namespaced_horizontal_pod_autoscaler, namespace, body)
        except Conflict:
            return None  # already exists: a previous run re-created it

    def delete_hpa(self, namespace, name):
        return self.call(self.autoscaling.delete_namespaced_horizontal_pod_autoscaler, name, namespace)


def connect(kubeconfig=None, context=None):
    """A ``Kube`` from a kubeconfig file (default: $KUBECONFIG, ~/.kube/config) or in-cluster config."""
    from kubernetes import config

    try:
        if kubeconfig or context:
            return Kube(config.new_client_from_config(config_file=kubeconfig, context=context))
        try:
            return Kube(config.new_client_from_config())
        except config.ConfigException:
            config.load_incluster_config()
            from kubernetes import client

            return Kube(client.ApiClient())
    except (config.ConfigException, OSError) as exc:
        raise ConfigError(
            "Failed to load Kubernetes configuration %s: %s" % (kubeconfig or "(default)", exc),
            hint="Check kubeconfig/context (or KUBECONFIG) point at the right cluster",
        ) from exc


# -- pure helpers -------------------------------------------------------------------------
def ref(obj):
    return "%s/%s" % (obj["kind"], obj["metadata"]["name"])


def spec_replicas(obj):
    return int(obj.get("spec", {}).get("replicas", 1))


def selector_string(selector):
    """A LabelSelector (matchLabels/matchExpressions) as the string the list API takes."""
    parts = ["%s=%s" % kv for kv in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = expr["operator"]
        if op in ("In", "NotIn"):
            parts.append("%s %s (%s)" % (expr["key"], op.lower(), ",".join(expr.get("values") or [])))
        elif op == "Exists":
            parts.append(expr["key"])
        elif op == "DoesNotExist":
            parts.append("!" + expr["key"])
    if not parts:
        raise ScaleError("Failed to find the pods of a workload: it has an empty selector")
    return ",".join(parts)


def targets(hpa, obj):
    target = hpa.get("spec", {}).get("scaleTargetRef") or {}
    return (
        target.get("kind") == obj["kind"]
        and target.get("name") == obj["metadata"]["name"]
        and target.get("apiVersion", "apps/v1").split("/")[0] == "apps"
    )


def hpa_definition(hpa):
    """What is needed to re-create an HPA exactly: name, labels, annotations, spec."""
    meta = hpa["metadata"]
    kept = {k: meta[k] for k in ("name", "labels", "annotations") if meta.get(k)}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": kept, "spec": hpa["spec"]}


def view(obj, hpas):
    """The part of a workload this module manages, as diff and results show it."""
    annotations = obj["metadata"].get("annotations") or {}
    recorded = annotations.get(REPLICAS_ANNOTATION)
    template = ((obj["spec"].get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return {
        "replicas": spec_replicas(obj),
        "recorded_replicas": int(recorded) if recorded is not None else None,
        "autoscalers": sorted(h["metadata"]["name"] for h in hpas),
        "suspended_autoscalers": sorted(
            h["metadata"]["name"] for h in json.loads(annotations.get(HPA_ANNOTATION) or "[]")
        ),
        "restarted_at": template.get(RESTARTED_AT),
    }


def plan(state, obj, hpas, hpa_mode="suspend", now=None):
    """The changes ``state`` needs on one workload, as a dict of steps, plus the predicted view after.

    Steps, applied in this order so that a run killed between any two leaves enough on the
    workload for the next run (from any machine) to finish the job:
    ``record`` (annotations patch), ``delete_hpas``, ``replicas``, ``restart``, ``create_hpas``,
    ``forget`` (annotations removed).
    """
    before = view(obj, hpas)
    annotations = obj["metadata"].get("annotations") or {}
    steps = {}
    if state == "scaled_down":
        record = {}
        if before["recorded_replicas"] is None:
            record[REPLICAS_ANNOTATION] = str(before["replicas"])
        if hpas and hpa_mode == "suspend":
            # An HPA already recorded by an earlier run keeps its first recorded definition.
            suspended = json.loads(annotations.get(HPA_ANNOTATION) or "[]")
            known = {h["metadata"]["name"] for h in suspended}
            added = [hpa_definition(h) for h in hpas if h["metadata"]["name"] not in known]
            if added:
                record[HPA_ANNOTATION] = json.dumps(suspended + added, sort_keys=True, separators=(",", ":"))
            steps["delete_hpas"] = [h["metadata"]["name"] for h in hpas]
        if record:
            steps["record"] = record
        if before["replicas"] != 0:
            steps["replicas"] = 0
    elif state == "restored":
        if before["recorded_replicas"] is not None and before["recorded_replicas"] != before["replicas"]:
            steps["replicas"] = before["recorded_replicas"]
        present = {h["metadata"]["name"] for h in hpas}
        missing = [
            h for h in json.loads(annotations.get(HPA_ANNOTATION) or "[]") if h["metadata"]["name"] not in present
        ]
        if missing:
            steps["create_hpas"] = missing
        if REPLICAS_ANNOTATION in annotations or HPA_ANNOTATION in annotations:
            steps["forget"] = [k for k in (REPLICAS_ANNOTATION, HPA_ANNOTATION) if k in annotations]
    elif state == "restarted":
        steps["restart"] = now or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        raise ConfigError("Failed to plan %s: unknown state %r (one of %s)" % (ref(obj), state, ", ".join(STATES)))
    return steps, predict(before, steps)


def predict(before, steps):
    after = dict(before)
    if "record" in steps and REPLICAS_ANNOTATION in steps["record"]:
        after["recorded_replicas"] = int(steps["record"][REPLICAS_ANNOTATION])
    if "record" in steps and HPA_ANNOTATION in steps["record"]:
        after["suspended_autoscalers"] = sorted(
            h["metadata"]["name"] for h in json.loads(steps["record"][HPA_ANNOTATION])
        )
    if "delete_hpas" in steps:
        after["autoscalers"] = sorted(set(after["autoscalers"]) - set(steps["delete_hpas"]))
    if "replicas" in steps:
        after["replicas"] = steps["replicas"]
    if "restart" in steps:
        after["restarted_at"] = steps["restart"]
    if "create_hpas" in steps:
        after["autoscalers"] = sorted(set(after["autoscalers"]) | {h["metadata"]["name"] for h in steps["create_hpas"]})
    if "forget" in steps:
        after["recorded_replicas"] = None
        after["suspended_autoscalers"] = []
    return after


def is_ready(obj):
    """Rolled out: the controller saw the latest spec and every replica is updated, ready and available."""
    status = obj.get("status") or {}
    want = spec_replicas(obj)
    if int(status.get("observedGeneration", 0)) < int(obj["metadata"].get("generation", 1)):
        return False
    counts = [int(status.get(k, 0)) for k in ("replicas", "readyReplicas", "availableReplicas")]
    if want > 0:
        counts.append(int(status.get("updatedReplicas", 0)))
    if obj["kind"] == "StatefulSet" and want > 0 and status.get("currentRevision") != status.get("updateRevision"):
        return False
    return all(c == want for c in counts)


def describe_progress(obj, pods=None):
    """Where a workload is, for a timeout message; ``pods`` only when waiting for them to go."""
    status = obj.get("status") or {}
    text = "%s: spec.replicas=%d, %d ready, %d updated" % (
        ref(obj),
        spec_replicas(obj),
        int(status.get("readyReplicas", 0)),
        int(status.get("updatedReplicas", 0)),
    )
    if pods is not None:
        names = sorted(p["metadata"]["name"] for p in pods)
        text += ", %d pods still exist%s" % (len(names), " (%s)" % ", ".join(names[:5]) if names else "")
    return text


# -- the work -----------------------------------------------------------------------------
def select(kube, namespace, kinds, name=None, label_selector=None):
    if bool(name) == bool(label_selector):
        raise ConfigError("Failed to select workloads: give exactly one of name or label_selector")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(
            "Failed to select workloads: unsupported kinds %s (supported: %s)" % (", ".join(unknown), ", ".join(KINDS))
        )
    found = []
    for kind in kinds:
        if name:
            obj = kube.read_workload(kind, namespace, name)
            found += [obj] if obj else []
        else:
            found += kube.list_workloads(kind, namespace, label_selector)
    if not found:
        raise ScaleError(
            "Failed to find workloads: no %s %s in namespace %s"
            % ("/".join(kinds), "named %r" % name if name else "matching %r" % label_selector, namespace),
            hint="Check namespace, name/label_selector and the kube context; nothing was changed",
        )
    return found


def apply_steps(kube, namespace, obj, steps, progress):
    kind, name = obj["kind"], obj["metadata"]["name"]
    rv = obj["metadata"]["resourceVersion"]
    if "record" in steps:
        # Optimistic concurrency: the recorded count must be the one we read.
        obj = kube.patch_workload(
            kind, namespace, name, {"metadata": {"annotations": steps["record"], "resourceVersion": rv}}
        )
        progress(
            "%s: recorded %s"
            % (
                ref(obj),
                ", ".join("%s=%s" % kv for kv in steps["record"].items() if kv[0] == REPLICAS_ANNOTATION)
                or "autoscalers",
            )
        )
        rv = obj["metadata"]["resourceVersion"]
    for hpa in steps.get("delete_hpas", []):
        kube.delete_hpa(namespace, hpa)
        progress("%s: suspended autoscaler %s (deleted, definition kept on the workload)" % (ref(obj), hpa))
    if "replicas" in steps:
        patch = {"spec": {"replicas": steps["replicas"]}}
        if "record" in steps:
            patch["metadata"] = {"resourceVersion": rv}
        obj = kube.patch_workload(kind, namespace, name, patch)
        progress("%s: replicas -> %d" % (ref(obj), steps["replicas"]))
    if "restart" in steps:
        obj = kube.patch_workload(
            kind,
            namespace,
            name,
            {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: steps["restart"]}}}}},
        )
        progress("%s: rollout restart at %s" % (ref(obj), steps["restart"]))
    for hpa in steps.get("create_hpas", []):
        kube.create_hpa(namespace, hpa)
        progress("%s: autoscaler %s re-created" % (ref(obj), hpa["metadata"]["name"]))
    if "forget" in steps:
        obj = kube.patch_workload(
            kind, namespace, name, {"metadata": {"annotations": {k: None for k in steps["forget"]}}}
        )
    return obj


def converge(kube, namespace, obj, state, hpa_mode, check_mode, progress, now):
    """Plan and apply one workload; on a 409 re-read it and plan again."""
    for attempt in range(CONFLICT_RETRIES):
        hpas = [h for h in kube.list_hpas(namespace) if targets(h, obj)] if hpa_mode == "suspend" else []
        steps, after = plan(state, obj, hpas, hpa_mode, now)
        before = view(obj, hpas)
        if check_mode or not steps:
            return obj, before, after, steps
        try:
            return apply_steps(kube, namespace, obj, steps, progress), before, after, steps
        except Conflict:
            progress("%s: changed while we wrote it (409), retrying (%d)" % (ref(obj), attempt + 1))
            fresh = kube.read_workload(obj["kind"], namespace, obj["metadata"]["name"])
            if fresh is None:
                raise ScaleError(
                    "Failed to scale %s in namespace %s: it was deleted while we changed it" % (ref(obj), namespace)
                ) from None
            obj = fresh
    raise ScaleError(
        "Failed to scale %s in namespace %s: it kept changing (%d conflicts)" % (ref(obj), namespace, CONFLICT_RETRIES),
        hint="Find what else is writing to it and rerun",
    )


def done(kube, namespace, obj, state):
    if state == "scaled_down":
        pods = kube.list_pods(namespace, selector_string(obj["spec"].get("selector") or {}))
        status = obj.get("status") or {}
        return spec_replicas(obj) == 0 and int(status.get("replicas", 0)) == 0 and not pods, pods
    return is_ready(obj), None


def wait_for(kube, namespace, objs, state, timeout, progress, clock=time.monotonic, sleep=time.sleep):
    """Poll until every workload is done; returns seconds waited per workload, or raises naming the laggards."""
    started = clock()
    pending = {ref(o): o for o in objs}
    waited = {}
    last = {}
    while True:
        for key, obj in list(pending.items()):
            fresh = kube.read_workload(obj["kind"], namespace, obj["metadata"]["name"])
            if fresh is None:
                raise ScaleError("Failed to wait for %s in namespace %s: it was deleted" % (key, namespace))
            finished, pods = done(kube, namespace, fresh, state)
            if finished:
                waited[key] = round(clock() - started, 2)
                del pending[key]
                progress(
                    "%s: %s after %.1fs" % (key, "all pods gone" if state == "scaled_down" else "ready", waited[key])
                )
            else:
                last[key] = describe_progress(fresh, pods)
        if not pending:
            return waited
        if clock() - started >= timeout:
            verb = "scale down" if state == "scaled_down" else "roll out"
            raise ScaleError(
                "Failed to %s %s in namespace %s: not done after %ss (%s)"
                % (verb, ", ".join(sorted(pending)), namespace, timeout, "; ".join(last[k] for k in sorted(pending))),
                partial={"waited_s": round(clock() - started, 2), "not_ready": sorted(pending)},
                hint="See `kubectl -n %s describe %s` and its pods' events, fix the cause and rerun this step%s"
                % (
                    namespace,
                    " ".join(sorted(pending)).lower(),
                    "; the recorded replica counts stay on the workloads" if state != "restarted" else "",
                ),
            )
        sleep(POLL_S)


def scale_workloads(
    kube,
    namespace,
    state,
    name=None,
    label_selector=None,
    kinds=KINDS,
    wait=True,
    wait_timeout=300,
    hpa_mode="suspend",
    check_mode=False,
    progress=None,
    now=None,
    clock=time.monotonic,
    sleep=time.sleep,
):
    """Bring the selected workloads to ``state``; returns ``changed``, ``workloads``, ``diff``, ``waited_s``."""
    if state not in STATES:
        raise ConfigError("Failed to scale workloads: unknown state %r (one of %s)" % (state, ", ".join(STATES)))
    if hpa_mode not in HPA_MODES:
        raise ConfigError(
            "Failed to scale workloads: unknown hpa_mode %r (one of %s)" % (hpa_mode, ", ".join(HPA_MODES))
        )
    progress = progress or (lambda message: None)
    results, objs, diff = [], [], {"before": {}, "after": {}}
    for obj in select(kube, namespace, list(kinds), name, label_selector):
        obj, before, after, steps = converge(kube, namespace, obj, state, hpa_mode, check_mode, progress, now)
        objs.append(obj)
        diff["before"][ref(obj)], diff["after"][ref(obj)] = before, after
        results.append(
            {
                "kind": obj["kind"],
                "name": obj["metadata"]["name"],
                "before": before["replicas"],
                "after": after["replicas"],
                "changed": before != after,
                "waited_s": 0.0,
                "recorded_replicas": (after if state == "scaled_down" else before)["recorded_replicas"],
                "autoscalers": sorted(
                    steps.get("delete_hpas", []) + [h["metadata"]["name"] for h in steps.get("create_hpas", [])]
                ),
            }
        )
    changed = any(r["changed"] for r in results)
    warnings = [
        "%s/%s was already at 0 replicas with no count recorded: restored will leave it at 0. If an earlier "
        "tool scaled it down, set annotation %s to the replicas it should come back with"
        % (r["kind"], r["name"], REPLICAS_ANNOTATION)
        for r in results
        if state == "scaled_down" and r["before"] == 0 and r["changed"] and r["recorded_replicas"] == 0
    ]
    waited = {}
    if wait and not check_mode:
        try:
            waited = wait_for(kube, namespace, objs, state, wait_timeout, progress, clock, sleep)
        except ScaleError as exc:
            exc.partial.update(workloads=results, changed=changed)
            raise
    for item in results:
        item["waited_s"] = waited.get("%s/%s" % (item["kind"], item["name"]), 0.0)
    return {
        "changed": changed,
        "workloads": results,
        "diff": diff,
        "warnings": warnings,
        "waited_s": max(waited.values()) if waited else 0.0,
    }
