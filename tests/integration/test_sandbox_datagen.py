"""The dataset loaded into real PostgreSQL: size, counts, constraints, determinism, dump ratio."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest

from sandbox import datagen

SIZE_MB = 8

# Every foreign key, as an anti-join that must find nothing.
ORPHANS = {
    "submission without customer": "SELECT s.id FROM diagnostic_submissions s LEFT JOIN customers c "
    "ON c.id = s.customer_id WHERE c.id IS NULL",
    "analysis without submission": "SELECT a.id FROM ai_analysis_results a LEFT JOIN diagnostic_submissions s "
    "ON s.id = a.submission_id WHERE s.id IS NULL",
    "payment of another customer": "SELECT p.id FROM payment_transactions p JOIN diagnostic_submissions s "
    "ON s.id = p.submission_id WHERE s.customer_id <> p.customer_id",
    "session without customer": "SELECT u.id FROM user_sessions u LEFT JOIN customers c "
    "ON c.id = u.customer_id WHERE c.id IS NULL",
}


@pytest.fixture()
def new_db(pg):
    created = []

    def make():
        name = "dg_%s" % secrets.token_hex(4)
        pg.psql("CREATE DATABASE %s" % name)
        created.append(name)
        return name

    yield make
    for name in created:
        pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def query(pg, db, sql):
    conn = pg.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def loaded(pg):
    """One 8 MB load shared by the read-only checks below."""
    name = "dg_loaded_%s" % secrets.token_hex(4)
    pg.psql("CREATE DATABASE %s" % name)
    counts = datagen.load(pg.conninfo(name), SIZE_MB, seed=3)
    yield name, counts
    pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def test_size_lands_within_15_percent(pg, loaded):
    name, _unused = loaded
    size = query(pg, name, "SELECT pg_database_size(current_database())")[0][0]
    assert abs(size / (SIZE_MB << 20) - 1) <= 0.15


def test_counts_are_what_load_returned(pg, loaded):
    name, counts = loaded
    with pg.connect(name) as conn:
        assert datagen.row_counts(conn) == counts
    assert counts["customers"] >= 20 and counts["diagnostic_submissions"] == 3 * counts["customers"]


@pytest.mark.parametrize("check", sorted(ORPHANS))
def test_no_orphans(pg, loaded, check):
    assert query(pg, loaded[0], ORPHANS[check]) == []


def test_schema_objects_a_restore_must_rebuild(pg, loaded):
    name, _unused = loaded
    constraints = dict(
        query(
            pg,
            name,
            "SELECT contype, count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace GROUP BY contype",
        )
    )
    assert constraints["p"] == len(datagen.TABLES) and constraints["f"] == 5 and constraints["u"] == 4
    assert query(pg, name, "SELECT count(*) FROM pg_constraint WHERE NOT convalidated") == [(0,)]
    indexes = {row[0] for row in query(pg, name, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert "diagnostic_submissions_symptoms_idx" in indexes and len(indexes) >= 18
    assert query(pg, name, "SELECT count(*) FROM customer_revenue") == [
        (query(pg, name, "SELECT count(*) FROM customers")[0][0],)
    ]
    assert query(pg, name, "SELECT customer_lifetime_value(1) >= 0") == [(True,)]
    conn = pg.connect(name)
    try:
        info = datagen.loaded_info(conn)
    finally:
        conn.close()
    assert info["size_mb"] == SIZE_MB and info["seed"] == 3 and info["rows"] == loaded[1]


def test_identity_sequences_continue_after_loaded_ids(pg, new_db):
    name = new_db()
    datagen.load(pg.conninfo(name), 1)
    conn = pg.connect(name)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO customers (email, name, country) VALUES ('new@example.com', 'New', 'US') "
                "RETURNING id, (SELECT max(id) FROM customers)"
            )
            new_id, previous_max = cur.fetchone()
            assert new_id == previous_max + 1
            cur.execute("UPDATE customers SET name = 'Renamed' WHERE id = 1 RETURNING updated_at > created_at")
            assert cur.fetchone() == (True,)  # the trigger
    finally:
        conn.close()


def test_same_seed_same_rows_whatever_the_parallelism(pg, new_db, loaded):
    again = new_db()
    datagen.load(pg.conninfo(again), SIZE_MB, seed=3, jobs=1)
    other = new_db()
    datagen.load(pg.conninfo(other), SIZE_MB, seed=4)
    with pg.connect(loaded[0]) as a, pg.connect(again) as b, pg.connect(other) as c:
        first, second, third = datagen.table_checksums(a), datagen.table_checksums(b), datagen.table_checksums(c)
    assert set(first) == set(datagen.TABLES)
    assert first == second
    assert all(first[t] != third[t] for t in datagen.TABLES)


def test_refuses_a_database_that_is_not_empty(pg, loaded):
    with pytest.raises(RuntimeError, match="not empty"):
        datagen.load(pg.conninfo(loaded[0]), SIZE_MB)


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd not installed")
def test_dump_compresses_like_real_data(pg, new_db):
    """pg_dump output through zstd -3: 3-5x (pgbench's dumps compress 30x and more)."""
    name = new_db()
    datagen.load(pg.conninfo(name), 24)
    env = dict(os.environ, PGPASSFILE=pg.passfile)
    dump = subprocess.run(
        [os.path.join(pg.bindir, "pg_dump"), "-h", pg.host, "-p", str(pg.port), "-U", pg.superuser, "-Fc", "-Z0", name],
        check=True,
        capture_output=True,
        env=env,
    ).stdout
    packed = subprocess.run(["zstd", "-3", "-c"], input=dump, check=True, capture_output=True).stdout
    assert 3.0 <= len(dump) / len(packed) <= 5.5
