"""The sandbox application's health endpoint, standing in for diagnosticpro.io/health.

``GET /health`` answers 200 only when the ``diagnosticpro-api`` Deployment in the fake
Kubernetes cluster has ready replicas *and* the database answers a query on ``customers``;
otherwise 503 with the reason. So the runbook's health check after a recovery checks both
things a real health endpoint depends on.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import yaml


class Checks:
    def __init__(self, kubeconfig, namespace, deployment, conninfo):
        with open(kubeconfig) as handle:
            server = yaml.safe_load(handle)["clusters"][0]["cluster"]["server"]
        self.deployment_url = "%s/apis/apps/v1/namespaces/%s/deployments/%s" % (server, namespace, deployment)
        self.deployment = deployment
        self.conninfo = conninfo

    def run(self):
        try:
            with urllib.request.urlopen(self.deployment_url, timeout=2) as resp:  # noqa: S310 - loopback
                ready = (json.loads(resp.read()).get("status") or {}).get("readyReplicas") or 0
        except OSError as exc:
            return False, "Kubernetes API unreachable: %s" % exc
        if ready < 1:
            return False, "deployment %s has no ready replicas" % self.deployment
        try:
            with psycopg2.connect(connect_timeout=2, **self.conninfo) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM customers")
                customers = cur.fetchone()[0]
        except psycopg2.Error as exc:
            return False, "database check failed: %s" % str(exc).strip().splitlines()[0]
        return True, "%d replicas ready, %d customers" % (ready, customers)


def serve(port, checks):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != "/health":
                self.send_error(404)
                return
            ok, detail = checks.run()
            body = json.dumps({"status": "ok" if ok else "unhealthy", "detail": detail}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            print("%s - %s" % (self.address_string(), fmt % args), flush=True)

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("health endpoint on http://127.0.0.1:%d/health" % port, flush=True)
    done.wait()
    httpd.shutdown()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="diagnosticpro")
    parser.add_argument("--deployment", default="diagnosticpro-api")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", type=int, required=True)
    parser.add_argument("--db-name", default="diagnosticpro")
    parser.add_argument("--db-user", required=True)
    parser.add_argument("--passfile", required=True)
    args = parser.parse_args(argv)
    conninfo = {
        "host": args.db_host,
        "port": args.db_port,
        "dbname": args.db_name,
        "user": args.db_user,
        "passfile": args.passfile,
    }
    serve(args.port, Checks(args.kubeconfig, args.namespace, args.deployment, conninfo))


if __name__ == "__main__":
    main()
