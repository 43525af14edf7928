# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Google Cloud Storage: publish backups safely, list them, stream them back.

Invariants this file keeps, on real GCS and on the fake-gcs-server emulator alike:

* A backup exists only once its manifest does, and a manifest is written only after the
  data object at the final name was verified (size, CRC32C, recorded SHA-256) against what
  was sent. Listings start from manifests, so stray data or staging objects never count.
* A truncated or partial object never sits at a final name. Large artifacts go to a unique
  staging name first (resumable upload), or, when streamed while the backup is written, to
  a staging folder as parts; only a verified staging object is published to the final name
  by a server-side rewrite, or the parts by a server-side compose (all-or-nothing), and the
  result is verified again.
* Nothing is overwritten without ``overwrite=different``; new objects are created with
  ``if_generation_match=0`` and replacements with the generation that was inspected, so
  every write is a conditional one and safe to retry.

Emulator facts this design works around (fake-gcs-server 1.54): it ignores
``ifGenerationMatch`` on resumable uploads and on copy/rewrite (it honours it on multipart
uploads); a resumable upload's status query, which the client sends to recover from an
error, finalizes the truncated object; it ignores the storage class of resumable uploads
and rewrites; its cost per upload grows with the square of the object size, so chunks
are large. On the emulator the rewrite precondition is therefore backed by a re-check of
the final name just before publishing (see ``_publish``); on GCS the precondition itself
makes the publish atomic.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import secrets
import threading
import time

from . import _manifest
from ._crypto import check_key_file
from ._errors import ConfigError, DownloadError, IntegrityError, UploadError, VerifyError
from ._pipeline import hash_file

try:
    import google.auth
    import google_crc32c
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.cloud.storage.exceptions import DataCorruption
    from google.cloud.storage.retry import DEFAULT_RETRY
    from google.oauth2 import service_account

    # What a GCS call may raise besides our own errors: API errors (exhausted retries
    # included), auth and transport failures, checksum mismatches.
    _GCS_ERRORS = (gexc.GoogleAPIError, auth_exc.GoogleAuthError, DataCorruption, OSError, ValueError)
except ImportError:  # pragma: no cover - DRModule reports the missing library with missing_required_lib
    storage = None

# Shared by every module that talks to GCS; documented by doc_fragments/gcs_auth.py.
GCS_AUTH_SPEC = {
    "endpoint": {"type": "str"},
    "credentials_file": {"type": "path"},
    "project": {"type": "str"},
    "timeout": {"type": "float", "default": 60.0},
    "retry_deadline": {"type": "float", "default": 300.0},
}

SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
GCS_ENDPOINT = "https://storage.googleapis.com"
EMULATOR_PROJECT = "emulator"
# Up to this size an object goes in one multipart request (the client's own limit), whose
# precondition every server honours; above it, resumable upload to a staging name.
SMALL_OBJECT_MAX = 8 * 1024 * 1024
# One chunk is held in memory. The emulator's cost per request grows with the object, so
# small chunks are slow there; 64 MiB was the knee in a one-off trial (not a bench/ case,
# so no figure is claimed here), and GCS accepts any multiple of 256 KiB.
DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024
DOWNLOAD_CHUNK_SIZE = 8 * 1024 * 1024
STAGING_DIR = ".incoming/"
OVERWRITE_MODES = ("never", "different")
# The buckets a backup goes to, primary first, and how it is written there (shared by every
# module that uploads; documented in the modules and in doc_fragments/gcs_upload.py).
BUCKETS_SPEC = {
    "type": "list",
    "elements": "dict",
    "options": {"name": {"type": "str", "required": True}, "region": {"type": "str"}},
}
UPLOAD_SPEC = {
    "prefix": {"type": "str", "default": "database/"},
    "storage_class": {"type": "str", "choices": ["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"]},
    "overwrite": {"type": "str", "choices": list(OVERWRITE_MODES), "default": "never"},
    "chunk_size_mb": {"type": "int", "default": 64},
}
MIB = 1024 * 1024
SELECT_MODES = ("all", "latest", "latest_before", "backup_id")
_URL_RE = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(.+)$")


# -- names and URLs -------------------------------------------------------------------


def gs_url(bucket, name):
    return "gs://%s/%s" % (bucket, name)


def parse_url(url):
    """``gs://bucket/object`` -> ``(bucket, object)``; raises ConfigError."""
    match = _URL_RE.match(str(url or ""))
    if not match:
        raise ConfigError("Failed to parse GCS URL %r: expected gs://<bucket>/<object>" % (url,))
    return match.group(1), match.group(2)


def normalize_prefix(prefix):
    """``database`` and ``/database/`` both mean the folder ``database/``; empty means the bucket root."""
    prefix = (prefix or "").lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def verify_record_name(artifact_object, when=None):
    """A new verification record per run, never overwriting an earlier one."""
    when = when or _manifest.utcnow()
    return "%s.verify.%s.json" % (artifact_object, when.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ"))


def _record_re(artifact_object):
    # Also accepts a plain <artifact>.verify.json written by other tooling.
    return re.compile(re.escape(artifact_object) + r"\.verify(\.[0-9]{8}T[0-9]{6,12}Z)?\.json$")


# -- the client ------------------------------------------------------------------------


class GCSClient:
    """A storage client with the retry and timeout policy every call uses, and the endpoint
    named in error messages."""

    def __init__(self, storage_client, endpoint=None, timeout=60.0, retry_deadline=300.0):
        self.storage = storage_client
        self.endpoint = endpoint or GCS_ENDPOINT
        self.timeout = timeout
        self.retry_deadline = retry_deadline
        # Exponential backoff on 429/5xx, connection errors and timeouts, until the deadline.
        # Used on every call: reads are idempotent, and every write carries a generation
        # precondition, which is what makes retrying a write safe.
        backoff = DEFAULT_RETRY.with_delay(initial=0.5, multiplier=2.0, maximum=min(30.0, retry_deadline))
        self.retry = backoff.with_timeout(retry_deadline)

    def bucket(self, name):
        return self.storage.bucket(name)


def connect(endpoint=None, credentials_file=None, project=None, timeout=60.0, retry_deadline=300.0):
    """Build a GCSClient from an emulator endpoint, a service-account key file or ADC."""
    if storage is None:
        raise ConfigError("Failed to connect to GCS: the google-cloud-storage Python library is not installed")
    if timeout is None or timeout <= 0 or retry_deadline is None or retry_deadline < 0:
        raise ConfigError("Failed to connect to GCS: timeout must be > 0 and retry_deadline >= 0")
    if endpoint:
        if not re.match(r"^https?://[^/]+", endpoint):
            raise ConfigError("Failed to connect to GCS endpoint %r: expected http(s)://host:port" % endpoint)
        # An emulator: no credentials, any project id.
        client = storage.Client(
            project=project or EMULATOR_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint.rstrip("/")},
        )
        return GCSClient(client, endpoint.rstrip("/"), timeout, retry_deadline)
    if credentials_file:
        check_key_file(credentials_file, "GCS credentials file")
        try:
            creds = service_account.Credentials.from_service_account_file(credentials_file, scopes=SCOPES)
        except (ValueError, KeyError, OSError) as exc:
            raise ConfigError(
                "Failed to load GCS credentials from %s: %s; expected a service-account JSON key"
                % (credentials_file, exc)
            ) from exc
        project = project or creds.project_id
    else:
        try:
            creds, adc_project = google.auth.default(scopes=SCOPES)
        except auth_exc.DefaultCredentialsError as exc:
            raise ConfigError(
                "Failed to find Google credentials: no credentials_file given and no application default credentials "
                "(%s). Set credentials_file, GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default "
                "login`, or run on a host with a service account attached" % exc
            ) from exc
        project = project or adc_project
    return GCSClient(storage.Client(project=project, credentials=creds), None, timeout, retry_deadline)


def connect_params(params):
    """``connect`` from a module's parameters (the GCS_AUTH_SPEC options)."""
    return connect(**{key: params.get(key) for key in GCS_AUTH_SPEC})


# -- errors ----------------------------------------------------------------------------


def _reason(exc, client, bucket):
    """Why a GCS call failed, in words that say what to check."""
    if isinstance(exc, gexc.RetryError):
        cause = exc.cause if exc.cause is not None else exc
        return "gave up after retrying for %.0fs: %s" % (client.retry_deadline, _reason(cause, client, bucket))
    if isinstance(exc, auth_exc.TransportError) and exc.args and isinstance(exc.args[0], Exception):
        return _reason(exc.args[0], client, bucket)
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized, auth_exc.RefreshError)):
        return (
            "permission denied (%s): check the credentials (credentials_file or application default credentials) and "
            "that their service account has roles/storage.objectAdmin on bucket %s" % (_short(exc), bucket)
        )
    if isinstance(exc, gexc.NotFound):
        return "not found (HTTP 404): check that bucket %s exists (bucket name, region, project)" % bucket
    if isinstance(exc, gexc.PreconditionFailed):
        return "the object changed while this run worked on it (HTTP 412): another writer is active; re-run later"
    if isinstance(exc, DataCorruption):
        return "checksum mismatch in transit (%s); nothing was published, re-run the upload" % _short(exc)
    transport = type(exc).__module__.split(".")[0] in ("requests", "urllib3")
    if transport or isinstance(exc, (ConnectionError, TimeoutError)):
        return "cannot reach the GCS endpoint %s (%s): check that it is up and reachable from this host" % (
            client.endpoint,
            _short(exc),
        )
    if isinstance(exc, gexc.GoogleAPICallError):
        return "HTTP %s: %s" % (exc.code, _short(exc))
    return "%s: %s" % (type(exc).__name__, _short(exc))


def _short(exc):
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def _error(cls, verb, url, exc, client, bucket, **kwargs):
    return cls("Failed to %s %s: %s" % (verb, url, _reason(exc, client, bucket)), **kwargs)


# -- small object operations -------------------------------------------------------------


def _get(client, bucket, name, generation=None):
    """The object's metadata, or None if there is no such object."""
    try:
        return client.bucket(bucket).get_blob(name, generation=generation, timeout=client.timeout, retry=client.retry)
    except _GCS_ERRORS as exc:
        raise _error(DownloadError, "read", gs_url(bucket, name), exc, client, bucket) from exc


def _same(blob, size, crc32c):
    return blob is not None and blob.size == size and blob.crc32c == crc32c


def _delete(client, blob, what="delete"):
    """Delete exactly the generation we inspected (a newer one is someone else's)."""
    try:
        blob.delete(if_generation_match=blob.generation, timeout=client.timeout, retry=client.retry)
    except gexc.NotFound:
        pass
    except _GCS_ERRORS as exc:
        raise _error(UploadError, what, gs_url(blob.bucket.name, blob.name), exc, client, blob.bucket.name) from exc


def _upload_small(client, bucket, name, data, if_generation_match, content_type, metadata=None, storage_class=None):
    """One multipart request with a precondition: all or nothing, on GCS and the emulator."""
    crc = _crc32c_b64(data)
    blob = client.bucket(bucket).blob(name)
    if metadata:
        blob.metadata = metadata
    if storage_class:
        blob.storage_class = storage_class
    url = gs_url(bucket, name)
    try:
        blob.upload_from_string(
            data,
            content_type=content_type,
            if_generation_match=if_generation_match,
            checksum="crc32c",
            timeout=client.timeout,
            retry=client.retry,
        )
    except gexc.PreconditionFailed as exc:
        # A retried request whose first attempt landed finds its own object: that is success.
        current = _get(client, bucket, name)
        if not _same(current, len(data), crc):
            raise UploadError(
                "Failed to upload %s: an object appeared at that name while this run was writing it (HTTP 412); "
                "another writer is active. Nothing was overwritten" % url
            ) from exc
        blob = current
    except _GCS_ERRORS as exc:
        raise _error(UploadError, "upload", url, exc, client, bucket) from exc
    landed = _get(client, bucket, name)
    if not _same(landed, len(data), crc):
        raise IntegrityError(
            "Failed to upload %s: the stored object (size %s, crc32c %s) differs from what was sent (size %d, "
            "crc32c %s); re-run the upload"
            % (url, getattr(landed, "size", None), getattr(landed, "crc32c", None), len(data), crc)
        )
    return landed


def _crc32c_b64(data):
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def write_record(client, bucket, name, data, if_generation_match=0, content_type="application/json"):
    """Store a small record (e.g. a verification result) without ever replacing one.

    Name it with ``verify_record_name`` so every run writes a new object; the default
    precondition refuses to overwrite an existing one. Returns ``{url, generation, crc32c}``.
    """
    if isinstance(data, str):
        data = data.encode()
    blob = _upload_small(client, bucket, name, data, if_generation_match, content_type)
    return {"url": gs_url(bucket, name), "generation": blob.generation, "crc32c": blob.crc32c}


def _read_small(client, bucket, name, what):
    try:
        return client.bucket(bucket).blob(name).download_as_bytes(timeout=client.timeout, retry=client.retry)
    except gexc.NotFound as exc:
        raise VerifyError(
            "Failed to read %s %s: it does not exist; an artifact without a manifest is not a backup"
            % (what, gs_url(bucket, name))
        ) from exc
    except _GCS_ERRORS as exc:
        raise _error(DownloadError, "read %s" % what, gs_url(bucket, name), exc, client, bucket) from exc


def read_manifest(client, bucket, artifact_name):
    """The validated manifest of ``gs://bucket/<artifact_name>`` (an object name, prefix included)."""
    name = _manifest.manifest_name(artifact_name)
    text = _read_small(client, bucket, name, "manifest").decode("utf-8", "replace")
    doc = _manifest.loads(text, gs_url(bucket, name))
    if doc["artifact"]["name"] != os.path.basename(artifact_name):
        raise VerifyError(
            "Failed to read manifest %s: it describes artifact %s, not %s; the object was renamed or copied by hand"
            % (gs_url(bucket, name), doc["artifact"]["name"], os.path.basename(artifact_name))
        )
    return doc


# -- streaming download -----------------------------------------------------------------


def download_chunks(client, bucket, name, generation=None, chunk_size=DOWNLOAD_CHUNK_SIZE):
    """Yield the object's bytes in ranged reads of ``chunk_size`` (bounded memory).

    The generation is pinned at the start, so a concurrent overwrite cannot splice two
    objects together. Each ranged read is retried on transient errors, which resumes at the
    current offset. At the end the CRC32C of what was yielded is checked against the
    object's (IntegrityError); transport failures raise DownloadError.
    """
    url = gs_url(bucket, name)
    blob = _get(client, bucket, name, generation)
    if blob is None:
        raise DownloadError(
            "Failed to download %s: no such object%s" % (url, " at generation %s" % generation if generation else "")
        )
    pinned = client.bucket(bucket).blob(name, generation=blob.generation)
    crc = google_crc32c.Checksum()
    offset = 0
    while offset < blob.size:
        end = min(offset + chunk_size, blob.size) - 1
        try:
            data = pinned.download_as_bytes(
                start=offset, end=end, checksum=None, timeout=client.timeout, retry=client.retry
            )
        except gexc.NotFound as exc:
            raise DownloadError(
                "Failed to download %s: generation %s disappeared at byte %d (deleted or replaced meanwhile)"
                % (url, blob.generation, offset)
            ) from exc
        except _GCS_ERRORS as exc:
            raise _error(
                DownloadError, "download", url, exc, client, bucket, partial={"offset": offset, "size": blob.size}
            ) from exc
        if not data:
            raise DownloadError(
                "Failed to download %s: the server returned no data at byte %d of %d" % (url, offset, blob.size)
            )
        crc.update(data)
        offset += len(data)
        yield data
    if blob.crc32c:
        got = base64.b64encode(crc.digest()).decode()
        if got != blob.crc32c:
            raise IntegrityError(
                "Failed to download %s: CRC32C of the received bytes %s differs from the object's %s"
                % (url, got, blob.crc32c)
            )


# -- upload ------------------------------------------------------------------------------


def _local_backup(src, digests=None):
    """The artifact and its manifest on local disk, checked against each other.

    ``digests`` (size, sha256, crc32c) are the file's, hashed on disk moments ago by the
    backup that wrote it; otherwise the file is hashed here.
    """
    manifest_path = _manifest.manifest_name(src)
    doc = _manifest.read(manifest_path)
    name = os.path.basename(src)
    if doc["artifact"]["name"] != name:
        raise ConfigError("Failed to upload %s: its manifest describes %s" % (src, doc["artifact"]["name"]))
    if digests is None:
        try:
            digests = hash_file(src)
        except OSError as exc:
            raise ConfigError("Failed to upload %s: cannot read it (%s)" % (src, exc)) from exc
    art = doc["artifact"]
    if digests["size"] != art["size"] or digests["sha256"] != art["sha256"]:
        raise IntegrityError(
            "Failed to upload %s: it does not match its manifest (size %d, sha256 %s; manifest: size %d, sha256 %s); "
            "the local copy is damaged or was replaced, take a new backup"
            % (src, digests["size"], digests["sha256"], art["size"], art["sha256"])
        )
    if art.get("crc32c") and art["crc32c"] != digests["crc32c"]:
        raise IntegrityError(
            "Failed to upload %s: CRC32C %s differs from its manifest's %s" % (src, digests["crc32c"], art["crc32c"])
        )
    with open(manifest_path, "rb") as handle:
        manifest_bytes = handle.read()
    return {
        "path": src,
        "name": name,
        "doc": doc,
        "size": digests["size"],
        "crc32c": digests["crc32c"],
        "sha256": digests["sha256"],
        "manifest_bytes": manifest_bytes,
        "manifest_size": len(manifest_bytes),
        "manifest_crc32c": _crc32c_b64(manifest_bytes),
        "content_type": art.get("content_type") or "application/octet-stream",
    }


def _data_metadata(local):
    doc = local["doc"]
    return {
        "backup_id": doc["backup_id"],
        "sha256": local["sha256"],
        "layers": ",".join(doc["artifact"].get("layers") or []),
        "kind": doc.get("kind", ""),
    }


def _plan_bucket(client, entry, prefix, local, overwrite):
    """What this run would do in one bucket: inspect both objects, decide, write nothing."""
    bucket = entry["name"]
    data_name = prefix + local["name"]
    manifest_name = _manifest.manifest_name(data_name)
    plan = {
        "bucket": bucket,
        "region": entry.get("region"),
        "prefix": prefix,
        "url": gs_url(bucket, data_name),
        "manifest_url": gs_url(bucket, manifest_name),
        "data_name": data_name,
        "manifest_name": manifest_name,
        "crc32c": local["crc32c"],
        "size": local["size"],
        "generation": None,
        "verified": False,
        "changed": False,
        "action": "none",
        "reason": None,
        "error": None,
    }
    try:
        # One listing finds both objects (the manifest's name starts with the artifact's) and,
        # unlike a metadata GET, tells a missing bucket (404) from a missing object.
        found = {
            blob.name: blob
            for blob in client.storage.list_blobs(bucket, prefix=data_name, timeout=client.timeout, retry=client.retry)
        }
    except _GCS_ERRORS as exc:
        plan.update(action="error", error=str(_error(UploadError, "upload to", plan["url"], exc, client, bucket)))
        return plan
    data, manifest = found.get(data_name), found.get(manifest_name)
    data_same = _same(data, local["size"], local["crc32c"])
    manifest_same = _same(manifest, local["manifest_size"], local["manifest_crc32c"])
    different = []
    if data is not None and not data_same:
        different.append(
            "%s (size %s, crc32c %s; this artifact: size %d, crc32c %s)"
            % (plan["url"], data.size, data.crc32c, local["size"], local["crc32c"])
        )
    if manifest is not None and not manifest_same:
        different.append("%s (a different manifest)" % plan["manifest_url"])
    plan["_data"], plan["_manifest"] = data, manifest
    steps = decide(_state(data, data_same), _state(manifest, manifest_same), overwrite)
    plan.update(steps)
    plan["changed"] = steps["action"] not in ("none", "refuse")
    if steps["action"] == "refuse":
        plan["reason"] = "a different object already exists at " + "; ".join(different)
    elif steps["action"] == "none":
        plan.update(verified=True, generation=data.generation)
    return plan


def _state(blob, same):
    return "absent" if blob is None else ("same" if same else "different")


def decide(data, manifest, overwrite):
    """The steps for one bucket from the state (absent/same/different) of the data object and
    the manifest at their final names. Whenever data is written and a manifest exists, the
    manifest is removed first and written back last: no manifest ever describes an object that
    is not (yet) its verified data."""
    if overwrite != "different" and "different" in (data, manifest):
        action = "refuse"
    elif data == manifest == "same":
        action = "none"
    elif "different" in (data, manifest):
        action = "replace"
    else:
        action = "upload" if data == "absent" else "manifest"
    if action in ("none", "refuse"):
        return {"action": action, "write_data": False, "delete_manifest": False, "write_manifest": False}
    delete_manifest = manifest == "different" or (manifest == "same" and data != "same")
    return {
        "action": action,
        "write_data": data != "same",
        "delete_manifest": delete_manifest,
        "write_manifest": delete_manifest or manifest == "absent",
    }


def _public(plan):
    return {
        k: v
        for k, v in plan.items()
        if not k.startswith("_")
        and k not in ("data_name", "manifest_name", "write_data", "write_manifest", "delete_manifest", "prefix")
    }


def _staging_name(prefix, name):
    return "%s%s%s.%s" % (prefix, STAGING_DIR, name, secrets.token_hex(8))


def _stage(client, bucket, prefix, local, chunk_size, storage_class):
    """Resumable upload to a unique staging name; returns the staging object after verifying it."""
    staging_name = _staging_name(prefix, local["name"])
    blob = client.bucket(bucket).blob(staging_name, chunk_size=chunk_size)
    blob.metadata = _data_metadata(local)
    if storage_class:
        blob.storage_class = storage_class
    url = gs_url(bucket, staging_name)
    try:
        # crc32c_checksum_value lets GCS reject a corrupted upload server-side; checksum="crc32c"
        # makes the client compare too (and delete the staging object on a mismatch).
        blob.upload_from_filename(
            local["path"],
            content_type=local["content_type"],
            if_generation_match=0,
            checksum="crc32c",
            crc32c_checksum_value=local["crc32c"],
            timeout=client.timeout,
            retry=client.retry,
        )
    except _GCS_ERRORS as exc:
        _cleanup_staging(client, bucket, staging_name)
        raise _error(
            UploadError,
            "upload %s to" % local["name"],
            url,
            exc,
            client,
            bucket,
            hint="Nothing was published; a staging object under %s may remain and is ignored by listings"
            % gs_url(bucket, prefix + STAGING_DIR),
        ) from exc
    staged = _get(client, bucket, staging_name)
    if not _same(staged, local["size"], local["crc32c"]):
        # The emulator finalizes a truncated upload when the client asks for its status.
        _cleanup_staging(client, bucket, staging_name)
        raise IntegrityError(
            "Failed to upload %s to %s: the staging object (size %s, crc32c %s) differs from the local file "
            "(size %d, crc32c %s); nothing was published, re-run the upload"
            % (
                local["name"],
                url,
                getattr(staged, "size", None),
                getattr(staged, "crc32c", None),
                local["size"],
                local["crc32c"],
            )
        )
    return staged


def _cleanup_staging(client, bucket, staging_name):
    """Best effort, one attempt each: a staging object left behind is harmless (listings
    ignore it), and after a failure the server is often the thing that is down."""
    try:
        blob = client.bucket(bucket).get_blob(staging_name, timeout=client.timeout, retry=None)
        if blob is not None:
            blob.delete(if_generation_match=blob.generation, timeout=client.timeout, retry=None)
    except _GCS_ERRORS:
        pass


def _verified_or_removed(client, plan, local):
    """The object now at the final name, if it is exactly the local artifact (size, CRC32C,
    recorded SHA-256). Otherwise it is removed (it is the object this run just wrote) and no
    manifest will be written for it."""
    landed = _get(client, plan["bucket"], plan["data_name"])
    problems = []
    if landed is None:
        problems.append("it is missing")
    else:
        if landed.size != local["size"]:
            problems.append("size %s != %d" % (landed.size, local["size"]))
        if landed.crc32c != local["crc32c"]:
            problems.append("crc32c %s != %s" % (landed.crc32c, local["crc32c"]))
        if (landed.metadata or {}).get("sha256") != local["sha256"]:
            problems.append("metadata sha256 %s != %s" % ((landed.metadata or {}).get("sha256"), local["sha256"]))
    if problems:
        if landed is not None:
            _delete(client, landed, "remove the unverified object")
        raise IntegrityError(
            "Failed to publish %s: the published object does not match the local artifact (%s); it was removed and "
            "no manifest was written, re-run the upload" % (plan["url"], "; ".join(problems))
        )
    return landed


def _publish(client, plan, local, storage_class, write):
    """Create the final object server-side with ``write(dest, expected_generation)`` (a rewrite
    of the verified staging object, or a compose of verified parts), conditional on the
    generation that was inspected, then verify it."""
    bucket, name = plan["bucket"], plan["data_name"]
    expected = plan["_data"].generation if plan["_data"] is not None else 0
    # GCS enforces if_generation_match on rewrite and compose; the emulator ignores it, so look
    # first: this narrows the race there to the instant between this check and the write.
    current = _get(client, bucket, name)
    if (current.generation if current is not None else 0) != expected:
        raise UploadError(
            "Failed to publish %s: the object at that name changed while the data was uploading (generation %s, "
            "expected %s); another writer is active. Nothing was overwritten"
            % (plan["url"], getattr(current, "generation", None), expected or "none")
        )
    dest = client.bucket(bucket).blob(name)
    dest.metadata = _data_metadata(local)
    dest.content_type = local["content_type"]
    if storage_class:
        dest.storage_class = storage_class
    try:
        write(dest, expected)
    except gexc.PreconditionFailed as exc:
        # A retried request whose first attempt landed finds our own object: that is success.
        current = _get(client, bucket, name)
        mine = (
            _same(current, local["size"], local["crc32c"]) and (current.metadata or {}).get("sha256") == local["sha256"]
        )
        if not mine:
            raise UploadError(
                "Failed to publish %s: an object appeared or changed at that name during the upload (HTTP "
                "412); another writer is active. Nothing was overwritten" % plan["url"]
            ) from exc
    except _GCS_ERRORS as exc:
        raise _error(UploadError, "publish", plan["url"], exc, client, bucket) from exc
    return _verified_or_removed(client, plan, local)


def _rewrite_from(client, staged):
    """``_publish`` writer: server-side rewrite of the staging object (on GCS, within a bucket,
    a metadata operation)."""

    def write(dest, expected):
        token = None
        while True:
            token, _done, _total = dest.rewrite(
                staged,
                token=token,
                if_generation_match=expected,
                if_source_generation_match=staged.generation,
                timeout=client.timeout,
                retry=client.retry,
            )
            if token is None:
                return

    return write


# GCS composes at most 32 objects in one request.
COMPOSE_MAX = 32


def _compose_from(client, parts, folder):
    """``_publish`` writer: compose the parts (exactly the generations uploaded and checked), in
    rounds of COMPOSE_MAX through intermediate objects in ``folder`` when there are more."""

    def write(dest, expected):
        sources, level = list(parts), 0
        while len(sources) > COMPOSE_MAX:
            level += 1
            merged = []
            for start in range(0, len(sources), COMPOSE_MAX):
                step = dest.bucket.blob("%scompose-%d-%05d" % (folder, level, start // COMPOSE_MAX))
                step.compose(
                    sources[start : start + COMPOSE_MAX],
                    if_generation_match=0,
                    timeout=client.timeout,
                    retry=client.retry,
                )
                merged.append(step)
            sources = merged
        dest.compose(sources, if_generation_match=expected, timeout=client.timeout, retry=client.retry)

    return write


class Prestage:
    """Stream an artifact to every bucket as parts while the backup is still writing it.

    A pipeline sink placed after the FileSink: one thread per bucket reads the local copy
    behind the writer (through the file, so a slow upload never holds the backup up and no
    second copy of the stream is kept in memory) and uploads each ``part_size`` piece as its
    own object in a unique staging folder, checked by CRC32C. Nothing is published here.
    Once the backup is complete, ``upload_backup(prestaged=...)`` composes the parts into the
    final object server-side, which is all-or-nothing, verifies it and writes the manifest
    last; a bucket whose stream failed is uploaded again from the local copy. If the backup
    fails, the streams stop and every part is removed. Many parts instead of one growing
    resumable upload also suit the emulator, whose cost per upload grows with the object.
    """

    POLL_S = 0.05

    def __init__(self, client, buckets, prefix="database/", part_size=DEFAULT_CHUNK_SIZE, storage_class=None):
        self.client = client
        self.prefix = normalize_prefix(prefix)
        self.part_size = part_size
        self.storage_class = storage_class
        self.buckets = [entry["name"] for entry in buckets]
        self._streams = {}
        self._finished = threading.Event()
        self._complete = False
        self._path = self._name = self._digests = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def follow(self, path, name):
        """Read ``path`` (the sink's partial file) while it grows; ``name`` is the artifact's."""
        self._path, self._name = path, name

    # The sink protocol: Pipeline calls open() after the FileSink created the file,
    # write() for every chunk, then commit() or abort().
    def open(self):
        for bucket in self.buckets:
            stream = {"folder": _staging_name(self.prefix, self._name) + "/", "parts": [], "error": None, "sent": 0}
            stream["handle"] = open(self._path, "rb")  # noqa: SIM115 - closed by the thread
            stream["thread"] = threading.Thread(
                target=self._send, args=(bucket, stream), name="prestage-" + bucket, daemon=True
            )
            self._streams[bucket] = stream
            stream["thread"].start()

    def write(self, chunk):
        pass

    def commit(self):
        self._complete = True
        self._finished.set()

    def abort(self):
        self._finished.set()
        self._join()

    def _pieces(self, handle):
        """The file in ``part_size`` pieces as the writer produces them; stops early if the backup fails."""
        pending, size = [], 0
        while True:
            finished = self._finished.is_set()
            if finished and not self._complete:
                return
            data = handle.read(self.part_size - size)
            if data:
                pending.append(data)
                size += len(data)
            if size == self.part_size or (finished and not data and size):
                # One piece in memory at a time: what was read is dropped before it is sent.
                piece = pending[0] if len(pending) == 1 else b"".join(pending)
                pending, size = [], 0
                yield piece
            elif finished and not data:
                return  # complete, and everything it wrote has been sent
            elif not data:
                self._finished.wait(self.POLL_S)

    def _send(self, bucket, stream):
        try:
            with stream["handle"] as handle:
                for number, piece in enumerate(self._pieces(handle)):
                    if number == 0 and self._complete and os.fstat(handle.fileno()).st_size <= SMALL_OBJECT_MAX:
                        return  # small: upload_backup sends it whole, in one conditional request
                    blob = self.client.bucket(bucket).blob("%spart-%05d" % (stream["folder"], number))
                    if self.storage_class:
                        blob.storage_class = self.storage_class
                    # checksum="crc32c": the client compares what landed with what it sent.
                    blob.upload_from_string(
                        piece,
                        content_type="application/octet-stream",
                        if_generation_match=0,
                        checksum="crc32c",
                        timeout=self.client.timeout,
                        retry=self.client.retry,
                    )
                    stream["parts"].append(blob)
                    stream["sent"] += len(piece)
        except _GCS_ERRORS as exc:
            stream["error"] = exc

    def _join(self):
        """Wait for the streams to stop; a stream stuck on an unresponsive server is abandoned
        after one request timeout (its thread is a daemon) rather than holding the error up."""
        deadline = time.monotonic() + self.client.timeout
        for stream in self._streams.values():
            stream["thread"].join(max(0.0, deadline - time.monotonic()))

    @property
    def digests(self):
        """The local copy's size and hashes, once the backup has checked them on disk."""
        return self._digests

    def landed(self, result):
        """The backup finished: record the size and hashes it verified on disk."""
        self._digests = {key: result[key] for key in ("size", "sha256", "crc32c")}

    def take(self, bucket, local, progress):
        """``(parts, folder)`` for ``bucket`` once every byte of the artifact is there, or None:
        upload it from the file instead."""
        stream = self._streams.get(bucket)
        if stream is None or not self._complete:
            return None
        stream["thread"].join()
        if stream["error"] is not None:
            progress(
                "%s: streaming during the backup failed (%s); uploading from the local copy"
                % (bucket, _short(stream["error"]))
            )
            return None
        if stream["sent"] != local["size"] or not stream["parts"]:
            progress(
                "%s: %d of %d bytes were streamed; uploading from the local copy"
                % (bucket, stream["sent"], local["size"])
            )
            return None
        progress(
            "%s: %d bytes were streamed during the backup in %d parts" % (bucket, stream["sent"], len(stream["parts"]))
        )
        return stream["parts"], stream["folder"]

    def close(self):
        """Cancel every stream not taken and remove every part and intermediate object."""
        self._complete = False
        self._finished.set()
        self._join()
        for bucket, stream in self._streams.items():
            _cleanup_folder(self.client, bucket, stream["folder"])


def _cleanup_folder(client, bucket, folder):
    """Best effort, like ``_cleanup_staging``: remove every object under ``folder``."""
    try:
        for blob in client.storage.list_blobs(bucket, prefix=folder, timeout=client.timeout, retry=None):
            blob.delete(if_generation_match=blob.generation, timeout=client.timeout, retry=None)
    except _GCS_ERRORS:
        pass


def _apply_bucket(client, plan, local, storage_class, chunk_size, progress, prestaged=None):
    bucket = plan["bucket"]
    started = time.monotonic()
    if plan["delete_manifest"]:
        _delete(client, plan["_manifest"], "remove the old manifest")
    if plan["write_data"]:
        if local["size"] <= SMALL_OBJECT_MAX:
            with open(local["path"], "rb") as handle:
                content = handle.read()
            expected = plan["_data"].generation if plan["_data"] is not None else 0
            _upload_small(
                client,
                bucket,
                plan["data_name"],
                content,
                expected,
                local["content_type"],
                _data_metadata(local),
                storage_class,
            )
            landed = _verified_or_removed(client, plan, local)
        else:
            taken = prestaged.take(bucket, local, progress) if prestaged is not None else None
            if taken is not None:
                landed = _publish(client, plan, local, storage_class, _compose_from(client, *taken))
            else:
                progress("uploading %s (%d bytes) to staging in %s" % (local["name"], local["size"], bucket))
                staged = _stage(client, bucket, plan["prefix"], local, chunk_size, storage_class)
                try:
                    landed = _publish(client, plan, local, storage_class, _rewrite_from(client, staged))
                finally:
                    _cleanup_staging(client, bucket, staged.name)
    else:
        landed = plan["_data"]
    if plan["write_manifest"]:
        _upload_small(
            client,
            bucket,
            plan["manifest_name"],
            local["manifest_bytes"],
            0,
            "application/json",
            {"backup_id": local["doc"]["backup_id"]},
            storage_class,
        )
    elapsed = time.monotonic() - started
    plan.update(
        generation=landed.generation, verified=True, storage_class=landed.storage_class, duration_s=round(elapsed, 3)
    )
    if plan["write_data"]:
        plan["throughput_mb_s"] = round(local["size"] / 1e6 / elapsed, 1) if elapsed > 0 else None
    if storage_class and landed.storage_class != storage_class:
        plan["warning"] = (
            "%s has storage class %s, not the requested %s (the emulator ignores it on resumable "
            "uploads and rewrites; on GCS check the bucket's policy)"
            % (plan["url"], landed.storage_class, storage_class)
        )
    progress("%s: %s verified (generation %s)" % (bucket, plan["url"], landed.generation))


def _check_upload_options(what, buckets, overwrite, chunk_size):
    if overwrite not in OVERWRITE_MODES:
        raise ConfigError("Failed to upload %s: overwrite must be one of %s" % (what, ", ".join(OVERWRITE_MODES)))
    if not buckets:
        raise ConfigError("Failed to upload %s: no buckets given" % what)
    if chunk_size <= 0 or chunk_size % (256 * 1024):
        raise ConfigError("Failed to upload %s: chunk size must be a positive multiple of 256 KiB" % what)


def backup_and_upload(
    backup,
    client,
    buckets,
    prefix="database/",
    storage_class=None,
    overwrite="never",
    chunk_size=DEFAULT_CHUNK_SIZE,
    progress=None,
):
    """Take a backup while streaming it to ``buckets``, then publish it there.

    ``backup(followers)`` is a backup function with its arguments bound (``_dump.dump``)
    that hands ``followers`` to the pipeline writing its local copy. The upload overlaps the
    backup instead of following it; publishing is exactly ``upload_backup``'s. Returns the
    backup's result with ``uploads``. If the backup succeeds and an upload fails, the
    UploadError names the complete local copy, which ``upload_backup`` can send again.
    """
    _check_upload_options("the backup", buckets, overwrite, chunk_size)
    with Prestage(client, buckets, prefix, part_size=chunk_size, storage_class=storage_class) as prestage:
        result = backup([prestage])
        prestage.landed(result)
        try:
            uploaded = upload_backup(
                client,
                result["path"],
                buckets,
                prefix,
                storage_class,
                overwrite,
                chunk_size=chunk_size,
                progress=progress,
                prestaged=prestage,
            )
        except UploadError as exc:
            raise UploadError(
                "Backup %s is complete at %s, but its upload failed: %s"
                % (result["backup_id"], result["path"], exc.message),
                partial=dict(result, uploads=exc.partial.get("uploads", [])),
                hint=exc.hint,
            ) from exc
    return dict(result, uploads=uploaded["uploads"], warnings=uploaded["warnings"])


def upload_backup(
    client,
    src,
    buckets,
    prefix="database/",
    storage_class=None,
    overwrite="never",
    check_mode=False,
    chunk_size=DEFAULT_CHUNK_SIZE,
    progress=None,
    prestaged=None,
):
    """Upload ``src`` and its manifest to every bucket: data verified first, manifest last.

    ``prestaged`` is the Prestage that streamed ``src`` to the buckets while it was written:
    what it staged is published instead of uploaded again.

    Every bucket is inspected before anything is written. A different object at a final
    name refuses the whole run (``overwrite=never``) before any bucket is touched. An
    unreachable bucket does not stop the others; the run fails at the end naming it, with
    the buckets that did succeed in the error's partial result.
    """
    progress = progress or (lambda message: None)
    _check_upload_options(src, buckets, overwrite, chunk_size)
    prefix = normalize_prefix(prefix)
    local = _local_backup(src, prestaged.digests if prestaged is not None else None)
    plans = []
    for entry in buckets:
        plans.append(_plan_bucket(client, entry, prefix, local, overwrite))
    result = {
        "backup_id": local["doc"]["backup_id"],
        "artifact": local["name"],
        "size": local["size"],
        "crc32c": local["crc32c"],
        "sha256": local["sha256"],
    }
    refused = [p for p in plans if p["action"] == "refuse"]
    if refused:
        result["uploads"] = [_public(p) for p in plans]
        raise UploadError(
            "Failed to upload %s: %s. Nothing was written to any bucket"
            % (local["name"], "; ".join(p["reason"] for p in refused)),
            partial=result,
            hint="If that object is a broken or stale copy of this backup, re-run with overwrite=different to replace "
            "it; if it is another backup, its name collides: backup ids must be unique",
        )
    if not check_mode:
        for plan in plans:
            if plan["action"] in ("error", "none"):
                continue
            try:
                _apply_bucket(client, plan, local, storage_class, chunk_size, progress, prestaged)
            except (UploadError, DownloadError, IntegrityError) as exc:
                plan.update(error=str(exc), changed=True, verified=False)
    result["uploads"] = [_public(p) for p in plans]
    result["changed"] = any(p["changed"] for p in plans)
    result["warnings"] = [p.pop("warning") for p in result["uploads"] if p.get("warning")]
    failed = [p for p in plans if p["error"]]
    if failed:
        held = [p["bucket"] for p in plans if p["verified"]]
        raise UploadError(
            "Failed to upload %s to %d of %d buckets: %s"
            % (local["name"], len(failed), len(plans), " | ".join(p["error"] for p in failed)),
            partial=result,
            hint="%sRe-run once the failing buckets are reachable; verified copies are not sent again"
            % ("Verified copies are in %s. " % ", ".join(held) if held else "No bucket holds this backup yet. "),
        )
    return result


# -- listing and selection ----------------------------------------------------------------


def _read_verified(client, bucket, records):
    """``(verified, verified_at)`` from the successful verification records among ``records``."""
    times = []
    for blob in records:
        try:
            doc = json.loads(_read_small(client, bucket, blob.name, "verification record"))
        except (VerifyError, DownloadError, ValueError):
            continue  # an unreadable record proves nothing either way
        if isinstance(doc, dict) and doc.get("ok") is True:
            when = doc.get("verified_at") or doc.get("finished_at")
            times.append(str(when) if when else _manifest.isoformat(blob.updated or _manifest.utcnow()))
    return bool(times), (max(times) if times else None)


def _list_bucket(client, entry, prefix, database, now):
    bucket = entry["name"]
    blobs = {}
    for blob in client.storage.list_blobs(bucket, prefix=prefix, timeout=client.timeout, retry=client.retry):
        blobs[blob.name] = blob
    backups, problems = [], []
    for name in sorted(blobs):
        if not name.endswith(_manifest.MANIFEST_SUFFIX) or name[len(prefix) :].startswith(STAGING_DIR):
            continue
        artifact = _manifest.artifact_from_manifest_name(name)
        url = gs_url(bucket, artifact)
        problem = {"bucket": bucket, "region": entry.get("region"), "url": url}
        try:
            doc = read_manifest(client, bucket, artifact)
        except VerifyError as exc:
            problems.append(dict(problem, msg=str(exc)))
            continue
        data = blobs.get(artifact)
        if not _same(data, doc["artifact"]["size"], doc["artifact"]["crc32c"]):
            state = "missing" if data is None else "different (size %s, crc32c %s)" % (data.size, data.crc32c)
            problems.append(
                dict(
                    problem,
                    msg="Failed to use backup %s: its manifest exists but the data object is %s; it is not "
                    "restorable from this bucket" % (url, state),
                )
            )
            continue
        source = doc.get("source") or {}
        if database and doc.get("database") != database:
            continue
        record_re = _record_re(artifact)
        verified, verified_at = _read_verified(client, bucket, [b for n, b in blobs.items() if record_re.match(n)])
        data_ts = _manifest.parse_time(source.get("data_timestamp") or doc["started_at"])
        backups.append(
            {
                "backup_id": doc["backup_id"],
                "database": doc.get("database"),
                "bucket": bucket,
                "region": entry.get("region"),
                "url": url,
                "manifest_url": gs_url(bucket, name),
                "data_timestamp": _manifest.isoformat(data_ts),
                "age_s": round(_manifest.age_seconds(doc, now), 1),
                "size": doc["artifact"]["size"],
                "sha256": doc["artifact"]["sha256"],
                "crc32c": doc["artifact"].get("crc32c"),
                "generation": data.generation,
                "tier": doc.get("tier"),
                "verified": verified,
                "verified_at": verified_at,
            }
        )
    return backups, problems


def select_backups(backups, bucket_order, select="latest", before=None, backup_id=None):
    """Pick the backup to restore and the ordered list of URLs to try.

    ``candidates``: the selected backup in every bucket that has it (in ``bucket_order``,
    primary first), then each older backup the same way. An explicitly named ``backup_id``
    is never substituted by another backup, so its candidates are only its own copies.
    ``all`` selects nothing. Returns ``(selected_entry_or_None, candidate_urls)``.
    """
    if select not in SELECT_MODES:
        raise ConfigError("Failed to select a backup: select must be one of %s" % ", ".join(SELECT_MODES))
    if select == "all":
        return None, []
    rank = {name: index for index, name in enumerate(bucket_order)}
    ordered = sorted(backups, key=lambda b: (b["data_timestamp"], b["backup_id"]), reverse=True)
    if select == "latest_before":
        if not before:
            raise ConfigError("Failed to select a backup: select=latest_before needs before (a timestamp)")
        limit = _manifest.isoformat(_manifest.parse_time(before))
        ordered = [b for b in ordered if b["data_timestamp"] < limit]
    elif select == "backup_id":
        if not backup_id:
            raise ConfigError("Failed to select a backup: select=backup_id needs backup_id")
        ordered = [b for b in ordered if b["backup_id"] == backup_id]
    ids = []
    for entry in ordered:
        if entry["backup_id"] not in ids:
            ids.append(entry["backup_id"])
    candidates = []
    for bid in ids:
        copies = sorted((b for b in ordered if b["backup_id"] == bid), key=lambda b: rank.get(b["bucket"], len(rank)))
        candidates.extend(copies)
    return (candidates[0] if candidates else None), [c["url"] for c in candidates]


def list_backups(
    client, buckets, prefix="database/", database=None, select="latest", before=None, backup_id=None, now=None
):
    """Every backup (manifest + matching data object) in every bucket, newest first.

    Returns ``{backups, selected, candidates, errors}``. An unreachable or missing bucket
    goes into ``errors`` (with manifests whose data is missing or different); only when no
    bucket can be listed does this raise DownloadError.
    """
    if not buckets:
        raise ConfigError("Failed to list backups: no buckets given")
    prefix = normalize_prefix(prefix)
    now = now or _manifest.utcnow()
    backups, errors, failed = [], [], 0
    for entry in buckets:
        try:
            found, problems = _list_bucket(client, entry, prefix, database, now)
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError, DownloadError) as exc:
            failed += 1
            message = (
                str(exc)
                if isinstance(exc, DownloadError)
                else str(_error(DownloadError, "list", gs_url(entry["name"], prefix), exc, client, entry["name"]))
            )
            errors.append({"bucket": entry["name"], "region": entry.get("region"), "url": None, "msg": message})
            continue
        backups.extend(found)
        errors.extend(problems)
    if failed == len(buckets):
        raise DownloadError(
            "Failed to list backups in any bucket: %s" % " | ".join(e["msg"] for e in errors),
            partial={"errors": errors},
        )
    rank = {entry["name"]: index for index, entry in enumerate(buckets)}
    backups.sort(key=lambda b: (b["data_timestamp"], b["backup_id"], -rank[b["bucket"]]), reverse=True)
    selected, candidates = select_backups(backups, [entry["name"] for entry in buckets], select, before, backup_id)
    return {"backups": backups, "selected": selected, "candidates": candidates, "errors": errors}
