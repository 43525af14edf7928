# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Back up and re-apply a namespace's workload manifests and Secrets, encrypted.

Objects are exported with the fields the cluster manages stripped (uid, resourceVersion,
managedFields, status, clusterIP, ...), so they can be re-applied server-side as they are.
The YAML is generated in memory and fed straight into zstd | gpg: no plaintext Secret is
ever written to disk. Restoring decrypts into memory and applies with server-side apply.
"""

from __future__ import annotations

import copy
import json
import time

from . import _artifact
from . import _manifest as manifest_mod
from ._crypto import Encryption
from ._errors import ConfigError, RestoreError
from ._pipeline import Pipeline, PipelineError

FIELD_MANAGER = "diagnosticpro.dr"
# (apiVersion, kind, client attribute, method suffix), in the order they are re-applied:
# configuration and Secrets before the workloads that mount them.
EXPORTED = (
    ("v1", "ConfigMap", "core", "config_map"),
    ("v1", "Secret", "core", "secret"),
    ("v1", "Service", "core", "service"),
    ("apps/v1", "Deployment", "apps", "deployment"),
    ("apps/v1", "StatefulSet", "apps", "stateful_set"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "autoscaling", "horizontal_pod_autoscaler"),
)
KINDS = tuple(kind for _unused, kind, _unused, _unused in EXPORTED)
_META_DROP = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_ANNOTATION_DROP = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")
_ANNOTATION_PREFIX_DROP = ("dr.diagnosticpro.io/",)
MAX_PLAINTEXT = 64 * 1024 * 1024  # a namespace's manifests; far above any real one


def _cluster_managed(apiversion, kind, obj):
    """Objects the cluster creates itself: re-applying them would fight the controllers."""
    meta = obj.get("metadata", {})
    if meta.get("ownerReferences"):
        return True
    if kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
        return True
    if kind == "ConfigMap" and meta.get("name") == "kube-root-ca.crt":
        return True
    return kind == "Service" and meta.get("name") == "kubernetes"


def strip(apiversion, kind, obj):
    """The object as one would write it: without status and the fields the cluster fills in."""
    out = copy.deepcopy(obj)
    out["apiVersion"], out["kind"] = apiversion, kind
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for key in _META_DROP:
        meta.pop(key, None)
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in _ANNOTATION_DROP and not k.startswith(_ANNOTATION_PREFIX_DROP)
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    spec = out.get("spec") or {}
    if kind == "Service":
        for key in ("clusterIP", "clusterIPs"):
            spec.pop(key, None)
    template_meta = (spec.get("template") or {}).get("metadata") or {}
    template_meta.pop("creationTimestamp", None)
    return out


def export(kube, namespace, kinds=KINDS):
    objects = []
    for apiversion, kind, api, suffix in EXPORTED:
        if kind not in kinds:
            continue
        listed = kube.call(getattr(getattr(kube, api), "list_namespaced_%s" % suffix), namespace)
        for item in sorted((listed or {}).get("items", []), key=lambda o: o["metadata"]["name"]):
            if not _cluster_managed(apiversion, kind, item):
                objects.append(strip(apiversion, kind, item))
    return objects


def _inventory(objects):
    """What the manifest may say about the objects: kinds and names, never data."""
    return [{"kind": o["kind"], "name": o["metadata"]["name"]} for o in objects]


def backup(
    kube,
    namespace,
    dest,
    encryption,
    label=None,
    kinds=KINDS,
    compression="zstd",
    tier="tier2",
    retention_class="hot",
    progress=None,
    check_mode=False,
):
    if not isinstance(encryption, Encryption):
        raise TypeError("encryption must be an Encryption")
    import yaml

    _artifact.check_dest(dest)
    encryption.preflight()
    planned = _artifact.plan(
        label or "k8s-%s" % namespace, dest, "yaml", compression, None, tier, retention_class, allowed=("zstd", "none")
    )
    started, t0 = manifest_mod.utcnow(), time.monotonic()
    objects = export(kube, namespace, kinds)
    if not objects:
        raise ConfigError("Failed to back up namespace %s: it has none of %s" % (namespace, ", ".join(kinds)))
    if check_mode:
        return dict(_artifact.planned_result(planned), objects=_inventory(objects))
    text = yaml.safe_dump_all(objects, sort_keys=True, default_flow_style=False).encode()
    pipeline, enc_doc, written = _artifact.encrypt_to_file(
        planned,
        encryption,
        "back up namespace %s" % namespace,
        source=iter([text]),
        jobs=1,
        progress=progress,
    )
    del text
    doc, manifest_path = _artifact.write_manifest(
        "kubernetes",
        planned,
        written,
        enc_doc,
        started,
        t0,
        {
            "kubernetes": {"namespace": namespace, "objects": _inventory(objects)},
            "source": {"data_timestamp": manifest_mod.isoformat(started)},
        },
    )
    return dict(_artifact.result(planned, manifest_path, written, doc, pipeline), objects=_inventory(objects))


class _MemorySink:
    """Collects the decrypted stream in memory (never disk), refusing more than ``limit``."""

    def __init__(self, limit=MAX_PLAINTEXT):
        self.limit = limit
        self.data = bytearray()

    def open(self):
        self.data = bytearray()

    def write(self, chunk):
        self.data += chunk
        if len(self.data) > self.limit:
            raise RestoreError("Failed to read the manifests: more than %d bytes of plaintext" % self.limit)

    def commit(self):
        pass

    def abort(self):
        self.data = bytearray()


def read_objects(source, decryption):
    """Decrypt a kubernetes backup into memory, verifying it against its manifest."""
    import yaml

    from ._restore import layer_stages, raise_stream_error

    manifest = source.manifest
    sink = _MemorySink()
    with decryption.home() as home:
        pipeline = Pipeline(
            layer_stages(manifest, decryption, home), source=source.chunks(), sinks=[sink], drain_source_on_error=True
        )
        error = None
        try:
            pipeline.run()
        except PipelineError as exc:
            error = exc
    raise_stream_error(source, pipeline, error, "read")
    return [doc for doc in yaml.safe_load_all(bytes(sink.data)) if doc]


def _live(kube, namespace, api, suffix, name):
    return kube.call(getattr(getattr(kube, api), "read_namespaced_%s" % suffix), name, namespace)


def _differs(wanted, live):
    """Would applying ``wanted`` change ``live``? Compares only the fields the backup sets."""
    if live is None:
        return True
    if isinstance(wanted, dict):
        return any(_differs(v, (live or {}).get(k)) if isinstance(live, dict) else True for k, v in wanted.items())
    return wanted != live


def restore(kube, source, decryption, namespace=None, kinds=KINDS, names=None, check_mode=False, progress=None):
    """Server-side apply the objects of a kubernetes backup; returns per-object actions."""
    manifest = source.resolve()
    decryption.preflight(manifest.get("encryption"))
    objects = read_objects(source, decryption)
    namespace = namespace or manifest["kubernetes"]["namespace"]
    routes = {kind: (api, suffix) for _unused, kind, api, suffix in EXPORTED}
    results = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind not in kinds or (names and name not in names) or kind not in routes:
            continue
        api, suffix = routes[kind]
        obj = dict(obj, metadata=dict(obj["metadata"], namespace=namespace))
        live = _live(kube, namespace, api, suffix, name)
        live_view = strip(obj["apiVersion"], kind, live) if live else None
        action = "create" if live is None else ("update" if _differs(obj, live_view) else "unchanged")
        if action != "unchanged" and not check_mode:
            body = json.loads(json.dumps(obj))
            kube.call(
                getattr(getattr(kube, api), "patch_namespaced_%s" % suffix),
                name,
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
            if progress:
                progress("%s %s/%s" % (action, kind, name))
        results.append({"kind": kind, "name": name, "action": action})
    changed = any(r["action"] != "unchanged" for r in results)
    return {
        "changed": changed,
        "backup_id": manifest["backup_id"],
        "namespace": namespace,
        "objects": results,
        "diff": {
            "before": {r["kind"] + "/" + r["name"]: r["action"] == "unchanged" for r in results},
            "after": {r["kind"] + "/" + r["name"]: True for r in results},
        },
    }
