"""Drive the fake Kubernetes API server as a user would: kubectl, ansible-playbook, in-process checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from sandbox.fake_k8s import workload

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.dirname(sys.executable)
NAMESPACE = "diagnosticpro"


class Cluster:
    def __init__(self, server, home):
        self.server = server
        self.home = home
        self.kubeconfig = server.kubeconfig
        self.env = dict(
            os.environ,
            HOME=home,
            KUBECONFIG=server.kubeconfig,
            ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_LOCAL_TEMP=os.path.join(home, ".ansible-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PIPELINING="1",
            PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        )
        self._playbooks = 0

    def seed(self, kind, name, replicas, labels=None, namespace=NAMESPACE, annotations=None):
        return self.server.apply(workload(kind, name, replicas, labels or {"app": name}, namespace, annotations))

    def get(self, kind, name, namespace=NAMESPACE):
        api_version = {
            "Deployment": "apps/v1",
            "StatefulSet": "apps/v1",
            "HorizontalPodAutoscaler": "autoscaling/v2",
        }.get(kind, "v1")
        return self.server.get(api_version, kind, name, namespace)

    def pods(self, selector, namespace=NAMESPACE):
        return self.server.pods(namespace, selector)

    def wait_ready(self, kind, name, timeout=15):
        from ansible_collections.diagnosticpro.dr.plugins.module_utils._k8s import is_ready

        self.server.wait_for(lambda: is_ready(self.get(kind, name)), timeout, "%s/%s ready" % (kind, name))

    def kubectl(self, *args, check=True, input=None):
        return subprocess.run(
            [os.path.join(VENV_BIN, "kubectl"), *args],
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=60,
            input=input,
        )

    def playbook(self, tasks, check=False, diff=False, expect_failure=False, env=None):
        """Run ``tasks`` on localhost; returns the task results (list of dicts), in order."""
        self._playbooks += 1
        path = os.path.join(self.home, "play-%d.yml" % self._playbooks)
        play = [
            {
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": tasks,
                "vars": {"ansible_python_interpreter": sys.executable},
            }
        ]
        with open(path, "w") as handle:
            yaml.safe_dump(play, handle)
        argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", path]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        proc = subprocess.run(
            argv,
            env=dict(self.env, **(env or {})),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(
                "ansible-playbook printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)
            ) from None
        results = [task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]]
        if not expect_failure:
            assert proc.returncode == 0, json.dumps(results, indent=1)[-4000:]
        return results

    def module(self, **args):
        """A k8s_scale_restore task with this cluster's kubeconfig and namespace."""
        args = dict({"namespace": NAMESPACE, "kubeconfig": self.kubeconfig}, **args)
        return {"name": "k8s_scale_restore %s" % args.get("state"), "diagnosticpro.dr.k8s_scale_restore": args}
