"""A small, stateful Kubernetes API server double, for the tests, Molecule and the sandbox.

No real kube-apiserver can run here (no container runtime, no control-plane binaries) and
the PyPI doubles are not faithful enough for kubectl or kubernetes.core, so this is a plain
stdlib HTTP server that speaks enough of the API for real clients:

* discovery (``/version``, ``/api``, ``/apis``, per group-version resource lists with verbs,
  ``namespaced`` and the ``deployments/scale`` / ``statefulsets/scale`` subresources of kind
  ``autoscaling/v1 Scale``) and ``/openapi/v2``, ``/openapi/v3`` stubs;
* core/v1 Namespaces, Pods, Secrets, ConfigMaps, Services; apps/v1 Deployments,
  StatefulSets; autoscaling/v2 HorizontalPodAutoscalers;
* GET/LIST/POST/PUT/PATCH (merge, strategic merge, JSON patch, server-side apply)/DELETE,
  ``dryRun=All``, label and field selectors, a global resourceVersion with 409 Conflict on a
  stale one, ``generation`` bumped on spec changes only, Status objects for errors;
* watch (chunked JSON lines) from a resourceVersion, with ``timeoutSeconds``, bookmarks and
  the WatchList initial-events-end bookmark kubectl >= 1.32 waits for;
* server-side Tables for ``kubectl get`` (READY/STATUS columns) and the ``all`` category.

Not there: ReplicaSets, Events, auth, protobuf, progress deadlines; ``kubectl get -w`` gets its
first listing as a Table and later changes as plain objects. State is in memory only.

A controller loop moves each workload one step per tick: it creates owned pods (Pending,
then Running and Ready on the next tick), deletes pods gracefully (``deletionTimestamp``
first, gone a few ticks later, so "status says 0" and "the pods are gone" differ as they do
in a real cluster), rolls pods whose template changed, and writes the status fields clients
look at. Annotation ``fake.k8s/stuck: "true"`` on a workload keeps its new pods from ever
becoming ready, for timeout tests. The HPA controller is deliberately stricter than
kube-controller-manager: it also scales a workload at 0 replicas back into
[minReplicas, maxReplicas], so a test can prove an autoscaler was really taken out of play.

Run ``python -m sandbox.fake_k8s --port N --dir DIR`` for a foreground server (the sandbox
backgrounds it); it writes ``DIR/kubeconfig`` (context ``fake``) and ``DIR/fake_k8s.json``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVER_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-fake",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25",
    "compiler": "gc",
    "platform": "linux/amd64",
}
STUCK_ANNOTATION = "fake.k8s/stuck"
TICK_S = 0.1
# A deleted pod lingers with a deletionTimestamp for this many ticks, like a grace period.
TERMINATION_TICKS = 3
EVENT_LOG_SIZE = 20000
# Resources that have a status subresource: writes to the main resource leave status alone.
STATUS_KINDS = {"Pod", "Deployment", "StatefulSet", "HorizontalPodAutoscaler", "Namespace", "Service"}


# Kinds `kubectl get all` shows.
ALL_CATEGORY = {"Pod", "Service", "Deployment", "StatefulSet", "HorizontalPodAutoscaler"}


class Resource:
    def __init__(self, group, version, plural, kind, namespaced=True, short_names=(), subresources=(), verbs=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.subresources = list(subresources)
        self.verbs = verbs or ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    def discovery(self):
        entries = [
            {
                "name": self.plural,
                "singularName": self.kind.lower(),
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": self.verbs,
                "shortNames": self.short_names,
                "storageVersionHash": hashlib.sha256(self.plural.encode()).hexdigest()[:11],
            }
        ]
        if not self.short_names:
            del entries[0]["shortNames"]
        if self.kind in ALL_CATEGORY:
            entries[0]["categories"] = ["all"]
        for sub in self.subresources:
            entry = {
                "name": "%s/%s" % (self.plural, sub),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                entry.update(group="autoscaling", version="v1", kind="Scale")
            entries.append(entry)
        return entries


HPA_V1 = Resource(
    "autoscaling",
    "v1",
    "horizontalpodautoscalers",
    "HorizontalPodAutoscaler",
    short_names=["hpa"],
    subresources=["status"],
)
RESOURCES = [
    Resource(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=["ns"],
        subresources=["status"],
        verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
    ),
    Resource("", "v1", "pods", "Pod", short_names=["po"], subresources=["status"]),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=["cm"]),
    Resource("", "v1", "services", "Service", short_names=["svc"], subresources=["status"]),
    Resource("apps", "v1", "deployments", "Deployment", short_names=["deploy"], subresources=["scale", "status"]),
    Resource("apps", "v1", "statefulsets", "StatefulSet", short_names=["sts"], subresources=["scale", "status"]),
    Resource(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=["hpa"],
        subresources=["status"],
    ),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}
GROUPS = {"apps": ["v1"], "autoscaling": ["v2", "v1"]}


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self):
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(res, name):
    return ApiError(
        404,
        "NotFound",
        '%s "%s" not found' % (res.plural if res.group == "" else "%s.%s" % (res.plural, res.group), name),
        {"name": name, "group": res.group, "kind": res.plural},
    )


# -- selectors -------------------------------------------------------------------------
_REQ = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_selector(text):
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def parse_label_selector(text):
    """'a=b,c!=d,e in (x,y),f notin (z),g,!h' -> list of (key, op, values)."""
    reqs = []
    for part in _split_selector(text or ""):
        m = _REQ.match(part)
        if not m:
            raise ApiError(400, "BadRequest", "unable to parse requirement: %r" % part.strip())
        bang, key, eq_op, eq_val, set_op, set_vals = m.groups()
        if bang:
            reqs.append((key, "!exists", ()))
        elif eq_op:
            reqs.append((key, "!=" if eq_op == "!=" else "=", (eq_val,)))
        elif set_op:
            reqs.append((key, set_op, tuple(v.strip() for v in set_vals.split(",") if v.strip())))
        else:
            reqs.append((key, "exists", ()))
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, values in reqs:
        present, value = key in labels, labels.get(key)
        if op == "=":
            ok = present and value == values[0]
        elif op == "!=":
            ok = not present or value != values[0]
        elif op == "in":
            ok = present and value in values
        elif op == "notin":
            ok = not present or value not in values
        else:
            ok = present if op == "exists" else not present
        if not ok:
            return False
    return True


def selector_to_string(selector):
    """A LabelSelector (matchLabels/matchExpressions) as the string form clients send."""
    parts = ["%s=%s" % kv for kv in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = expr["operator"]
        if op in ("In", "NotIn"):
            parts.append("%s %s (%s)" % (expr["key"], op.lower(), ",".join(expr.get("values") or [])))
        elif op == "Exists":
            parts.append(expr["key"])
        else:
            parts.append("!" + expr["key"])
    return ",".join(parts)


def field_value(obj, path):
    cur = obj
    for piece in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(piece)
    return "" if cur is None else str(cur)


def parse_field_selector(text):
    reqs = []
    for part in [p for p in (text or "").split(",") if p.strip()]:
        m = re.match(r"^\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, "BadRequest", "invalid field selector: %r" % part)
        reqs.append((m.group(1), m.group(2) != "!=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    return all((field_value(obj, path) == value) == equal for path, equal, value in reqs)


# -- patches -----------------------------------------------------------------------------
def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Merge keys of the list fields that strategic merge patches address element by element.
MERGE_KEYS = ("name", "containerPort", "mountPath", "type", "ip", "port", "devicePath")


def strategic_merge_patch(target, patch):
    """Strategic merge patch, as far as kubectl and client libraries use it on these kinds."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _merge_list(current, patch):
    if not (patch and all(isinstance(v, dict) for v in patch) and all(isinstance(v, dict) for v in current)):
        return copy.deepcopy(patch)
    merge_key = next((k for k in MERGE_KEYS if all(k in v for v in patch if v.get("$patch") != "replace")), None)
    if merge_key is None:
        return copy.deepcopy(patch)
    merged = copy.deepcopy(current)
    for item in patch:
        index = next((i for i, v in enumerate(merged) if v.get(merge_key) == item.get(merge_key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _pointer(path):
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(target, ops):
    """RFC 6902 JSON patch."""
    doc = copy.deepcopy(target)

    def parent(path):
        parts = _pointer(path)
        cur = doc
        for part in parts[:-1]:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        return cur, parts[-1]

    def get(path):
        cur = doc
        for part in _pointer(path):
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        return cur

    def add(path, value):
        container, key = parent(path)
        if isinstance(container, list):
            container.insert(len(container) if key == "-" else int(key), value)
        else:
            container[key] = value

    def remove(path):
        container, key = parent(path)
        return container.pop(int(key) if isinstance(container, list) else key)

    try:
        for op in ops:
            kind, path = op["op"], op["path"]
            if kind == "add":
                add(path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op["value"]))
            elif kind == "move":
                add(path, remove(op["from"]))
            elif kind == "copy":
                add(path, copy.deepcopy(get(op["from"])))
            elif kind == "test":
                if get(path) != op["value"]:
                    raise ApiError(
                        422, "Invalid", "the server rejected our request: test operation failed at %s" % path
                    )
            else:
                raise ApiError(400, "BadRequest", "unknown JSON patch op %r" % kind)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise ApiError(
            422, "Invalid", "the server rejected our request due to an error in our request: %s" % exc
        ) from exc
    return doc


# -- the store ---------------------------------------------------------------------------
class Store:
    """Objects by (apiVersion-independent) resource, namespace and name, plus an event log."""

    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 1
        self.objects = {}  # (plural, namespace, name) -> obj
        self.events = []  # (rv, plural, type, obj)
        self.first_rv = 1

    def _key(self, res, ns, name):
        return (res.plural, ns if res.namespaced else "", name)

    def _record(self, res, kind, obj):
        self.events.append((int(obj["metadata"]["resourceVersion"]), res.plural, kind, copy.deepcopy(obj)))
        if len(self.events) > EVENT_LOG_SIZE:
            drop = len(self.events) - EVENT_LOG_SIZE
            self.first_rv = self.events[drop][0]
            del self.events[:drop]
        self.changed.notify_all()

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def get(self, res, ns, name):
        with self.lock:
            obj = self.objects.get(self._key(res, ns, name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def find(self, res, ns, name):
        with self.lock:
            obj = self.objects.get(self._key(res, ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, res, ns=None, label_selector="", field_selector=""):
        lreqs, freqs = parse_label_selector(label_selector), parse_field_selector(field_selector)
        with self.lock:
            items = [
                copy.deepcopy(o)
                for (plural, ons, _), o in sorted(self.objects.items())
                if plural == res.plural
                and (not ns or ons == ns)
                and labels_match(lreqs, o["metadata"].get("labels"))
                and fields_match(freqs, o)
            ]
            return items, str(self.rv)

    def create(self, res, ns, obj, dry_run=False):
        with self.lock:
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            name = meta.get("name")
            if not name:
                raise ApiError(
                    422,
                    "Invalid",
                    '%s in version "%s" cannot be handled: name or generateName is required' % (res.kind, res.version),
                )
            if res.namespaced:
                if meta.get("namespace") and ns and meta["namespace"] != ns:
                    raise ApiError(
                        400,
                        "BadRequest",
                        "the namespace of the provided object does not match the namespace sent on the request",
                    )
                ns = ns or meta.get("namespace") or "default"
                if self.objects.get(("namespaces", "", ns)) is None:
                    raise ApiError(
                        404, "NotFound", 'namespaces "%s" not found' % ns, {"name": ns, "kind": "namespaces"}
                    )
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            key = self._key(res, ns, name)
            if key in self.objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    '%s "%s" already exists' % (res.plural, name),
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso(), generation=1)
            meta.pop("deletionTimestamp", None)
            defaults(res, obj)
            if dry_run:
                meta["resourceVersion"] = str(self.rv)
                return copy.deepcopy(obj)
            meta["resourceVersion"] = self._next_rv()
            self.objects[key] = obj
            self._record(res, "ADDED", obj)
            return copy.deepcopy(obj)

    def replace(self, res, ns, name, new, subresource=None, dry_run=False):
        """PUT semantics: stale metadata.resourceVersion -> 409; spec change -> generation + 1."""
        with self.lock:
            key = self._key(res, ns, name)
            old = self.objects.get(key)
            if old is None:
                raise not_found(res, name)
            given = (new.get("metadata") or {}).get("resourceVersion")
            if given and given != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    'Operation cannot be fulfilled on %s "%s": the object has been '
                    "modified; please apply your changes to the latest version and try again"
                    % (res.plural if not res.group else "%s.%s" % (res.plural, res.group), name),
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            if subresource == "status":
                obj = copy.deepcopy(old)
                obj["status"] = copy.deepcopy(new.get("status") or {})
            else:
                obj = copy.deepcopy(new)
                obj["apiVersion"], obj["kind"] = res.api_version, res.kind
                meta = obj.setdefault("metadata", {})
                for field in ("uid", "creationTimestamp", "generation", "namespace", "name", "deletionTimestamp"):
                    if field in old["metadata"]:
                        meta[field] = old["metadata"][field]
                    else:
                        meta.pop(field, None)
                if res.kind in STATUS_KINDS:
                    obj["status"] = copy.deepcopy(old.get("status"))
                    if obj["status"] is None:
                        obj.pop("status")
                defaults(res, obj)
                if obj.get("spec") != old.get("spec"):
                    meta["generation"] = old["metadata"].get("generation", 1) + 1
            if obj == old:
                return copy.deepcopy(old)
            if dry_run:
                return copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[key] = obj
            self._record(res, "MODIFIED", obj)
            return copy.deepcopy(obj)

    def delete(self, res, ns, name, dry_run=False):
        with self.lock:
            key = self._key(res, ns, name)
            obj = self.objects.get(key)
            if obj is None:
                raise not_found(res, name)
            if dry_run:
                return copy.deepcopy(obj)
            del self.objects[key]
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._record(res, "DELETED", obj)
            return obj

    def events_after(self, plural, rv):
        with self.lock:
            if rv < self.first_rv - 1:
                return None
            return [e for e in self.events if e[0] > rv and e[1] == plural]


def defaults(res, obj):
    """The defaults real clients rely on (spec.replicas, strategies, status shape)."""
    spec = obj.setdefault("spec", {}) if res.kind not in ("Secret", "ConfigMap", "Namespace") else None
    meta = obj["metadata"]
    if res.kind in ("Deployment", "StatefulSet"):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        template = spec.setdefault("template", {})
        template.setdefault("metadata", {})
        if "selector" not in spec and template["metadata"].get("labels"):
            spec["selector"] = {"matchLabels": dict(template["metadata"]["labels"])}
        if res.kind == "Deployment":
            spec.setdefault(
                "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
            )
            spec.setdefault("progressDeadlineSeconds", 600)
            obj.setdefault("status", {})
        else:
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("serviceName", meta.get("name", ""))
            obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})
    elif res.kind == "Pod":
        obj.setdefault("status", {"phase": "Pending"})
    elif res.kind == "Namespace":
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    elif res.kind == "Service":
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("clusterIP", "10.96.%d.%d" % tuple(uuid.uuid4().bytes[:2]))
        obj.setdefault("status", {"loadBalancer": {}})
    elif res.kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif res.kind == "HorizontalPodAutoscaler":
        spec.setdefault("minReplicas", 1)
        obj.setdefault("status", {"currentReplicas": 0, "desiredReplicas": 0})


# -- controllers -------------------------------------------------------------------------
def template_hash(spec):
    return hashlib.sha256(json.dumps(spec.get("template"), sort_keys=True).encode()).hexdigest()[:10]


def pod_ready(pod):
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


class Controller:
    """Workload, pod-lifecycle, garbage-collection and HPA controllers, one step per tick."""

    def __init__(self, store, tick=TICK_S, termination_ticks=TERMINATION_TICKS):
        self.store, self.tick, self.termination_ticks = store, tick, termination_ticks
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="fake-k8s-controller", daemon=True)
        self.terminating = {}  # (ns, pod name) -> ticks left

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)

    def _loop(self):
        while not self.stopping.wait(self.tick):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - a controller bug must not kill the server; visible in its log
                import traceback

                traceback.print_exc()

    def step(self):
        store = self.store
        pods_res = BY_KIND[("v1", "Pod")]
        with store.lock:
            self._pod_lifecycle(pods_res)
            owners = set()
            for kind in ("Deployment", "StatefulSet"):
                res = BY_KIND[("apps/v1", kind)]
                for obj in store.list(res)[0]:
                    owners.add(obj["metadata"]["uid"])
                    self._reconcile(res, obj, pods_res)
            for pod in store.list(pods_res)[0]:
                refs = pod["metadata"].get("ownerReferences") or []
                if refs and not any(r["uid"] in owners for r in refs):
                    self._terminate(pods_res, pod)
            self._hpas()

    def _pod_lifecycle(self, pods_res):
        store = self.store
        for (ns, name), left in list(self.terminating.items()):
            if left <= 1:
                del self.terminating[(ns, name)]
                if store.find(pods_res, ns, name):
                    store.delete(pods_res, ns, name)
            else:
                self.terminating[(ns, name)] = left - 1
        for pod in store.list(pods_res)[0]:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                self.terminating.setdefault((meta["namespace"], meta["name"]), self.termination_ticks)
            elif pod["status"].get("phase") == "Pending" and not meta.get("annotations", {}).get(STUCK_ANNOTATION):
                status = {
                    "phase": "Running",
                    "podIP": "10.244.0.%d" % (uuid.uuid4().bytes[0] or 1),
                    "hostIP": "10.0.0.1",
                    "startTime": now_iso(),
                    "qosClass": "BestEffort",
                    "conditions": [
                        {"type": t, "status": "True", "lastTransitionTime": now_iso()}
                        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
                    ],
                    "containerStatuses": [
                        {
                            "name": c.get("name", "app"),
                            "ready": True,
                            "restartCount": 0,
                            "started": True,
                            "image": c.get("image", ""),
                            "imageID": "",
                            "state": {"running": {"startedAt": now_iso()}},
                        }
                        for c in pod["spec"].get("containers") or []
                    ],
                }
                pod["status"] = status
                store.replace(pods_res, meta["namespace"], meta["name"], pod, subresource="status")

    def _terminate(self, pods_res, pod):
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            return
        pod["metadata"]["deletionTimestamp"] = now_iso()
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
        key = self.store._key(pods_res, meta["namespace"], meta["name"])
        with self.store.lock:
            current = self.store.objects.get(key)
            if current is None:
                return
            current = copy.deepcopy(current)
            current["metadata"]["deletionTimestamp"] = meta["deletionTimestamp"]
            current["metadata"]["deletionGracePeriodSeconds"] = 30
            current["metadata"]["resourceVersion"] = self.store._next_rv()
            self.store.objects[key] = current
            self.store._record(pods_res, "MODIFIED", current)
        self.terminating.setdefault((meta["namespace"], meta["name"]), self.termination_ticks)

    def _new_pod(self, res, obj, pods_res, revision, name):
        meta, spec = obj["metadata"], obj["spec"]
        template = copy.deepcopy(spec.get("template") or {})
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        annotations = dict((template.get("metadata") or {}).get("annotations") or {})
        if (meta.get("annotations") or {}).get(STUCK_ANNOTATION) == "true":
            annotations[STUCK_ANNOTATION] = "true"
        if res.kind == "Deployment":
            labels["pod-template-hash"] = revision
        else:
            labels["controller-revision-hash"] = "%s-%s" % (meta["name"], revision)
            labels["statefulset.kubernetes.io/pod-name"] = name
        pod_spec = template.get("spec") or {}
        pod_spec.setdefault("containers", [{"name": "app", "image": "registry.invalid/app:latest"}])
        pod_spec.setdefault("nodeName", "fake-node-1")
        pod = {
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": res.api_version,
                        "kind": res.kind,
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
        }
        self.store.create(pods_res, meta["namespace"], pod)

    def _reconcile(self, res, obj, pods_res):
        meta, spec = obj["metadata"], obj["spec"]
        desired = int(spec.get("replicas", 1))
        revision = template_hash(spec)
        rev_label = "pod-template-hash" if res.kind == "Deployment" else "controller-revision-hash"
        want = revision if res.kind == "Deployment" else "%s-%s" % (meta["name"], revision)
        owned = [
            p
            for p in self.store.list(pods_res, meta["namespace"])[0]
            if any(r["uid"] == meta["uid"] for r in p["metadata"].get("ownerReferences") or [])
        ]
        live = [p for p in owned if not p["metadata"].get("deletionTimestamp")]
        new = [p for p in live if p["metadata"]["labels"].get(rev_label) == want]
        old = [p for p in live if p["metadata"]["labels"].get(rev_label) != want]
        ready = [p for p in live if pod_ready(p)]
        if res.kind == "Deployment":
            self._step_deployment(res, obj, pods_res, desired, revision, new, old, ready)
        else:
            self._step_statefulset(res, obj, pods_res, desired, revision, live, owned, old)
        self._write_status(res, obj, desired, want, rev_label, pods_res)

    def _step_deployment(self, res, obj, pods_res, desired, revision, new, old, ready):
        # Rolling update with maxSurge 1 / maxUnavailable 0: a stuck new pod blocks the rollout.
        if old:
            if len(new) < desired and len(new) + len(old) < desired + 1:
                self._new_pod(
                    res, obj, pods_res, revision, "%s-%s-%s" % (obj["metadata"]["name"], revision, uuid.uuid4().hex[:5])
                )
            else:
                unready = [p for p in old if not pod_ready(p)]
                if unready or len(ready) - 1 >= desired:
                    self._terminate(pods_res, (unready or old)[0])
        elif len(new) < desired:
            self._new_pod(
                res, obj, pods_res, revision, "%s-%s-%s" % (obj["metadata"]["name"], revision, uuid.uuid4().hex[:5])
            )
        elif len(new) > desired:
            self._terminate(pods_res, sorted(new, key=lambda p: p["metadata"]["creationTimestamp"])[-1])

    def _step_statefulset(self, res, obj, pods_res, desired, revision, live, owned, old):
        # OrderedReady: one ordinal at a time, create upwards, delete downwards, never two in flight.
        name = obj["metadata"]["name"]
        by_ordinal = {int(p["metadata"]["name"].rsplit("-", 1)[1]): p for p in live}
        if any(p["metadata"].get("deletionTimestamp") for p in owned) or any(not pod_ready(p) for p in live):
            return
        above = [o for o in by_ordinal if o >= desired]
        if above:
            self._terminate(pods_res, by_ordinal[max(above)])
            return
        missing = [o for o in range(desired) if o not in by_ordinal]
        if missing:
            self._new_pod(res, obj, pods_res, revision, "%s-%d" % (name, missing[0]))
        elif old:
            self._terminate(pods_res, max(old, key=lambda p: int(p["metadata"]["name"].rsplit("-", 1)[1])))

    def _write_status(self, res, obj, desired, want, rev_label, pods_res):
        meta = obj["metadata"]
        owned = [
            p
            for p in self.store.list(pods_res, meta["namespace"])[0]
            if any(r["uid"] == meta["uid"] for r in p["metadata"].get("ownerReferences") or [])
            and not p["metadata"].get("deletionTimestamp")
        ]
        updated = [p for p in owned if p["metadata"]["labels"].get(rev_label) == want]
        ready = [p for p in owned if pod_ready(p)]
        old_status = obj.get("status") or {}
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(owned),
            "updatedReplicas": len(updated),
            "readyReplicas": len(ready),
            "availableReplicas": len(ready),
        }
        complete = len(updated) == desired and len(owned) == desired and len(ready) == desired
        if res.kind == "Deployment":
            if desired - len(ready) > 0:
                status["unavailableReplicas"] = desired - len(ready)
            status["selector"] = selector_to_string(obj["spec"].get("selector") or {})
            conditions = {c["type"]: c for c in old_status.get("conditions") or []}
            status["conditions"] = [
                self._condition(
                    conditions.get("Available"),
                    "Available",
                    len(ready) >= desired,
                    "MinimumReplicasAvailable" if len(ready) >= desired else "MinimumReplicasUnavailable",
                    "Deployment has minimum availability."
                    if len(ready) >= desired
                    else "Deployment does not have minimum availability.",
                ),
                self._condition(
                    conditions.get("Progressing"),
                    "Progressing",
                    True,
                    "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                    'ReplicaSet "%s-%s" has %s.'
                    % (meta["name"], want, "successfully progressed" if complete else "been updated"),
                ),
            ]
        else:
            status["currentReplicas"] = len(updated) if complete else len(owned) - len(updated)
            status["updateRevision"] = want
            status["currentRevision"] = want if complete else old_status.get("currentRevision", want)
            status["collisionCount"] = 0
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "currentReplicas"):
            if status.get(key) == 0 and key != "replicas":
                status.pop(key)
        if status != old_status:
            obj["status"] = status
            self.store.replace(res, meta["namespace"], meta["name"], obj, subresource="status")

    @staticmethod
    def _condition(old, kind, ok, reason, message):
        value = "True" if ok else "False"
        if old and old.get("status") == value and old.get("reason") == reason:
            return old
        stamp = now_iso()
        return {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp if not old or old.get("status") != value else old["lastTransitionTime"],
        }

    def _hpas(self):
        hpa_res = BY_KIND[("autoscaling/v2", "HorizontalPodAutoscaler")]
        for hpa in self.store.list(hpa_res)[0]:
            ref, ns = hpa["spec"].get("scaleTargetRef") or {}, hpa["metadata"]["namespace"]
            target_res = BY_KIND.get((ref.get("apiVersion", "apps/v1"), ref.get("kind")))
            target = self.store.find(target_res, ns, ref.get("name")) if target_res else None
            if target is None:
                continue
            current = int(target["spec"].get("replicas", 1))
            low = int(hpa["spec"].get("minReplicas", 1))
            high = int(hpa["spec"].get("maxReplicas", low))
            wanted = min(max(current, low), high)
            if wanted != current:
                target["spec"]["replicas"] = wanted
                self.store.replace(target_res, ns, target["metadata"]["name"], target)
            status = {
                "currentReplicas": current,
                "desiredReplicas": wanted,
                "lastScaleTime": now_iso() if wanted != current else (hpa.get("status") or {}).get("lastScaleTime"),
                "observedGeneration": hpa["metadata"].get("generation", 1),
            }
            status = {k: v for k, v in status.items() if v is not None}
            if status != hpa.get("status"):
                hpa["status"] = status
                self.store.replace(hpa_res, ns, hpa["metadata"]["name"], hpa, subresource="status")


# -- HTTP ----------------------------------------------------------------------------------
def _gv_path(group, version):
    return "apis/%s/%s" % (group, version) if group else "api/%s" % version


def _openapi_v3_root():
    paths = sorted({_gv_path(r.group, r.version) for r in RESOURCES + [HPA_V1]})
    return {
        "paths": {
            p: {
                "serverRelativeURL": "/openapi/v3/%s?hash=%s" % (p, hashlib.sha256(p.encode()).hexdigest()[:16].upper())
            }
            for p in paths
        }
    }


def _openapi_v3_doc(gv_path):
    """Just enough OpenAPI v3 for kubectl: PATCH takes ``fieldValidation``, so kubectl leaves validation
    to the server instead of fetching the (protobuf) v2 schema. This server accepts unknown fields."""
    paths = {}
    for res in RESOURCES + [HPA_V1]:
        if _gv_path(res.group, res.version) != gv_path:
            continue
        url = "/%s/%s%s/{name}" % (gv_path, "namespaces/{namespace}/" if res.namespaced else "", res.plural)
        paths[url] = {
            "patch": {
                "operationId": "patch" + res.kind,
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver/1.37"

    def log_message(self, fmt, *args):
        log = self.server.fake.log
        if log:
            log.write("%s %s\n" % (now_iso(), fmt % args))
            log.flush()

    # -- plumbing
    def _view(self, obj):
        if not self._v1_hpa or not isinstance(obj, dict):
            return obj
        if obj.get("kind") == "HorizontalPodAutoscalerList":
            return dict(obj, apiVersion="autoscaling/v1", items=[hpa_to_v1(o) for o in obj["items"]])
        return hpa_to_v1(obj) if obj.get("kind") == "HorizontalPodAutoscaler" else obj

    def _send_json(self, code, body, content_type="application/json"):
        data = json.dumps(self._view(body)).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        raw = self._raw
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            try:
                import yaml
            except ImportError as exc:
                raise ApiError(415, "UnsupportedMediaType", "only JSON bodies are supported") from exc
            return yaml.safe_load(raw)

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        # Read the body before routing so an early error leaves a keep-alive connection usable.
        length = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(length) if length else b""
        self._v1_hpa = False
        try:
            self._route(method, url.path.rstrip("/") or "/", query)
        except ApiError as exc:
            self._send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = lambda self: self._dispatch("GET")  # noqa: E731
    do_POST = lambda self: self._dispatch("POST")  # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")  # noqa: E731
    do_PATCH = lambda self: self._dispatch("PATCH")  # noqa: E731
    do_DELETE = lambda self: self._dispatch("DELETE")  # noqa: E731

    # -- routing
    def _route(self, method, path, query):
        store = self.server.fake.store
        if path == "/version":
            return self._send_json(200, SERVER_VERSION)
        if path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            return self.wfile.write(data)
        if path == "/api":
            return self._send_json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:%d" % self.server.server_port}
                    ],
                },
            )
        if path == "/apis":
            return self._send_json(
                200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g) for g in GROUPS]}
            )
        if path.startswith("/apis/") and path.count("/") == 2 and path.split("/")[2] in GROUPS:
            return self._send_json(200, dict(self._group(path.split("/")[2]), kind="APIGroup", apiVersion="v1"))
        if path == "/openapi/v2":
            return self._send_json(
                200,
                {
                    "swagger": "2.0",
                    "info": {"title": "Kubernetes", "version": "v1.37.0"},
                    "paths": {},
                    "definitions": {},
                },
            )
        if path == "/openapi/v3":
            return self._send_json(200, _openapi_v3_root())
        if path.startswith("/openapi/v3/"):
            gv_path = path[len("/openapi/v3/") :]
            if gv_path not in _openapi_v3_root()["paths"]:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self._send_json(200, _openapi_v3_doc(gv_path))
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3 and parts[1] in GROUPS and parts[2] in GROUPS[parts[1]]:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self._send_json(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": "%s/%s" % (group, version) if group else version,
                    "resources": [
                        e
                        for r in RESOURCES + [HPA_V1]
                        if (r.group, r.version) == (group, version)
                        for e in r.discovery()
                    ],
                },
            )
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        res = BY_PATH.get((group, version, rest[0]))
        # autoscaling/v1 is a view of the autoscaling/v2 objects, as in a real API server.
        self._v1_hpa = (group, version, rest[0]) == ("autoscaling", "v1", "horizontalpodautoscalers")
        if self._v1_hpa:
            res = BY_PATH[("autoscaling", "v2", "horizontalpodautoscalers")]
        if res is None or (ns and not res.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and sub not in res.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        dry_run = query.get("dryRun") == "All"
        if name is None:
            if method == "GET":
                if query.get("watch") in ("1", "true"):
                    return self._watch(store, res, ns, query)
                items, rv = store.list(res, ns, query.get("labelSelector", ""), query.get("fieldSelector", ""))
                if self._wants_table():
                    return self._send_json(200, table(res, items, rv))
                return self._send_json(
                    200,
                    {
                        "kind": res.kind + "List",
                        "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": rv},
                        "items": items,
                    },
                )
            if method == "POST":
                body = self._body() or {}
                return self._send_json(
                    201, store.create(res, ns, hpa_to_v2(body) if self._v1_hpa else body, dry_run=dry_run)
                )
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if method == "GET":
            obj = store.get(res, ns, name)
            if sub is None and self._wants_table():
                return self._send_json(200, table(res, [obj], obj["metadata"]["resourceVersion"]))
            return self._send_json(200, to_scale(obj) if sub == "scale" else obj)
        if method == "DELETE":
            return self._delete(store, res, ns, name, query, dry_run)
        if method == "PUT":
            body = self._body() or {}
            return self._send_json(200, self._write(store, res, ns, name, sub, lambda cur: body, dry_run))
        if method == "PATCH":
            return self._patch(store, res, ns, name, sub, dry_run)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _wants_table(self):
        # kubectl get asks for a server-side Table (its human-readable columns).
        return "as=Table" in (self.headers.get("Accept") or "") and "g=meta.k8s.io" in self.headers.get("Accept")

    @staticmethod
    def _group(group):
        versions = [{"groupVersion": "%s/%s" % (group, v), "version": v} for v in GROUPS[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _write(self, store, res, ns, name, sub, make, dry_run):
        """Apply ``make(current view) -> new view`` to the object, its status, or its scale."""
        if self._v1_hpa:
            make_v1 = make

            def make(cur):
                return hpa_to_v2(make_v1(hpa_to_v1(cur)))

        with store.lock:
            current = store.get(res, ns, name)
            if sub == "scale":
                scale = make(to_scale(current))
                given = (scale.get("metadata") or {}).get("resourceVersion")
                current["spec"]["replicas"] = int((scale.get("spec") or {}).get("replicas", 0))
                if given:
                    current["metadata"]["resourceVersion"] = given
                return to_scale(store.replace(res, ns, name, current, dry_run=dry_run))
            new = make(current)
            if sub == "status":
                return store.replace(res, ns, name, new, subresource="status", dry_run=dry_run)
            return store.replace(res, ns, name, new, dry_run=dry_run)

    def _patch(self, store, res, ns, name, sub, dry_run):
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = self._body()
        if content_type == "application/json-patch+json":

            def make(cur):
                return json_patch(cur, body or [])
        elif content_type == "application/merge-patch+json":

            def make(cur):
                return merge_patch(cur, body or {})
        elif content_type in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):

            def make(cur):
                return strategic_merge_patch(cur, body or {})
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - "
                "accepted media types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml",
            )
        if content_type == "application/apply-patch+yaml" and sub is None and store.find(res, ns, name) is None:
            obj = copy.deepcopy(body or {})
            obj.setdefault("metadata", {})["name"] = name
            return self._send_json(201, store.create(res, ns, obj, dry_run=dry_run))
        return self._send_json(200, self._write(store, res, ns, name, sub, make, dry_run))

    def _delete(self, store, res, ns, name, query, dry_run):
        obj = store.get(res, ns, name)
        if res.kind == "Pod" and query.get("gracePeriodSeconds") != "0" and not dry_run:
            with store.lock:
                self.server.fake.controller._terminate(res, obj)
            return self._send_json(200, store.get(res, ns, name))
        if res.kind == "Namespace" and not dry_run:
            with store.lock:
                for other in RESOURCES:
                    if other.namespaced:
                        for item in store.list(other, name)[0]:
                            store.delete(other, name, item["metadata"]["name"])
        store.delete(res, ns, name, dry_run=dry_run)
        return self._send_json(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "group": res.group, "kind": res.plural, "uid": obj["metadata"]["uid"]},
            },
        )

    def _watch(self, store, res, ns, query):
        lreqs = parse_label_selector(query.get("labelSelector", ""))
        freqs = parse_field_selector(query.get("fieldSelector", ""))
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        initial = query.get("sendInitialEvents") in ("1", "true")
        rv_param = query.get("resourceVersion", "")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

        def matches(obj):
            return (
                (not ns or obj["metadata"].get("namespace") == ns)
                and labels_match(lreqs, obj["metadata"].get("labels"))
                and fields_match(freqs, obj)
            )

        def send(kind, obj):
            line = json.dumps({"type": kind, "object": self._view(obj)}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        with store.lock:
            if initial or rv_param in ("", "0"):
                items, rv = store.list(res, ns, query.get("labelSelector", ""), query.get("fieldSelector", ""))
                pending = [("ADDED", o) for o in items]
                last = int(rv)
            else:
                last = int(rv_param)
                events = store.events_after(res.plural, last)
                if events is None:
                    pending = [("ERROR", ApiError(410, "Expired", "too old resource version: %s" % rv_param).status())]
                else:
                    pending = [(kind, obj) for _, _, kind, obj in events if matches(obj)]
                    last = events[-1][0] if events else max(last, store.rv)
        try:
            for kind, obj in pending:
                send(kind, obj)
            if initial and bookmarks:
                send(
                    "BOOKMARK",
                    {
                        "kind": res.kind,
                        "apiVersion": res.api_version,
                        "metadata": {
                            "resourceVersion": str(last),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                )
            next_bookmark = time.monotonic() + 1.0
            while not self.server.fake.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with store.lock:
                    events = store.events_after(res.plural, last)
                    if not events:
                        store.changed.wait(min(left, 0.5))
                        events = store.events_after(res.plural, last) or []
                if events:
                    last = events[-1][0]
                for _, _, kind, obj in events:
                    if matches(obj):
                        send(kind, obj)
                if bookmarks and time.monotonic() >= next_bookmark:
                    send(
                        "BOOKMARK",
                        {
                            "kind": res.kind,
                            "apiVersion": res.api_version,
                            "metadata": {"resourceVersion": str(max(last, store.rv))},
                        },
                    )
                    next_bookmark = time.monotonic() + 1.0
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def hpa_to_v1(obj):
    """An autoscaling/v2 HPA as autoscaling/v1 sees it (CPU utilisation target only)."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for metric in metrics:
        target = (metric.get("resource") or {}).get("target") or {}
        if (
            metric.get("type") == "Resource"
            and metric["resource"].get("name") == "cpu"
            and "averageUtilization" in target
        ):
            spec["targetCPUUtilizationPercentage"] = target["averageUtilization"]
    status = out.get("status") or {}
    status.pop("conditions", None)
    status.pop("currentMetrics", None)
    return out


def hpa_to_v2(obj):
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    spec = out.setdefault("spec", {})
    cpu = spec.pop("targetCPUUtilizationPercentage", None)
    if cpu is not None:
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
            }
        ]
    (out.get("status") or {}).pop("currentCPUUtilizationPercentage", None)
    return out


def _age(obj):
    created = datetime.datetime.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    seconds = int((datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % max(seconds, 0)


def _columns(res, obj):
    """kubectl get's columns for the kinds the demo shows; Name and Age for the rest."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = spec.get("replicas", 1)
    if res.kind == "Pod":
        ready = sum(1 for c in status.get("containerStatuses") or [] if c.get("ready"))
        phase = "Terminating" if obj["metadata"].get("deletionTimestamp") else status.get("phase", "Pending")
        return [("Ready", "%d/%d" % (ready, len(spec.get("containers") or []))), ("Status", phase), ("Restarts", "0")]
    if res.kind == "Deployment":
        return [
            ("Ready", "%d/%d" % (status.get("readyReplicas", 0), want)),
            ("Up-to-date", str(status.get("updatedReplicas", 0))),
            ("Available", str(status.get("availableReplicas", 0))),
        ]
    if res.kind == "StatefulSet":
        return [("Ready", "%d/%d" % (status.get("readyReplicas", 0), want))]
    if res.kind == "HorizontalPodAutoscaler":
        ref = spec.get("scaleTargetRef") or {}
        return [
            ("Reference", "%s/%s" % (ref.get("kind"), ref.get("name"))),
            ("MinPods", str(spec.get("minReplicas", 1))),
            ("MaxPods", str(spec.get("maxReplicas"))),
            ("Replicas", str(status.get("currentReplicas", 0))),
        ]
    return []


def table(res, items, rv):
    names = (
        ["Name"] + [c for c, _ in _columns(res, items[0])] + ["Age"]
        if items
        else ["Name"] + [c for c, _ in _columns(res, {"metadata": {}})] + ["Age"]
    )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [
            {"name": n, "type": "string", "format": "name" if n == "Name" else "", "description": "", "priority": 0}
            for n in names
        ],
        "rows": [
            {
                "cells": [o["metadata"]["name"]] + [v for _, v in _columns(res, o)] + [_age(o)],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
            }
            for o in items
        ],
    }


def to_scale(obj):
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": int(obj["spec"].get("replicas", 1))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas", 0)),
            "selector": selector_to_string(obj["spec"].get("selector") or {}),
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections = set()

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        """Close keep-alive connections too: a stopped server must look stopped to pooled clients."""
        for sock in list(self.connections):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeKubeAPIServer:
    """The fake API server on 127.0.0.1, with its controller, in background threads.

    ``base_dir`` receives ``kubeconfig`` (context ``fake``, namespace ``default``),
    ``fake_k8s.json`` (port, pid, url) and ``fake_k8s.log`` (one line per request).
    """

    def __init__(self, base_dir, port=None, tick=TICK_S, termination_ticks=TERMINATION_TICKS):
        self.base_dir = os.path.abspath(base_dir)
        self.port = port or 0
        self.store = Store()
        self.controller = Controller(self.store, tick=tick, termination_ticks=termination_ticks)
        self.stopping = threading.Event()
        self.kubeconfig = os.path.join(self.base_dir, "kubeconfig")
        self.state_file = os.path.join(self.base_dir, "fake_k8s.json")
        self.log = None
        self._httpd = None
        self._thread = None
        for ns in ("default", "kube-system", "kube-public"):
            self.store.create(BY_KIND[("v1", "Namespace")], None, {"metadata": {"name": ns}})

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        os.makedirs(self.base_dir, exist_ok=True)
        self.log = open(os.path.join(self.base_dir, "fake_k8s.log"), "a")  # noqa: SIM115 - closed in stop()
        self._httpd = _Server(("127.0.0.1", self.port), Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-k8s-http", daemon=True
        )
        self._thread.start()
        self.controller.start()
        self.write_kubeconfig(self.kubeconfig)
        with open(self.state_file, "w") as handle:
            json.dump({"port": self.port, "pid": os.getpid(), "url": self.url, "kubeconfig": self.kubeconfig}, handle)
        return self

    def stop(self):
        self.stopping.set()
        self.controller.stop()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None
        if self.log:
            self.log.close()
            self.log = None

    def write_kubeconfig(self, path, namespace="default"):
        """A kubeconfig for this server (plain HTTP on loopback, no auth), context ``fake``."""
        text = (
            "apiVersion: v1\nkind: Config\npreferences: {}\ncurrent-context: fake\n"
            "clusters:\n- name: fake\n  cluster:\n    server: %s\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: %s\n"
            "users:\n- name: fake\n  user: {}\n" % (self.url, namespace)
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path

    # -- in-process seeding and inspection (the same code paths as HTTP requests)
    def apply(self, obj):
        """Create or replace ``obj`` (a manifest dict); creates its namespace if missing."""
        obj = copy.deepcopy(obj)
        res = BY_KIND[(obj["apiVersion"], obj["kind"])]
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "default") if res.namespaced else None
        if ns and self.store.find(BY_KIND[("v1", "Namespace")], None, ns) is None:
            self.store.create(BY_KIND[("v1", "Namespace")], None, {"metadata": {"name": ns}})
        if self.store.find(res, ns, meta["name"]) is None:
            return self.store.create(res, ns, obj)
        return self.store.replace(res, ns, meta["name"], obj)

    def get(self, api_version, kind, name, namespace="default"):
        res = BY_KIND[(api_version, kind)]
        return self.store.find(res, namespace if res.namespaced else None, name)

    def list(self, api_version, kind, namespace=None, label_selector=""):
        return self.store.list(BY_KIND[(api_version, kind)], namespace, label_selector)[0]

    def pods(self, namespace, label_selector=""):
        return self.list("v1", "Pod", namespace, label_selector)

    def wait_for(self, predicate, timeout=15, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("fake k8s: timed out after %ss waiting for %s" % (timeout, what))


def workload(kind, name, replicas, labels, namespace="default", annotations=None):
    """A minimal but complete Deployment or StatefulSet manifest."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/%s:1" % name}]},
            },
        },
    }


def demo_deployment(namespace="diagnosticpro"):
    """The application the runbook stops and starts around a restore."""
    obj = workload("Deployment", "diagnosticpro-api", 3, {"app": "diagnosticpro"}, namespace)
    obj["spec"]["template"]["spec"]["containers"][0].update(
        image="registry.invalid/diagnosticpro-api:1.4.2", ports=[{"containerPort": 8080}]
    )
    return obj


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True, help="directory for kubeconfig, state file and request log")
    parser.add_argument("--seed", action="append", default=[], help="JSON or YAML manifest file to apply at start")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="seed the demo application: Deployment diagnosticpro-api (3 replicas, label "
        "app=diagnosticpro) in namespace diagnosticpro",
    )
    args = parser.parse_args(argv)
    server = FakeKubeAPIServer(args.dir, port=args.port)
    server.start()
    if args.demo:
        server.apply(demo_deployment())
    for path in args.seed:
        with open(path) as handle:
            text = handle.read()
        try:
            docs = [json.loads(text)]
        except ValueError:
            import yaml

            docs = [d for d in yaml.safe_load_all(text) if d]
        for doc in docs:
            for item in doc.get("items", [doc]) if doc.get("kind") == "List" else [doc]:
                server.apply(item)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    # Printed once the handlers are in place: a caller may send SIGTERM as soon as it reads this.
    print("fake Kubernetes API server on %s, kubeconfig %s" % (server.url, server.kubeconfig), flush=True)
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
