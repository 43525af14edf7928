"""Fixtures for the data-path integration tests: a loaded source database, fresh targets."""

from __future__ import annotations

import secrets
import shutil
import tempfile

import pytest
from psycopg2 import sql

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _gcs, _pg
from sandbox import datagen

SOURCE_DB = "diagnosticpro"
SOURCE_SIZE_MB = 8


@pytest.fixture(scope="session")
def source_db(pg):
    """The DiagnosticPro dataset (~8 MB), loaded once; tests must not modify it."""
    pg.psql("CREATE DATABASE %s" % SOURCE_DB)
    datagen.load(pg.conninfo(SOURCE_DB), SOURCE_SIZE_MB)
    with pg.connect(SOURCE_DB) as conn:
        checksums = datagen.table_checksums(conn)
    return {"name": SOURCE_DB, "checksums": checksums}


@pytest.fixture()
def conn(pg):
    return _pg.Conn(host=pg.host, port=pg.port, user=pg.superuser, password_file=pg.passfile)


@pytest.fixture()
def fresh_db_name(pg):
    """A database name no test used before; dropped afterwards with whatever was renamed from it."""
    name = "t_%s" % secrets.token_hex(4)
    yield name
    admin = pg.connect()
    try:
        cur = admin.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (name,))
        for (db,) in cur.fetchall():
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    finally:
        admin.close()


@pytest.fixture()
def dest():
    path = tempfile.mkdtemp(prefix="dr-test-dest-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def gcs_opts(gcs):
    return {"endpoint": gcs.endpoint, "credentials_file": None, "project": None}


@pytest.fixture()
def gcs_client(gcs_opts):
    return _gcs.connect(**gcs_opts)
