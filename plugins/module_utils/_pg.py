# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL access: connections, the exported snapshot, row counts, database operations.

Passwords come only from a libpq passfile (``password_file``), handed to psycopg2 and to
the client binaries as ``passfile`` / ``PGPASSFILE``: never argv, never PGPASSWORD.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time

from ._errors import ConfigError, DumpError, KeyFileError, RestoreError

try:
    import psycopg2
    from psycopg2 import sql as pgsql
except ImportError:  # pragma: no cover - checked by DRModule
    psycopg2 = None
    pgsql = None

# Paired with doc_fragments/postgres.py.
POSTGRES_SPEC = {
    "host": {"type": "str", "default": "localhost"},
    "port": {"type": "int", "default": 5432},
    "user": {"type": "str"},
    "password_file": {"type": "path", "no_log": False},
}
# For modules that create, rename or drop databases.
MAINTENANCE_DB_SPEC = {"maintenance_db": {"type": "str", "default": "postgres"}}


def conn_from_params(params):
    return Conn(host=params["host"], port=params["port"], user=params["user"], password_file=params["password_file"])


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


def bindir():
    """Where the PostgreSQL client binaries are (Debian keeps them out of PATH)."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
        if out and os.path.isdir(out):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    for candidate in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"):
        if os.path.isdir(candidate):
            return candidate
    return os.path.dirname(shutil.which("pg_dump") or "/usr/bin/pg_dump")


def tool(name):
    path = os.path.join(bindir(), name)
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if not found:
        raise ConfigError("Failed to find %s: install the PostgreSQL client (Debian: postgresql-client)" % name)
    return found


def tool_version(name):
    out = subprocess.run([tool(name), "--version"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"(\d+(?:\.\d+)+)", out)
    return match.group(1) if match else out.strip()


def validate_identifier(name, what="database"):
    if not name or not _IDENT_RE.match(name):
        raise ConfigError("Failed to use %s name %r: use letters, digits, '_', '$' and '-' (max 63)" % (what, name))
    return name


class Conn:
    """Connection parameters for one server; ``dbname`` varies per call."""

    def __init__(self, host="localhost", port=5432, user=None, password_file=None, connect_timeout=10):
        self.host = host
        self.port = int(port)
        self.user = user
        self.password_file = password_file
        self.connect_timeout = connect_timeout
        if password_file:
            if not os.path.isfile(password_file):
                raise KeyFileError("Failed to use password_file %s: it does not exist" % password_file)
            if os.stat(password_file).st_mode & 0o077:
                raise KeyFileError(
                    "Failed to use password_file %s: it is accessible by group or others" % password_file,
                    hint="Run `chmod 600 %s` (libpq ignores such files too)" % password_file,
                )

    def params(self, dbname):
        params = {
            "host": self.host,
            "port": self.port,
            "dbname": dbname,
            "connect_timeout": self.connect_timeout,
            "application_name": "diagnosticpro.dr",
        }
        if self.user:
            params["user"] = self.user
        if self.password_file:
            params["passfile"] = self.password_file
        return params

    def connect(self, dbname, autocommit=True):
        try:
            conn = psycopg2.connect(**self.params(dbname))
        except psycopg2.OperationalError as exc:
            raise ConfigError(
                "Failed to connect to %s:%s/%s: %s" % (self.host, self.port, dbname, str(exc).strip().splitlines()[0])
            ) from exc
        conn.autocommit = autocommit
        return conn

    def cli_args(self, dbname):
        args = ["-h", self.host, "-p", str(self.port), "-d", dbname]
        if self.user:
            args += ["-U", self.user]
        return args + ["--no-password"]

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self.password_file:
            env["PGPASSFILE"] = self.password_file
        env["PGCONNECT_TIMEOUT"] = str(self.connect_timeout)
        env["PGAPPNAME"] = "diagnosticpro.dr"
        env.update(extra)
        return env

    def is_ready(self):
        result = subprocess.run(
            [tool("pg_isready"), "-h", self.host, "-p", str(self.port), "-t", "5"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0, result.stdout.strip()


# Ordinary tables (leaf partitions included) outside the system schemas.
_USER_TABLES = """
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
"""


def user_tables(cur):
    """Every user table as ``(schema, table)``, sorted."""
    cur.execute("SELECT n.nspname, c.relname" + _USER_TABLES + "ORDER BY 1, 2")
    return cur.fetchall()


def table_sizes(cur):
    """Bytes on disk of every user table (heap and TOAST, no indexes), as 'schema.table'."""
    cur.execute("SELECT n.nspname || '.' || c.relname, pg_table_size(c.oid)" + _USER_TABLES)
    return dict(cur.fetchall())


def row_counts(cur):
    counts = {}
    for schema, table in user_tables(cur):
        cur.execute(
            pgsql.SQL("SELECT count(*) FROM ONLY {}.{}").format(pgsql.Identifier(schema), pgsql.Identifier(table))
        )
        counts["%s.%s" % (schema, table)] = cur.fetchone()[0]
    return counts


@contextlib.contextmanager
def exported_snapshot(conn_params, dbname):
    """A REPEATABLE READ transaction whose snapshot pg_dump imports with ``--snapshot``.

    Row counts taken in this transaction and the dump see exactly the same data; the
    transaction stays open until the caller is done so the snapshot stays importable.
    """
    conn = conn_params.connect(dbname, autocommit=False)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        cur = conn.cursor()
        cur.execute(
            "SELECT pg_export_snapshot(), now(), current_setting('server_version'), "
            "current_setting('server_version_num')::int, pg_database_size(current_database())"
        )
        snapshot, data_ts, version, version_num, db_size = cur.fetchone()
        yield {
            "cursor": cur,
            "snapshot": snapshot,
            "data_timestamp": data_ts,
            "server_version": version,
            "server_version_num": version_num,
            "database_size": db_size,
        }
    except psycopg2.Error as exc:
        raise DumpError("Failed to open a snapshot of %s: %s" % (dbname, str(exc).strip())) from exc
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def database_exists(cur, name):
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return cur.fetchone() is not None


def table_count(conn_params, dbname):
    with contextlib.closing(conn_params.connect(dbname)) as conn:
        return len(user_tables(conn.cursor()))


def other_sessions(cur, name, settle_s=5.0):
    """Sessions connected to ``name`` other than this one, once they have had ``settle_s`` to go.

    A backend whose client just disconnected (our own table count a moment ago, or an
    application pod being stopped) stays in pg_stat_activity until it has exited.
    """
    deadline = time.monotonic() + settle_s
    while True:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        count = cur.fetchone()[0]
        if count == 0 or time.monotonic() >= deadline:
            return count
        time.sleep(0.1)


def create_database(cur, name, owner=None, template="template0"):
    validate_identifier(name)
    query = pgsql.SQL("CREATE DATABASE {} TEMPLATE {}").format(pgsql.Identifier(name), pgsql.Identifier(template))
    if owner:
        query = query + pgsql.SQL(" OWNER {}").format(pgsql.Identifier(owner))
    cur.execute(query)


def drop_database(cur, name):
    """Drop a database this collection created (scratch or staging); never called on user data."""
    cur.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))


def rename_database(cur, old, new):
    cur.execute(pgsql.SQL("ALTER DATABASE {} RENAME TO {}").format(pgsql.Identifier(old), pgsql.Identifier(new)))


def database_owner(cur, name):
    cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,))
    row = cur.fetchone()
    return row[0] if row else None


def run_checks(conn, checks):
    """Each check is a query that must return zero rows; returns [{name, sql, rows, ok, sample}]."""
    results = []
    for index, check in enumerate(checks or []):
        if isinstance(check, str):
            check = {"name": "check %d" % (index + 1), "sql": check}
        cur = conn.cursor()
        try:
            cur.execute(check["sql"])
            rows = cur.fetchmany(5) if cur.description else []
            count = len(rows) + (len(cur.fetchall()) if cur.description else 0)
        except psycopg2.Error as exc:
            conn.rollback() if not conn.autocommit else None
            results.append(
                {"name": check["name"], "sql": check["sql"], "rows": None, "ok": False, "error": str(exc).strip()}
            )
            continue
        results.append(
            {
                "name": check["name"],
                "sql": check["sql"],
                "rows": count,
                "ok": count == 0,
                "sample": [list(map(str, row)) for row in rows],
            }
        )
    return results


def pg_error(exc, what):
    return RestoreError("Failed to %s: %s" % (what, str(exc).strip()))
