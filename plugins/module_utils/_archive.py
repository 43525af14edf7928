# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypted archives of directories (the application, configuration): tar -> zstd -> gpg.

The same encryption, naming and manifest as database backups (``_artifact``), so the same
modules upload, list and verify them. The tar stream never touches disk unencrypted.
"""

from __future__ import annotations

import os
import re
import time

from . import _artifact
from . import _manifest as manifest_mod
from ._crypto import Encryption
from ._errors import ConfigError
from ._pipeline import Stage

# The runbook's application backup excludes.
DEFAULT_EXCLUDES = ("node_modules", "*.log", "tmp/*")
_TOTAL_RE = re.compile(r"Total bytes written: (\d+)")


def _relative(paths):
    """Absolute, existing, de-duplicated paths, as tar members relative to /."""
    members = []
    for path in paths:
        if not os.path.isabs(path):
            raise ConfigError("Failed to archive %s: give absolute paths" % path)
        if not os.path.exists(path):
            raise ConfigError("Failed to archive %s: it does not exist" % path)
        member = os.path.normpath(path).lstrip("/") or "."
        if member not in members:
            members.append(member)
    if not members:
        raise ConfigError("Failed to archive: no paths given")
    return members


def exclude_args(members, excludes):
    """A pattern without a slash (``node_modules``, ``*.log``) matches a name anywhere; one with
    a slash (``tmp/*``) is anchored to each archived directory, so ``tmp/*`` means
    ``<app>/tmp/*`` and not every path that happens to pass through a ``tmp`` directory."""
    names = [p for p in excludes if "/" not in p.rstrip("/")]
    rooted = [p.lstrip("/") for p in excludes if "/" in p.rstrip("/")]
    args = ["--no-anchored"] + ["--exclude=%s" % p for p in names]
    if rooted:
        args += ["--anchored"] + ["--exclude=%s/%s" % (m, p) for m in members for p in rooted]
    return args


def tar_stage(members, excludes):
    argv = [
        _artifact.tool_path("tar"),
        "--create",
        "--file=-",
        "--directory=/",
        "--numeric-owner",
        "--sort=name",
        "--sparse",
        "--totals",
    ] + exclude_args(members, excludes)
    return Stage("tar", argv + ["--"] + members)


def archive(
    paths,
    dest,
    encryption,
    label,
    excludes=DEFAULT_EXCLUDES,
    compression="zstd",
    compression_level=None,
    jobs=2,
    tier="tier2",
    retention_class="hot",
    progress=None,
    check_mode=False,
):
    """Archive ``paths`` into one encrypted artifact in ``dest``; return the module's result."""
    if not isinstance(encryption, Encryption):
        raise TypeError("encryption must be an Encryption")
    members = _relative(paths)
    _artifact.check_dest(dest)
    encryption.preflight()
    planned = _artifact.plan(
        label, dest, "tar", compression, compression_level, tier, retention_class, allowed=("zstd", "lz4", "none")
    )
    if check_mode:
        return _artifact.planned_result(planned)
    started, t0 = manifest_mod.utcnow(), time.monotonic()
    tar = tar_stage(members, list(excludes))
    pipeline, enc_doc, written = _artifact.encrypt_to_file(
        planned,
        encryption,
        "archive %s" % ", ".join("/" + m for m in members),
        head=[tar],
        jobs=jobs,
        progress=progress,
    )
    match = _TOTAL_RE.search(tar.stderr)
    doc, manifest_path = _artifact.write_manifest(
        "files",
        planned,
        written,
        enc_doc,
        started,
        t0,
        {
            "files": {
                "paths": ["/" + m for m in members],
                "excludes": list(excludes),
                "tar_bytes": int(match.group(1)) if match else None,
                "root": "/",
            },
            "source": {"host": os.uname().nodename, "data_timestamp": manifest_mod.isoformat(started)},
        },
    )
    return _artifact.result(planned, manifest_path, written, doc, pipeline)
