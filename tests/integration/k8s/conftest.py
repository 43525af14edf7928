"""The fake Kubernetes API server, one per test, with its own kubeconfig and HOME.

Each test gets its own server (its own port, so kubernetes.core's discovery cache never
mixes servers), its own kubeconfig and its own HOME (kubectl caches discovery there).
"""

from __future__ import annotations

import pytest
from k8s_cluster import NAMESPACE, Cluster

from sandbox.fake_k8s import FakeKubeAPIServer


@pytest.fixture()
def k8s(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = FakeKubeAPIServer(str(tmp_path / "fake-k8s"))
    server.start()
    cluster = Cluster(server, str(home))
    server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    yield cluster
    server.stop()
