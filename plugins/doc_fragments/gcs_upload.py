# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a backup is written to its buckets, for every module that uploads one.

Paired with ``UPLOAD_SPEC`` in plugins/module_utils/_gcs.py: change both together.
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  prefix:
    description:
      - Folder in each bucket. V(database) and V(database/) are the same; V("") is the bucket root.
    type: str
    default: database/
  storage_class:
    description:
      - Storage class of the uploaded objects. Omit to use the bucket's default class.
      - The emulator ignores it for large artifacts; a warning says so when the stored class differs.
    type: str
    choices: [STANDARD, NEARLINE, COLDLINE, ARCHIVE]
  overwrite:
    description:
      - What to do when a B(different) object already exists at the artifact's or manifest's name.
      - V(never) refuses, and nothing is written to any bucket.
      - V(different) replaces it. The old manifest is removed first and the new one written last, so no manifest
        ever describes data that is not its own. Each write is conditional on the generation that was inspected.
      - An identical object is never sent again, whatever this option says.
    type: str
    choices: [never, different]
    default: never
  chunk_size_mb:
    description:
      - Size in MiB of the chunks of a resumable upload, or of the parts a backup is streamed in while it is written;
        one chunk or part per bucket is held in memory.
      - The emulator's cost per request grows with the object, so small chunks are slow there; on GCS any multiple
        of 256 KiB works.
    type: int
    default: 64
notes:
  - Needs C(storage.objects.create), C(storage.objects.get), C(storage.objects.list) and C(storage.objects.delete)
    (to remove its own staging objects and, with O(overwrite=different), the replaced ones), that is
    C(roles/storage.objectAdmin) on each bucket.
  - If the buckets have a retention policy or object holds, O(overwrite=different) fails for objects under
    retention; that is the point of a retention policy.
"""
