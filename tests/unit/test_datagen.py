"""The sandbox dataset generator, without a database: shapes, relationships, determinism."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess

import pytest

from sandbox import datagen
from sandbox.cli import scram_verifier

SMALL = datagen.counts_for(1)  # the minimum: 20 customers

# Column names of each table, in order, from the DDL the loader runs.
COLUMNS = {
    table: [
        line.split()[0]
        for line in ddl.splitlines()[1:]
        if re.match(r"\s+[a-z_]+ ", line) and not line.strip().startswith(("CONSTRAINT", "CHECK"))
    ]
    for table, ddl in datagen.TABLE_DDL.items()
}
JSON_COLUMNS = {
    "diagnostic_submissions": "symptoms",
    "ai_analysis_results": "recommendations",
    "payment_transactions": "metadata",
    "audit_log": "details",
}


def rows(table, counts=SMALL, seed=1):
    text = b"".join(data for data, _unused in datagen.chunks(table, seed, counts)).decode()
    return [line.split("\t") for line in text.splitlines()]


def test_every_table_has_ddl_a_generator_and_one_load_group():
    assert set(datagen.TABLE_DDL) == set(datagen.TABLES) == set(datagen.GENERATORS)
    assert sorted(t for group in datagen.LOAD_GROUPS for t in group) == sorted(datagen.TABLES)


@pytest.mark.parametrize(
    "size_mb, base, customers",
    [
        (1, 0, 87),  # 1 MB / BYTES_PER_UNIT
        (1, 8 << 20, 20),  # smaller than an empty database: the minimum
        (64, 7 << 20, (57 << 20) // datagen.BYTES_PER_UNIT),
        (3072, 7 << 20, (3065 << 20) // datagen.BYTES_PER_UNIT),
    ],
)
def test_counts_scale_with_size(size_mb, base, customers):
    counts = datagen.counts_for(size_mb, base)
    assert counts["customers"] == customers
    assert counts["diagnostic_submissions"] == customers * datagen.SUBMISSIONS_PER_CUSTOMER
    assert counts["user_sessions"] == customers * datagen.SESSIONS_PER_CUSTOMER
    assert counts["email_templates"] == len(datagen.EMAIL_TEMPLATES)


def test_generated_row_counts_match_counts():
    for table in datagen.TABLES:
        assert len(rows(table)) == SMALL[table], table
        assert sum(n for _unused, n in datagen.chunks(table, 1, SMALL, chunk_bytes=4096)) == SMALL[table], table


@pytest.mark.parametrize("table", datagen.TABLES)
def test_rows_have_one_field_per_column_and_valid_json(table):
    for fields in rows(table):
        assert len(fields) == len(COLUMNS[table]), (table, fields[:3])
        assert fields[0].isdigit()
        if table in JSON_COLUMNS:
            value = json.loads(fields[COLUMNS[table].index(JSON_COLUMNS[table])])
            assert value, table


def test_ids_are_sequential_and_references_in_range():
    submissions = rows("diagnostic_submissions")
    assert [int(f[0]) for f in submissions] == list(range(1, SMALL["diagnostic_submissions"] + 1))
    for table, column, parent in (
        ("diagnostic_submissions", "customer_id", "customers"),
        ("ai_analysis_results", "submission_id", "diagnostic_submissions"),
        ("payment_transactions", "customer_id", "customers"),
        ("payment_transactions", "submission_id", "diagnostic_submissions"),
        ("user_sessions", "customer_id", "customers"),
    ):
        index = COLUMNS[table].index(column)
        assert all(1 <= int(f[index]) <= SMALL[parent] for f in rows(table)), (table, column)


def test_payment_belongs_to_the_submissions_customer():
    owner = {int(f[0]): int(f[1]) for f in rows("diagnostic_submissions")}
    for f in rows("payment_transactions"):
        assert owner[int(f[2])] == int(f[1])


@pytest.mark.parametrize("submission", range(1, 31))
def test_analysis_only_for_processed_and_payment_for_analysed(submission):
    status = datagen.status_of(submission)
    assert datagen.has_analysis(submission) == (status not in ("pending", "processing"))
    assert datagen.has_payment(submission) or not datagen.has_analysis(submission)


@pytest.mark.parametrize(
    "table, column",
    [
        ("customers", "email"),
        ("payment_transactions", "stripe_payment_intent_id"),
        ("user_sessions", "session_token"),
        ("email_templates", "name"),
    ],
)
def test_unique_columns_are_unique(table, column):
    values = [f[COLUMNS[table].index(column)] for f in rows(table, datagen.counts_for(4))]
    assert len(set(values)) == len(values)


def test_same_seed_same_bytes_other_seed_other_bytes():
    def dump(seed):
        return b"".join(data for table in datagen.TABLES for data, _unused in datagen.chunks(table, seed, SMALL))

    assert dump(7) == dump(7)
    assert dump(7) != dump(8)


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("plain text", "plain text"),
        ("two\nlines", "two\\nlines"),
        ("tab\there", "tab\\there"),
        ("back\\slash", "back\\\\slash"),
        ("cr\r\n", "cr\\r\\n"),
    ],
)
def test_copy_escape(raw, escaped):
    assert datagen.copy_escape(raw) == escaped


@pytest.mark.parametrize("epoch", [0, 1672531200, 1672531200 + 86399, 1752531234, 1709164800])
def test_ts_matches_datetime(epoch):
    expected = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")
    assert datagen.ts(epoch) == expected


def test_tokens_look_random_and_alphanumeric():
    rng = datagen.table_rng(1, "t")
    tokens = [datagen.token(rng, 18) for _unused in range(500)]
    assert all(re.fullmatch(r"[A-Za-z0-9]{24}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd not installed")
def test_text_compresses_like_real_data():
    """Between prose (~3x) and pgbench's repetitive rows (30x+): the ratio the benchmarks assume."""
    counts = datagen.counts_for(12)
    text = b"".join(data for table in datagen.TABLES for data, _unused in datagen.chunks(table, 1, counts))
    packed = subprocess.run(["zstd", "-3", "-c"], input=text, capture_output=True, check=True).stdout
    assert 3.0 <= len(text) / len(packed) <= 5.5


def test_scram_verifier_format_and_salt():
    salt = bytes(range(16))
    verifier = scram_verifier("s3cret", salt=salt)
    assert re.fullmatch(r"SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}", verifier)
    assert verifier == scram_verifier("s3cret", salt=salt)
    assert verifier != scram_verifier("s3cret!", salt=salt)
    assert "s3cret" not in verifier


def test_chunk_reader_streams_then_signals_end():
    seen = []
    with datagen._ChunkReader(iter([(b"a\n", 1), (b"b\n", 1)]), lambda n, r: seen.append((n, r))) as reader:
        assert [reader.read(), reader.read(), reader.read()] == [b"a\n", b"b\n", b""]
    assert seen == [(2, 1), (2, 1)]


def test_chunk_reader_reraises_generator_errors():
    def broken():
        yield b"a\n", 1
        raise ValueError("boom")

    with datagen._ChunkReader(broken(), lambda n, r: None) as reader:
        assert reader.read() == b"a\n"
        with pytest.raises(ValueError, match="boom"):
            reader.read()


def test_chunk_reader_stops_its_thread_when_the_copy_gives_up():
    endless = ((b"x\n", 1) for _unused in iter(int, 1))
    with datagen._ChunkReader(endless, lambda n, r: None) as reader:
        reader.read()
    assert not reader.thread.is_alive()


def test_analysis_is_about_the_submitted_equipment():
    submitted = {int(f[0]): "%s %s %s" % (f[5], f[3], f[4]) for f in rows("diagnostic_submissions")}
    for f in rows("ai_analysis_results"):
        assert f[4].startswith("Diagnostic summary for %s " % submitted[int(f[1])])
