"""Process plumbing for the benchmarks: shell-free pipelines and peak-RSS sampling from /proc."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_EVERY_S = 0.05


def run_chain(commands, stdout=subprocess.DEVNULL, env=None, log_path=None):
    """Run argv lists wired stdout -> stdin, like a shell pipeline without the shell.

    The last command writes to ``stdout`` (a file object or DEVNULL); every command's stderr
    goes to ``log_path``. Raises RuntimeError naming each command that exited non-zero.
    """
    log = open(log_path or os.devnull, "ab")
    procs = []
    try:
        upstream = subprocess.DEVNULL
        for index, argv in enumerate(commands):
            last = index == len(commands) - 1
            proc = subprocess.Popen(
                argv, stdin=upstream, stdout=stdout if last else subprocess.PIPE, stderr=log, env=env
            )
            if procs:
                upstream.close()  # only the next stage may hold the read end, or EOF never arrives
            procs.append(proc)
            upstream = proc.stdout
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    finally:
        codes = [proc.wait() for proc in procs]
        log.close()
    failed = ["%s exited %d" % (os.path.basename(proc.args[0]), code) for proc, code in zip(procs, codes) if code]
    if failed:
        raise RuntimeError("pipeline failed: %s (stderr in %s)" % ("; ".join(failed), log_path))


def _read_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    return int(stat[stat.rindex(b")") + 2 :].split()[1])


def _exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid, "rb") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


class ProcessTable:
    """Parent of every live process, learned incrementally.

    This kernel has no /proc/<pid>/task/<tid>/children, and reading every /proc/<pid>/stat
    costs ~20 ms per sample here; listing /proc and reading only the new pids costs ~1 ms.
    """

    def __init__(self):
        self.parent = {}

    def refresh(self):
        live = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        for pid in self.parent.keys() - live:
            del self.parent[pid]
        for pid in live - self.parent.keys():
            ppid = _read_ppid(pid)
            if ppid is not None:
                self.parent[pid] = ppid

    def descendants(self, root):
        """``root`` and every process below it."""
        children = {}
        for pid, ppid in self.parent.items():
            children.setdefault(ppid, []).append(pid)
        found, stack = [], [root]
        while stack:
            pid = stack.pop()
            found.append(pid)
            stack.extend(children.get(pid, ()))
        return found


class PeakSampler:
    """Peak RSS, sampled every 50 ms, of three groups of processes while a case runs.

    * ``python``: the case's own Python process (the benchmark child);
    * ``spawned``: every process below it (pg_dump, gpg, zstd, psql, pg_restore, runuser, pgbackrest);
    * ``server``: PostgreSQL processes that appeared under the postmaster during the case
      (the backends serving the case's connections, parallel and autovacuum workers,
      pgBackRest's archive-push). Their RSS counts the shared_buffers pages they touched.

    RSS sums count shared pages once per process; the emulators are not included. A child not
    yet exec'd (still the Python binary) is not counted: it shares the case's own pages.
    """

    def __init__(self, postmaster):
        self.postmaster = postmaster
        self.root = self._root_exe = None
        self.table = ProcessTable()
        self.table.refresh()
        # Taken before the case starts: only server processes that appear later are its own.
        self.baseline = set(self.table.descendants(postmaster))
        self.peak = {"python": 0, "spawned": 0, "server": 0, "total": 0}
        self.samples = 0
        self._stop = threading.Event()

    def sample(self):
        self.table.refresh()
        # A child caught between fork and exec is still the Python binary and shares the
        # parent's pages: counting it would add the whole Python RSS again to "spawned".
        below = [pid for pid in self.table.descendants(self.root) if pid != self.root and _exe(pid) != self._root_exe]
        server = [pid for pid in self.table.descendants(self.postmaster) if pid not in self.baseline]
        now = {
            "python": rss_bytes(self.root),
            "spawned": sum(map(rss_bytes, below)),
            "server": sum(map(rss_bytes, server)),
        }
        now["total"] = sum(now.values())
        self.peak = {key: max(value, now[key]) for key, value in self.peak.items()}
        self.samples += 1

    def _loop(self):
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.sample()

    @contextlib.contextmanager
    def watching(self, root):
        """Sample ``root``'s tree in a thread until the block ends."""
        self.root = root
        self._root_exe = _exe(root)
        thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
