"""The pipeline with small real processes (cat, sh, false): exit statuses, ordering of causes,
all-or-nothing sinks, source hashing. No mocks: these are the same code paths pg_dump and gpg take."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils._pipeline import (
    FileSink,
    Hasher,
    MemorySink,
    Pipeline,
    PipelineError,
    Stage,
    hash_file,
)


def produce(nbytes):
    return Stage("producer", ["head", "-c", str(nbytes), "/dev/urandom"])


def test_bytes_flow_through_and_are_hashed(tmp_path):
    out = str(tmp_path / "out.bin")
    pipeline = Pipeline([produce(3 * 1024 * 1024 + 7), Stage("cat", ["cat"])], sinks=[FileSink(out)]).run()
    assert pipeline.output.size == os.path.getsize(out) == 3 * 1024 * 1024 + 7
    assert hash_file(out) == pipeline.output.result()
    assert not os.path.exists(out + ".partial")


def test_source_is_hashed_as_fed(tmp_path):
    chunks = [os.urandom(1000) for _unused in range(50)]
    out = str(tmp_path / "copy")
    pipeline = Pipeline([Stage("cat", ["cat"])], source=iter(chunks), sinks=[FileSink(out)]).run()
    assert pipeline.input.result()["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert open(out, "rb").read() == b"".join(chunks)


@pytest.mark.parametrize(
    "stages, reason",
    [
        (
            [produce(10), Stage("fails", ["sh", "-c", "cat >/dev/null; echo boom >&2; exit 3"])],
            "fails exited with status 3: boom",
        ),
        (
            [Stage("early", ["sh", "-c", "echo nope >&2; exit 1"]), Stage("cat", ["cat"])],
            "early exited with status 1: nope",
        ),
        ([Stage("killed", ["sh", "-c", "kill -9 $$"]), Stage("cat", ["cat"])], "killed was killed by SIGKILL"),
    ],
)
def test_any_failing_stage_fails_the_run_and_removes_the_partial_file(tmp_path, stages, reason):
    out = str(tmp_path / "out")
    with pytest.raises(PipelineError) as info:
        Pipeline(stages, sinks=[FileSink(out)]).run()
    assert reason in str(info.value)
    assert os.listdir(tmp_path) == []


def test_the_cause_is_named_before_its_victims(tmp_path):
    # The consumer dies first; the producer then dies of a broken pipe. The consumer is the cause.
    stages = [
        Stage("producer", ["sh", "-c", "yes | head -c 50000000"]),
        Stage("consumer", ["sh", "-c", "head -c 10 >/dev/null; echo disk on fire >&2; exit 4"]),
    ]
    with pytest.raises(PipelineError) as info:
        Pipeline(stages, sinks=[FileSink(str(tmp_path / "o"))]).run()
    assert info.value.reasons[0].startswith("consumer exited with status 4")
    assert info.value.failed_stage == "consumer"


def test_a_failing_source_fails_the_run(tmp_path):
    def source():
        yield b"x" * 100
        raise OSError("connection reset by the object store")

    with pytest.raises(PipelineError, match="connection reset"):
        Pipeline([Stage("cat", ["cat"])], source=source(), sinks=[FileSink(str(tmp_path / "o"))]).run()
    assert os.listdir(tmp_path) == []


def test_source_is_drained_after_the_consumer_dies_when_asked():
    data = [b"a" * 65536] * 64
    pipeline = Pipeline([Stage("dies", ["sh", "-c", "exit 2"])], source=iter(data), drain_source_on_error=True)
    with pytest.raises(PipelineError):
        pipeline.run()
    assert pipeline.input.size == 64 * 65536, "the whole source must be hashed to tell corruption from failure"


def test_file_sink_never_overwrites(tmp_path):
    out = tmp_path / "exists"
    out.write_bytes(b"precious")
    with pytest.raises(PipelineError, match="already exists"):
        Pipeline([produce(10)], sinks=[FileSink(str(out))]).run()
    assert out.read_bytes() == b"precious"


def test_descriptors_are_passed_not_argv(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    fd = os.open(str(secret), os.O_RDONLY)
    out = str(tmp_path / "out")
    stage = Stage("reader", ["cat", "/proc/self/fd/%d" % fd], fds=(fd,))
    Pipeline([stage], sinks=[FileSink(out)]).run()
    assert open(out).read() == "s3cr3t\n"
    assert "s3cr3t" not in stage.command_line()
    with pytest.raises(OSError):
        os.fstat(fd)  # the parent's copy was closed after spawning


def test_timings_cover_source_and_stages():
    pipeline = Pipeline(
        [Stage("cat", ["cat"]), Stage("sink", ["sh", "-c", "cat >/dev/null"])], source=iter([b"x" * 10])
    )
    pipeline.run()
    timings = pipeline.timings()
    assert set(timings) == {"source", "cat", "sink"}
    assert all(v >= 0 for v in timings.values())


def test_hasher_matches_gcs_crc32c_encoding():
    hasher = Hasher()
    hasher.update(b"hello world")
    # gsutil hash: crc32c of "hello world" is yZRlqg== (base64, big-endian).
    assert hasher.result()["crc32c"] == "yZRlqg=="


def _big_source(count=64, size=1024 * 1024):
    return (os.urandom(size) for _unused in range(count))


def test_reader_may_stop_once_it_has_what_it_needs(tmp_path):
    """`head -c` stands in for pg_restore reading only the archive's table of contents."""
    sink = MemorySink()
    pipeline = Pipeline(
        [Stage("cat", ["cat"]), Stage("head", ["head", "-c", "100"])],
        source=_big_source(),
        sinks=[sink],
        reader_may_stop=True,
    ).run()
    assert len(sink.data) == 100
    assert pipeline.stopped_early
    assert pipeline.input.size < 64 * 1024 * 1024, "the rest of the source was read for nothing"


def test_reader_may_stop_and_still_hash_everything(tmp_path):
    pipeline = Pipeline(
        [Stage("cat", ["cat"]), Stage("head", ["head", "-c", "100"])],
        source=_big_source(8),
        sinks=[MemorySink()],
        reader_may_stop=True,
        drain_source_on_error=True,
    ).run()
    assert not pipeline.stopped_early
    assert pipeline.input.size == 8 * 1024 * 1024


def test_a_reader_that_stops_and_fails_is_still_a_failure():
    with pytest.raises(PipelineError, match="quits exited with status 4"):
        Pipeline(
            [Stage("cat", ["cat"]), Stage("quits", ["sh", "-c", "head -c 10 >/dev/null; exit 4"])],
            source=_big_source(),
            reader_may_stop=True,
        ).run()


def test_without_reader_may_stop_an_early_reader_breaks_the_pipe():
    with pytest.raises(PipelineError, match="cat"):
        Pipeline(
            [Stage("cat", ["cat"]), Stage("head", ["head", "-c", "100"])], source=_big_source(), sinks=[MemorySink()]
        ).run()
