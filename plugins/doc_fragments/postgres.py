# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connection options; paired with POSTGRES_SPEC in module_utils/_pg.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  host:
    description:
      - Host name or IP address of the PostgreSQL server.
    type: str
    default: localhost
  port:
    description:
      - TCP port of the PostgreSQL server.
    type: int
    default: 5432
  user:
    description:
      - Role to connect as. Defaults to libpq's default (the OS user name).
    type: str
  password_file:
    description:
      - A libpq password file (C(hostname:port:database:username:password) lines) holding the
        password for O(user).
      - Passed to libpq and the client tools as C(PGPASSFILE); the password never appears on a
        command line or in the environment. Refused if it is readable by group or others.
    type: path
"""

    # For modules that create, rename or drop databases.
    MAINTENANCE = r"""
options:
  maintenance_db:
    description:
      - Database to connect to for creating, renaming and dropping databases.
    type: str
    default: postgres
"""
