# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of every module that restores a database backup (a restore or a test restore)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  jobs:
    description:
      - C(pg_restore) sessions working at once. With more than one, the artifact is streamed once per session
        (never written to disk decrypted). The schema comes first, then the tables shared out by size, each session
        loading its tables and building their keys and indexes (every such pass checks the SHA-256), then foreign
        keys and the rest. Each extra session costs one more download and decryption of the artifact.
      - V(1) restores in one stream and one session. It is the default because on the 2-core machine the
        benchmarks run on, two sessions were not reliably faster (C(docs/benchmarks.md)), as the sessions, their
        decryption and the server share the same two cores. Raise it where the database server has cores to spare.
    type: int
    default: 1
"""
