# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception tree for the whole library.

Messages read "Failed to <verb> <object>: <reason>" and, where there is one, end with
what the operator should do next. ``partial`` carries whatever was already done (for
example the pre-restore snapshot that was taken before a restore failed), so a module
can report it in ``fail_json``.
"""

from __future__ import annotations


class BackupError(Exception):
    """Base class: anything this collection refuses or fails to do."""

    def __init__(self, message, partial=None, hint=None):
        self.message = message
        self.partial = dict(partial or {})
        self.hint = hint
        super().__init__(message if not hint else "%s. %s" % (message.rstrip("."), hint))


class ConfigError(BackupError):
    """Bad or unsafe input: refused before anything changes."""


class KeyFileError(ConfigError):
    """A key or passphrase file is missing, empty or readable by others."""


class DumpError(BackupError):
    pass


class EncryptError(BackupError):
    pass


class DecryptError(BackupError):
    pass


class UploadError(BackupError):
    pass


class DownloadError(BackupError):
    pass


class VerifyError(BackupError):
    pass


class IntegrityError(VerifyError):
    """Size or hash of an artifact does not match its manifest."""


class RestoreError(BackupError):
    pass


class ScaleError(BackupError):
    pass
