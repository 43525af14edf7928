"""``python -m bench [--sizes 1024,3072] [--skip-pgbackrest] [--skip-compression] [--keep]``."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time

from . import report
from .env import BenchEnv
from .pgbackrest import PgBackRest
from .runner import Runner
from .suite import run_size


def _sizes(text):
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError("expected sizes in MB, e.g. 1024,3072")
    return sorted(sizes)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1024, 3072],
        help="dataset sizes in MB, comma-separated (default 1024,3072; 128 for a quick run)",
    )
    parser.add_argument("--skip-pgbackrest", action="store_true", help="leave out the pgBackRest comparison")
    parser.add_argument("--skip-compression", action="store_true", help="leave out the codec study")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (cluster, artifacts, logs)")
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only, not docs/benchmarks.md")
    return parser.parse_args(argv)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _pgbackrest(env):
    try:
        return PgBackRest(env).setup()
    except RuntimeError as exc:
        sys.exit("Failed to set up pgBackRest: %s\nRe-run with --skip-pgbackrest to benchmark the rest." % exc)


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("python -m bench runs as root: PostgreSQL and pgBackRest run as the unprivileged user drpg")
    if not args.skip_pgbackrest and not shutil.which("pgbackrest"):
        sys.exit(
            "pgbackrest is not installed: `make bench` installs it (bindep profile bench), or use --skip-pgbackrest"
        )
    run = {"started_at": _now(), "command": "python -m bench " + shlex.join(argv), "machine": report.machine()}
    run["json"] = os.path.relpath(report.json_path(run["started_at"]), report.REPO)
    with BenchEnv(pgbackrest=not args.skip_pgbackrest, keep=args.keep) as env:
        pgbackrest = None if args.skip_pgbackrest else _pgbackrest(env)
        runner = Runner(env)
        run["sizes"] = [
            run_size(env, runner, pgbackrest, size, compression=not args.skip_compression) for size in args.sizes
        ]
    run["finished_at"] = _now()
    run["targets"] = report.targets(run["sizes"])
    report.write_json(run)
    print("\n".join(line for _ok, line in run["targets"]))
    if not args.no_docs:
        print("wrote %s and %s" % (report.write_docs(run), run["json"]))
    failed = sum(1 for ok, _line in run["targets"] if not ok)
    print("%d of %d targets failed" % (failed, len(run["targets"])) if failed else "all targets met")


if __name__ == "__main__":
    main(sys.argv[1:])
