"""Application backup -> delete the Deployment and Secret -> recover: identical (minus cluster-managed
fields), Secret values never in plaintext on disk or in output."""

from __future__ import annotations

import base64
import os

import pytest
from k8s_cluster import NAMESPACE

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _crypto, _k8s, _k8s_manifests, _manifest
from ansible_collections.diagnosticpro.dr.plugins.module_utils._restore import Source

pytestmark = pytest.mark.k8s
SECRET_VALUE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"


def _seed(k8s):
    k8s.seed("Deployment", "diagnosticpro-api", 3, {"app": "diagnosticpro"})
    k8s.server.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "stripe", "namespace": NAMESPACE, "labels": {"app": "diagnosticpro"}},
            "data": {"api_key": base64.b64encode(SECRET_VALUE.encode()).decode()},
        }
    )
    k8s.server.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": NAMESPACE},
            "data": {"REGION": "us-central1"},
        }
    )


def _comparable(obj):
    return _k8s_manifests.strip(obj["apiVersion"], obj["kind"], obj)


def _files_contain(root, needle):
    for folder, _unused, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                if needle in handle.read():
                    return os.path.join(folder, name)
    return None


def test_backup_delete_recover_is_identical_and_secret_stays_secret(k8s, keys, tmp_path, capfd):
    _seed(k8s)
    kube = _k8s.connect(k8s.kubeconfig)
    before = {
        kind: _comparable(k8s.server.get(v, kind, name, NAMESPACE))
        for v, kind, name in [("apps/v1", "Deployment", "diagnosticpro-api"), ("v1", "Secret", "stripe")]
    }
    dest = tmp_path / "backups"
    dest.mkdir()
    encryption = _crypto.Encryption(passphrase_file=keys["passphrase_file"])
    result = _k8s_manifests.backup(kube, NAMESPACE, str(dest), encryption)
    assert {"kind": "Secret", "name": "stripe"} in result["objects"]
    doc = _manifest.read(result["manifest_path"])
    assert doc["kind"] == "kubernetes" and doc["artifact"]["layers"] == ["yaml", "zstd", "openpgp"]

    kube.apps.delete_namespaced_deployment("diagnosticpro-api", NAMESPACE)
    kube.core.delete_namespaced_secret("stripe", NAMESPACE)
    assert k8s.server.get("v1", "Secret", "stripe", NAMESPACE) is None

    decryption = _crypto.Decryption(passphrase_file=keys["passphrase_file"])
    planned = _k8s_manifests.restore(kube, Source(result["path"], kind="kubernetes"), decryption, check_mode=True)
    assert {"kind": "Secret", "name": "stripe", "action": "create"} in planned["objects"]
    assert k8s.server.get("v1", "Secret", "stripe", NAMESPACE) is None, "check mode must not apply"

    applied = _k8s_manifests.restore(kube, Source(result["path"], kind="kubernetes"), decryption)
    assert applied["changed"]
    after = {
        kind: _comparable(k8s.server.get(v, kind, name, NAMESPACE))
        for v, kind, name in [("apps/v1", "Deployment", "diagnosticpro-api"), ("v1", "Secret", "stripe")]
    }
    assert after == before
    again = _k8s_manifests.restore(kube, Source(result["path"], kind="kubernetes"), decryption)
    assert not again["changed"], again["objects"]

    out, err = capfd.readouterr()
    for needle in (SECRET_VALUE.encode(), base64.b64encode(SECRET_VALUE.encode())):
        assert _files_contain(str(tmp_path), needle) is None, "a Secret value reached the disk"
        assert needle.decode() not in out + err
