# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by every module that talks to Google Cloud Storage.

Paired with ``GCS_AUTH_SPEC`` in plugins/module_utils/_gcs.py: change both together.
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoint:
    description:
      - URL of a GCS-compatible emulator such as fake-gcs-server, for example V(http://127.0.0.1:4443).
      - When set, requests are sent there without credentials and O(credentials_file) is ignored.
      - Omit it to use Google Cloud Storage itself.
    type: str
  credentials_file:
    description:
      - Path to a service-account JSON key with access to the buckets
        (C(roles/storage.objectAdmin) to upload, C(roles/storage.objectViewer) to read).
      - The file must be readable by its owner only (mode C(0600)); a key readable by group or others is refused.
      - Omit it to use application default credentials (E(GOOGLE_APPLICATION_CREDENTIALS),
        C(gcloud auth application-default login), or the service account attached to the host or pod).
    type: path
  project:
    description:
      - Google Cloud project for the client. Defaults to the project of the credentials.
      - Any value works with an emulator.
    type: str
  timeout:
    description:
      - Seconds to wait for each HTTP request to GCS.
    type: float
    default: 60
  retry_deadline:
    description:
      - Total seconds to keep retrying a request that failed transiently (HTTP 429 and 5xx, connection errors,
        timeouts), with exponential backoff. V(0) disables retries.
      - Writes are retried only because every write carries a generation precondition, which makes a repeated
        request harmless.
    type: float
    default: 300
requirements:
  - google-cloud-storage >= 2.10.0
  - google-crc32c >= 1.5.0
"""
