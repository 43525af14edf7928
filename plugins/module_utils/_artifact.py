# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The part every backup shares, whatever it backs up: compress -> gpg -> local file, then
check the file where it landed and write its manifest.

Database dumps, application archives and Kubernetes manifests all go through here, so they
share one encryption path, one naming scheme and one manifest format, and every one of them
can be uploaded, listed and verified by the same modules.
"""

from __future__ import annotations

import os
import shutil
import time

from . import _manifest as manifest_mod
from ._errors import ConfigError, DumpError, EncryptError, IntegrityError
from ._pipeline import FileSink, Pipeline, PipelineError, Stage, hash_file

COLLECTION_VERSION = "0.1.0"

# Measured on the sandbox dataset (docs/benchmarks.md): zstd -3 with threads beats
# pg_dump's built-in gzip on both speed and ratio; lz4 is faster but larger.
COMPRESSIONS = {
    "zstd": {"layer": "zstd", "level": 3, "max_level": 19},
    "lz4": {"layer": "lz4", "level": 1, "max_level": 12},
    "pg_dump": {"layer": None, "level": 6, "max_level": 9},
    "none": {"layer": None, "level": 0, "max_level": 0},
}
DECOMPRESS = {"zstd": ["zstd", "-q", "-d", "-c"], "lz4": ["lz4", "-q", "-d", "-c"]}


def tool_path(name):
    path = shutil.which(name)
    if not path:
        raise ConfigError("Failed to find %s: install it (Debian package %s)" % (name, name))
    return path


def resolve_compression(algorithm, level, allowed=tuple(COMPRESSIONS)):
    if algorithm not in allowed:
        raise ConfigError("Failed to use compression %r: choose one of %s" % (algorithm, ", ".join(allowed)))
    spec = COMPRESSIONS[algorithm]
    level = spec["level"] if level is None else int(level)
    if not 0 <= level <= spec["max_level"]:
        raise ConfigError("Failed to use %s level %d: allowed 0..%d" % (algorithm, level, spec["max_level"]))
    if spec["layer"]:
        tool_path(algorithm)
    tool_path("gpg")
    return spec, level


def compression_stage(algorithm, level, jobs):
    if algorithm == "zstd":
        return Stage("zstd", [tool_path("zstd"), "-q", "-c", "-T%d" % max(1, jobs), "-%d" % level])
    if algorithm == "lz4":
        return Stage("lz4", [tool_path("lz4"), "-q", "-c", "-%d" % level])
    return None


def check_dest(dest):
    if not os.path.isdir(dest):
        raise ConfigError("Failed to use dest %s: not a directory" % dest, hint="Create it (mode 0750) first")
    if not os.access(dest, os.W_OK | os.X_OK):
        raise ConfigError("Failed to use dest %s: not writable by this user" % dest)


def plan(
    label,
    dest,
    inner_layer,
    compression,
    level=None,
    tier="tier1",
    retention_class="hot",
    now=None,
    allowed=tuple(COMPRESSIONS),
):
    """Everything about the artifact that is decided before anything is written: its id,
    layers and path, and the settings its manifest will record."""
    spec, level = resolve_compression(compression, level, allowed)
    layers = [inner_layer] + ([spec["layer"]] if spec["layer"] else []) + ["openpgp"]
    backup_id = manifest_mod.new_backup_id(label, now)
    name = manifest_mod.artifact_name(backup_id, layers)
    return {
        "backup_id": backup_id,
        "layers": layers,
        "name": name,
        "path": os.path.join(dest, name),
        "label": label,
        "compression": compression,
        "level": level,
        "tier": tier,
        "retention_class": retention_class,
    }


def planned_result(planned):
    """What a module reports in check mode: the artifact it would write."""
    return {
        "changed": True,
        "path": planned["path"],
        "manifest_path": manifest_mod.manifest_name(planned["path"]),
        "backup_id": planned["backup_id"],
        "layers": planned["layers"],
    }


def encrypt_to_file(planned, encryption, what, head=(), source=None, jobs=2, progress=None, followers=()):
    """Run ``head`` stages (or feed ``source`` chunks) -> compression -> gpg -> ``planned['path']``.

    ``followers`` are extra sinks that read the file while it is written (``_gcs.Prestage``).

    Returns ``(pipeline, encryption_doc, written)`` once the file on disk hashes to what was
    streamed. Any failure removes the partial file and raises DumpError/EncryptError.
    """
    with encryption.home() as home:
        enc_doc = encryption.describe(home)
        stages = list(head)
        extra = compression_stage(planned["compression"], planned["level"], jobs)
        if extra:
            stages.append(extra)
        gpg_argv, gpg_fds = encryption.stage(home)
        stages.append(Stage("gpg", gpg_argv, fds=gpg_fds))
        sink = FileSink(planned["path"])
        for follower in followers:
            follower.follow(sink.partial, planned["name"])
        pipeline = Pipeline(stages, source=source, sinks=[sink, *followers], progress=progress)
        try:
            pipeline.run()
        except PipelineError as exc:
            error_cls = EncryptError if exc.failed_stage == "gpg" else DumpError
            raise error_cls(
                "Failed to %s: %s" % (what, exc),
                hint="Nothing was kept: the partial file %s.partial was removed" % planned["path"],
            ) from exc
    written = pipeline.output.result()
    landed = hash_file(planned["path"])
    if landed != written:
        os.unlink(planned["path"])
        raise IntegrityError(
            "Failed to verify local copy %s: it does not match what was written (%s vs %s); "
            "removed it" % (planned["path"], landed, written)
        )
    return pipeline, enc_doc, written


def write_manifest(kind, planned, written, enc_doc, started, t0, extra):
    """The manifest common to every kind of backup, merged with the kind's own ``extra`` keys."""
    doc = {
        "manifest_version": manifest_mod.MANIFEST_VERSION,
        "kind": kind,
        "backup_id": planned["backup_id"],
        "label": planned["label"],
        "started_at": manifest_mod.isoformat(started),
        "finished_at": manifest_mod.isoformat(manifest_mod.utcnow()),
        "duration_s": round(time.monotonic() - t0, 3),
        "tier": planned["tier"],
        "retention_class": planned["retention_class"],
        "tool": {"name": "diagnosticpro.dr", "version": COLLECTION_VERSION},
        "artifact": dict(
            written, name=planned["name"], layers=planned["layers"], content_type="application/pgp-encrypted"
        ),
        "compression": {"algorithm": planned["compression"], "level": planned["level"]},
        "encryption": enc_doc,
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    try:
        path = manifest_mod.write(doc, manifest_mod.manifest_name(planned["path"]))
    except OSError as exc:
        # An artifact without its manifest is not a backup, and nothing would ever clean it up.
        os.unlink(planned["path"])
        raise DumpError(
            "Failed to write the manifest of %s: %s" % (planned["backup_id"], exc.strerror or exc),
            hint="Nothing was kept: the artifact %s was removed" % planned["path"],
        ) from exc
    return doc, path


def result(planned, manifest_path, written, doc, pipeline):
    """The return values every backup module shares."""
    return {
        "changed": True,
        "path": planned["path"],
        "manifest_path": manifest_path,
        "backup_id": planned["backup_id"],
        "layers": planned["layers"],
        "size": written["size"],
        "sha256": written["sha256"],
        "crc32c": written["crc32c"],
        "duration_s": doc["duration_s"],
        "commands": pipeline.commands(),
        "manifest": doc,
    }
