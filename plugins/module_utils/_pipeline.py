# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A streaming pipeline of processes with in-line hashing and all-or-nothing sinks.

Stages are ``subprocess.Popen`` processes wired stdout -> stdin by OS pipes, so the bulk of
the data never passes through Python. Python touches the stream only at the two ends: an
optional *source* (an iterator of byte chunks fed to the first stage, hashed as it goes:
"what we read is what the manifest says") and the *output* of the last stage (hashed and
written to sinks: "what we wrote is what we will record"). Memory is bounded by the chunk
size and the OS pipe buffers, whatever the size of the database.

Every stage's exit status is checked; a stage killed by a signal, a non-zero exit, a
failing source or a failing sink fails the whole run, the other stages are killed, and
every sink removes its partial output. Secrets reach stages through inherited file
descriptors (``pass_fds``), never argv.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import threading
import time

try:
    import google_crc32c
except ImportError:  # pragma: no cover - declared in requirements.txt; checked by DRModule
    google_crc32c = None

CHUNK = 1024 * 1024
_STDERR_KEEP = 16 * 1024


class Hasher:
    """SHA-256, CRC32C and a byte count over one stream."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.crc32c = google_crc32c.Checksum() if google_crc32c else None
        self.size = 0

    def update(self, chunk):
        self.sha256.update(chunk)
        if self.crc32c is not None:
            self.crc32c.update(chunk)
        self.size += len(chunk)

    def result(self):
        import base64

        return {
            "size": self.size,
            "sha256": self.sha256.hexdigest(),
            # GCS reports CRC32C as base64 of the big-endian 4 bytes: record it the same way.
            "crc32c": base64.b64encode(self.crc32c.digest()).decode() if self.crc32c is not None else None,
        }


def hash_file(path, chunk=4 * CHUNK):
    hasher = Hasher()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            hasher.update(block)
    return hasher.result()


class Stage:
    """One process of the pipeline. ``fds`` are inherited descriptors (closed here after spawn)."""

    def __init__(self, name, argv, env=None, fds=(), ok_codes=(0,)):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.fds = tuple(fds)
        self.ok_codes = tuple(ok_codes)
        self.proc = None
        self._stderr = bytearray()
        self._reader = None
        self.finished = None

    def command_line(self):
        """What ran, for the result: never holds a secret, since keys come by descriptor."""
        return " ".join(self.argv)

    def start(self, stdin, stdout):
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.PIPE,
                env=self.env,
                pass_fds=self.fds,
                close_fds=True,
                start_new_session=False,
            )
        finally:
            for fd in self.fds:
                os.close(fd)
            self.fds = ()
        self._reader = threading.Thread(target=self._drain, name="stderr-%s" % self.name, daemon=True)
        self._reader.start()
        return self.proc

    def _drain(self):
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr += line
            if len(self._stderr) > 2 * _STDERR_KEEP:
                del self._stderr[:-_STDERR_KEEP]
        self.proc.stderr.close()
        self.finished = time.monotonic()  # stderr closes when the process exits

    @property
    def stderr(self):
        return bytes(self._stderr[-_STDERR_KEEP:]).decode(errors="replace").strip()

    def wait(self):
        code = self.proc.wait()
        self._reader.join(timeout=5)
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    def lost_its_reader(self):
        """Died of a broken pipe: a victim of the stage after it, not the cause."""
        code = self.proc.returncode
        return code in (-signal.SIGPIPE, 128 + signal.SIGPIPE) or "broken pipe" in self.stderr.lower()

    def failure(self):
        """None if the stage succeeded, else a one-line reason."""
        code = self.proc.returncode
        if code in self.ok_codes:
            return None
        if code is not None and code < 0:
            try:
                signame = signal.Signals(-code).name
            except ValueError:
                signame = "signal %d" % -code
            return "%s was killed by %s" % (self.name, signame)
        detail = self.stderr.splitlines()[-3:] if self.stderr else []
        return "%s exited with status %s%s" % (self.name, code, (": " + " | ".join(detail)) if detail else "")


class FileSink:
    """Write to ``<path>.partial`` (never over an existing file), fsync, then rename."""

    def __init__(self, path, mode=0o640):
        self.path = path
        self.partial = path + ".partial"
        self.mode = mode
        self._fd = None

    def open(self):
        if os.path.exists(self.path):
            raise FileExistsError(errno.EEXIST, "refusing to overwrite existing file", self.path)
        self._fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.mode)

    def write(self, chunk):
        view = memoryview(chunk)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, self.path) from exc

    def commit(self):
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        os.rename(self.partial, self.path)
        dir_fd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def abort(self):
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if os.path.exists(self.partial):
            os.unlink(self.partial)


class MemorySink:
    """Collect a small output (a table of contents) in memory."""

    def __init__(self):
        self.data = bytearray()

    def open(self):
        pass

    def write(self, chunk):
        self.data += chunk

    def commit(self):
        pass

    def abort(self):
        self.data.clear()


class PipelineError(Exception):
    """Raised by run(); ``reasons`` lists every failing stage, source or sink, first cause first."""

    def __init__(self, reasons, failed_stage=None):
        self.reasons = reasons
        self.failed_stage = failed_stage
        super().__init__("; ".join(reasons))


class Pipeline:
    def __init__(
        self,
        stages,
        source=None,
        sinks=(),
        progress=None,
        progress_every=5.0,
        chunk=CHUNK,
        drain_source_on_error=False,
        reader_may_stop=False,
    ):
        self.stages = list(stages)
        self.source = source
        self.sinks = list(sinks)
        self.progress = progress
        self.progress_every = progress_every
        self.chunk = chunk
        self.input = Hasher()
        self.output = Hasher()
        self.started = None
        self.duration = None
        self.source_finished = None
        # Keep reading (and hashing) the source after a stage died, so the caller can tell
        # "the artifact is corrupt" (hash mismatch) from "the tool failed".
        self.drain_source_on_error = drain_source_on_error
        # The last stage may quit once it has what it needs (pg_restore of one section reads
        # only the archive's head): when it exits 0, the stages before it that died of the
        # broken pipe did not fail, and the rest of the source is not read (``stopped_early``)
        # unless drain_source_on_error asks for it.
        self.reader_may_stop = reader_may_stop
        self.stopped_early = False
        self.source_error = None

    def commands(self):
        """The commands that ran (argv never holds a secret: keys come by descriptor)."""
        return [stage.command_line() for stage in self.stages]

    def _feed(self, pipe):
        source = iter(self.source)
        try:
            for chunk in source:
                self.input.update(chunk)
                pipe.write(chunk)
        except BrokenPipeError:
            # The consumer died or, if it may, stopped reading; its exit status says which.
            if self.reader_may_stop and self.stages[-1].wait() == 0 and not self.drain_source_on_error:
                self.stopped_early = True
            elif self.drain_source_on_error:
                try:
                    for chunk in source:
                        self.input.update(chunk)
                except Exception as exc:  # noqa: BLE001
                    self.source_error = exc
        except Exception as exc:  # noqa: BLE001 - any source failure fails the run with its reason
            self.source_error = exc
            self.kill()
        finally:
            self.source_finished = time.monotonic()
            try:
                pipe.close()
            except BrokenPipeError:
                pass

    def timings(self):
        """Seconds from the start until the source was exhausted and each stage exited."""
        out = {}
        if self.source_finished is not None:
            out["source"] = round(self.source_finished - self.started, 3)
        for stage in self.stages:
            if stage.finished is not None:
                out[stage.name] = round(stage.finished - self.started, 3)
        return out

    def run(self):
        self.started = time.monotonic()
        feeder = None
        sinks_open = []
        reasons = []
        try:
            for sink in self.sinks:
                sink.open()
                sinks_open.append(sink)
            prev = subprocess.PIPE if self.source is not None else subprocess.DEVNULL
            for index, stage in enumerate(self.stages):
                last = index == len(self.stages) - 1
                stdout = subprocess.PIPE if (not last or self.sinks) else subprocess.DEVNULL
                proc = stage.start(prev, stdout)
                if index > 0 and prev not in (subprocess.PIPE, subprocess.DEVNULL):
                    prev.close()  # the parent's copy: EOF must reach the next stage
                if index == 0 and self.source is not None:
                    feeder = threading.Thread(target=self._feed, args=(proc.stdin,), name="source", daemon=True)
                    feeder.start()
                prev = proc.stdout
            if self.sinks:
                self._drain_output(prev)
        except Exception as exc:  # noqa: BLE001 - translated below into one PipelineError
            reasons.append(self._describe(exc))
            self.kill()
        finally:
            if feeder is not None:
                feeder.join()
            for stage in self.stages:
                if stage.proc is not None:
                    stage.wait()
            self.duration = time.monotonic() - self.started
        failed_stage = None
        causes, consequences = [], []
        last_ok = self.stages[-1].proc is not None and self.stages[-1].failure() is None
        for stage in self.stages:
            reason = stage.failure() if stage.proc is not None else None
            if not reason or (reasons and "killed by SIGKILL" in reason):
                continue  # killed by us after the first failure
            if self.reader_may_stop and last_ok and stage.lost_its_reader():
                continue  # its reader had all it needed
            (consequences if stage.lost_its_reader() else causes).append((stage.name, reason))
        for name, reason in causes + consequences:
            reasons.append(reason)
            failed_stage = failed_stage or name
        if self.source_error is not None:
            reasons.insert(0, self._describe(self.source_error))
        if reasons:
            for sink in sinks_open:
                sink.abort()
            raise PipelineError(reasons, failed_stage)
        try:
            for sink in sinks_open:
                sink.commit()
        except Exception as exc:
            for sink in sinks_open:
                sink.abort()
            raise PipelineError([self._describe(exc)]) from exc
        return self

    def kill(self):
        """Stop every stage now (another pipeline working on the same job failed)."""
        for stage in self.stages:
            stage.kill()

    def _drain_output(self, pipe):
        next_report = time.monotonic() + self.progress_every
        for chunk in iter(lambda: pipe.read(self.chunk), b""):
            self.output.update(chunk)
            for sink in self.sinks:
                sink.write(chunk)
            if self.progress and time.monotonic() >= next_report:
                elapsed = time.monotonic() - self.started
                self.progress(
                    "%.1f MiB written (%.1f MiB/s)"
                    % (self.output.size / 1048576.0, self.output.size / 1048576.0 / max(elapsed, 1e-6))
                )
                next_report = time.monotonic() + self.progress_every
        pipe.close()

    @staticmethod
    def _describe(exc):
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return "no space left on device writing %s" % (exc.filename or "the local copy")
        if isinstance(exc, FileExistsError):
            return "%s already exists (refusing to overwrite)" % exc.filename
        if isinstance(exc, OSError) and exc.filename:
            return "%s: %s" % (exc.filename, exc.strerror)
        return str(exc) or exc.__class__.__name__
