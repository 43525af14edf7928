# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one file in module_utils that imports Ansible.

``DRModule`` wraps ``AnsibleModule`` by composition: it checks optional Python
dependencies once (with ``missing_required_lib`` and a minimum version), registers secrets
as ``no_log_values``, gives the library a ``progress`` callback, and turns the library's
``BackupError`` into ``fail_json`` with the traceback and whatever partial result the
error carries. Modules stay glue: argument spec -> DRModule -> one library call -> exit.
"""

from __future__ import annotations

import os
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ._errors import BackupError

# Optional dependencies, declared once: name -> (import name, minimum version, pip name).
REQUIREMENTS = {
    "google-cloud-storage": ("google.cloud.storage", "2.10.0", "google-cloud-storage"),
    "google-crc32c": ("google_crc32c", "1.5.0", "google-crc32c"),
    "psycopg2": ("psycopg2", "2.8.0", "psycopg2-binary"),
    "kubernetes": ("kubernetes", "24.2.0", "kubernetes"),
    "yaml": ("yaml", "5.4", "PyYAML"),
}


def _version_tuple(text):
    parts = []
    for piece in str(text).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _passfile_passwords(path):
    if not path or not os.path.isfile(path) or not os.access(path, os.R_OK):
        return []
    found = []
    with open(path, errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                fields = line.replace("\\:", "\0").split(":")
                if len(fields) >= 5 and len(fields[4]) >= 4:
                    found.append(":".join(fields[4:]).replace("\0", ":"))
    return found


class DRModule:
    """Composition wrapper around AnsibleModule for diagnosticpro.dr modules."""

    def __init__(self, argument_spec, requires=(), secret_files=(), passfiles=(), supports_check_mode=True, **kwargs):
        self.module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=supports_check_mode, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.diff_mode = self.module._diff
        self._started = time.monotonic()
        self._progress_file = self.params.get("progress_file")
        for name in requires:
            self.require(name)
        # Secrets are read by the library from files; if a file's content ever reached a
        # result or message, Ansible masks it.
        for option in secret_files:
            path = self.params.get(option)
            if path and os.path.isfile(path) and os.access(path, os.R_OK):
                try:
                    with open(path) as handle:
                        value = handle.readline().strip()
                except (OSError, UnicodeDecodeError):
                    value = ""
                if len(value) >= 4:
                    self.module.no_log_values.add(value)
        for option in passfiles:  # libpq passfile: the password is the last field of each line
            for value in _passfile_passwords(self.params.get(option)):
                self.module.no_log_values.add(value)

    def require(self, name):
        """Fail the task unless the Python library ``name`` (a REQUIREMENTS key) is importable."""
        import_name, minimum, pip_name = REQUIREMENTS[name]
        try:
            mod = __import__(import_name, fromlist=["__version__"])
        except ImportError:
            self.module.fail_json(msg=missing_required_lib(pip_name), exception=traceback.format_exc())
            return
        version = getattr(mod, "__version__", None)
        if version and _version_tuple(version) < _version_tuple(minimum):
            self.module.fail_json(
                msg="%s >= %s is required on the host running this module, found %s" % (pip_name, minimum, version)
            )

    def progress(self, message):
        """Progress of long work: to the host's journal/syslog and, if set, to progress_file."""
        line = "[%7.1fs] %s" % (time.monotonic() - self._started, message)
        self.module.log(line)
        if self._progress_file:
            with open(self._progress_file, "a") as handle:
                handle.write(line + "\n")

    def warn(self, message):
        self.module.warn(message)

    def run(self, func):
        """Call ``func(self)``; exit with its result dict, or fail with a BackupError's message."""
        try:
            result = func(self)
        except BackupError as exc:
            extra = {k: v for k, v in exc.partial.items() if k not in ("msg", "exception", "failed")}
            self.module.fail_json(msg=str(exc), exception=traceback.format_exc(), **extra)
            return
        # The library reports warnings in its result; exit_json(warnings=...) is deprecated.
        for warning in result.pop("warnings", None) or []:
            self.warn(warning)
        result.setdefault("changed", False)
        self.module.exit_json(**result)
