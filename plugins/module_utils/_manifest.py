# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup manifest: a versioned JSON document written beside every artifact.

A backup exists only once its manifest does: uploads write the manifest last, and every
reader (listing, verification, restore) starts from a manifest and checks the artifact
against the size and hashes recorded in it. The manifest never holds key material: only
a key identifier (symmetric mode) or the recipients' fingerprints (public-key mode).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import tempfile

from ._errors import ConfigError, VerifyError

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
KINDS = ("postgresql", "files", "kubernetes")

# Layers, innermost first, and the file-name suffix each one adds.
LAYER_SUFFIXES = {
    "pg_dump-custom": ".dump",
    "tar": ".tar",
    "yaml": ".yaml",
    "zstd": ".zst",
    "lz4": ".lz4",
    "gzip": ".gz",
    "openpgp": ".gpg",
}
_BACKUP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")
_REQUIRED = ("manifest_version", "kind", "backup_id", "started_at", "finished_at", "artifact", "encryption")
_REQUIRED_ARTIFACT = ("name", "size", "sha256", "crc32c", "layers")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def isoformat(ts):
    """RFC 3339 in UTC with a Z, to the microsecond: sortable as text."""
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value):
    """Parse an RFC 3339 / ISO 8601 timestamp; naive values are taken as UTC."""
    if isinstance(value, datetime.datetime):
        ts = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ConfigError(
                "Failed to parse timestamp %r: expected ISO 8601 such as 2026-12-03T15:04:05Z" % value
            ) from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.timezone.utc)
    return ts.astimezone(datetime.timezone.utc)


def new_backup_id(label, now=None):
    """``<label>-<YYYYmmddTHHMMSSZ>-<6 hex>``: sorts by time for one label, unique across hosts."""
    now = now or utcnow()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "backup"
    return "%s-%s-%s" % (safe, now.strftime("%Y%m%dT%H%M%SZ"), secrets.token_hex(3))


def validate_backup_id(backup_id):
    if not _BACKUP_ID_RE.match(backup_id or ""):
        raise ConfigError("Failed to use backup id %r: only letters, digits, '_', '.' and '-' are allowed" % backup_id)
    return backup_id


def artifact_name(backup_id, layers):
    """The file name states the layers: ``<id>.dump.zst.gpg`` = OpenPGP(zstd(pg_dump custom))."""
    unknown = [layer for layer in layers if layer not in LAYER_SUFFIXES]
    if unknown:
        raise ConfigError("Failed to name artifact: unknown layer(s) %s" % ", ".join(unknown))
    return validate_backup_id(backup_id) + "".join(LAYER_SUFFIXES[layer] for layer in layers)


def manifest_name(artifact):
    return artifact + MANIFEST_SUFFIX


def artifact_from_manifest_name(name):
    if not name.endswith(MANIFEST_SUFFIX):
        raise ConfigError("Failed to read manifest %s: manifest names end in %s" % (name, MANIFEST_SUFFIX))
    return name[: -len(MANIFEST_SUFFIX)]


def validate(doc, source="manifest"):
    """Check the structure of a manifest; return it unchanged. Raises VerifyError."""
    if not isinstance(doc, dict):
        raise VerifyError("Failed to read %s: not a JSON object" % source)
    missing = [key for key in _REQUIRED if key not in doc]
    if missing:
        raise VerifyError("Failed to read %s: missing %s" % (source, ", ".join(missing)))
    version = doc["manifest_version"]
    if not isinstance(version, int) or version > MANIFEST_VERSION or version < 1:
        raise VerifyError(
            "Failed to read %s: manifest_version %r is not supported by this collection (knows 1..%d); "
            "upgrade diagnosticpro.dr" % (source, version, MANIFEST_VERSION)
        )
    artifact = doc["artifact"]
    missing = [key for key in _REQUIRED_ARTIFACT if key not in artifact]
    if missing:
        raise VerifyError("Failed to read %s: artifact is missing %s" % (source, ", ".join(missing)))
    if not isinstance(artifact["size"], int) or artifact["size"] < 0:
        raise VerifyError("Failed to read %s: artifact.size is not a byte count" % source)
    if not re.match(r"^[0-9a-f]{64}$", str(artifact["sha256"])):
        raise VerifyError("Failed to read %s: artifact.sha256 is not a SHA-256 hex digest" % source)
    validate_backup_id(doc["backup_id"])
    return doc


def dumps(doc):
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def loads(text, source="manifest"):
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise VerifyError("Failed to read %s: not valid JSON (%s)" % (source, exc)) from exc
    return validate(doc, source)


def write(doc, path):
    """Write atomically (temp file in the same directory, fsync, rename): never a half manifest."""
    validate(doc, path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(dumps(doc))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read(path):
    try:
        with open(path) as handle:
            return loads(handle.read(), path)
    except FileNotFoundError as exc:
        raise VerifyError(
            "Failed to read manifest %s: it does not exist; an artifact without a manifest is not a backup" % path
        ) from exc


def age_seconds(doc, now=None):
    """How old the data in this backup is: the RPO if the database were lost now."""
    ref = doc.get("source", {}).get("data_timestamp") or doc["started_at"]
    return max(0.0, ((now or utcnow()) - parse_time(ref)).total_seconds())
