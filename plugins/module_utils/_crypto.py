# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenPGP encryption through stock ``gpg``, so an operator can always decrypt by hand.

Two modes:

* symmetric: AES-256 from a passphrase file (the company's current practice). The
  passphrase reaches gpg through ``--passphrase-fd`` on an inherited descriptor of the key
  file itself: it is never on argv, in the environment, or copied to a temp file.
* public-key: ``recipients`` (fingerprints or user ids); backup hosts hold only public keys,
  the decryption key lives elsewhere.

Every gpg run gets a private, throw-away GNUPGHOME (unless the caller names a keyring), so
nothing is left behind in the runner's home and parallel runs do not share an agent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile

from ._errors import ConfigError, DecryptError, KeyFileError

GPG = "gpg"
CIPHER = "AES256"
S2K_COUNT = 65011712  # the largest count OpenPGP can encode
# Paired with doc_fragments/encryption.py (DOCUMENTATION and DECRYPTION).
ENCRYPTION_SPEC = {
    "passphrase_file": {"type": "path", "no_log": False},
    "recipients": {"type": "list", "elements": "str"},
    "gnupg_home": {"type": "path"},
    "public_key_files": {"type": "list", "elements": "path"},
}
ENCRYPTION_RULES = {
    "mutually_exclusive": [["passphrase_file", "recipients"]],
    "required_one_of": [["passphrase_file", "recipients"]],
}
DECRYPTION_SPEC = {
    "passphrase_file": {"type": "path", "no_log": False},
    "secret_key_file": {"type": "path", "no_log": False},
    "secret_key_passphrase_file": {"type": "path", "no_log": False},
    "gnupg_home": {"type": "path"},
}


def encryption_from_params(params, prefix=""):
    return Encryption(
        passphrase_file=params[prefix + "passphrase_file"],
        recipients=params[prefix + "recipients"],
        gnupg_home=params.get(prefix + "gnupg_home"),
        public_key_files=params.get(prefix + "public_key_files"),
    )


def decryption_from_params(params):
    return Decryption(
        passphrase_file=params["passphrase_file"],
        secret_key_file=params["secret_key_file"],
        secret_key_passphrase_file=params["secret_key_passphrase_file"],
        gnupg_home=params["gnupg_home"],
    )


_BASE = [GPG, "--batch", "--no-tty", "--quiet", "--no-greeting", "--no-permission-warning"]


def check_key_file(path, what="key file"):
    """Refuse a missing, empty, non-regular or group/world-accessible key file."""
    if not path:
        raise KeyFileError("Failed to use %s: no path given" % what)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise KeyFileError("Failed to use %s %s: it does not exist" % (what, path)) from exc
    except PermissionError as exc:
        raise KeyFileError("Failed to use %s %s: permission denied" % (what, path)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError("Failed to use %s %s: not a regular file" % (what, path))
    if st.st_mode & 0o077:
        raise KeyFileError(
            "Failed to use %s %s: it is accessible by group or others (mode %04o)" % (what, path, st.st_mode & 0o7777),
            hint="Run `chmod 600 %s` and rotate the key if it may have been read" % path,
        )
    if st.st_size == 0:
        raise KeyFileError("Failed to use %s %s: it is empty" % (what, path))
    return path


def symmetric_key_id(passphrase_file):
    """A stable, non-reversible identifier of a passphrase, recorded in the manifest.

    scrypt makes a dictionary attack on the id no cheaper than one on the artifact's own
    OpenPGP S2K, so the id leaks nothing the encrypted backup does not already expose.
    """
    with open(passphrase_file, "rb") as handle:
        secret = handle.readline().rstrip(b"\r\n")
    digest = hashlib.scrypt(secret, salt=b"diagnosticpro.dr/key-id/v1", n=2**14, r=8, p=1, dklen=8)
    return "scrypt:" + digest.hex()


class GpgHome:
    """A private GNUPGHOME for one run (or the caller's keyring), cleaned up on exit."""

    def __init__(self, gnupg_home=None, import_files=(), passphrase_file=None):
        self.given = gnupg_home
        self.path = gnupg_home
        self.import_files = list(import_files or ())
        self.passphrase_file = passphrase_file

    def __enter__(self):
        if not self.given:
            self.path = tempfile.mkdtemp(prefix="dr-gnupg-")
            os.chmod(self.path, 0o700)
        for key_file in self.import_files:
            self.run(["--import", key_file], passphrase_file=self.passphrase_file, what="import key %s" % key_file)
        return self

    def __exit__(self, *exc):
        if not self.given and self.path:
            subprocess.run(["gpgconf", "--homedir", self.path, "--kill", "all"], check=False, capture_output=True)
            shutil.rmtree(self.path, ignore_errors=True)
        return False

    def base(self):
        return _BASE + ["--homedir", self.path]

    def run(self, args, passphrase_file=None, what="run gpg"):
        argv, fds, opened = self.base(), (), None
        try:
            if passphrase_file:
                opened = os.open(passphrase_file, os.O_RDONLY)
                argv += ["--pinentry-mode", "loopback", "--passphrase-fd", str(opened)]
                fds = (opened,)
            result = subprocess.run(argv + list(args), capture_output=True, pass_fds=fds, check=False)
        finally:
            if opened is not None:
                os.close(opened)
        if result.returncode != 0:
            raise ConfigError("Failed to %s: %s" % (what, result.stderr.decode(errors="replace").strip()))
        return result.stdout.decode(errors="replace")

    def fingerprints(self, recipients):
        """Resolve recipients (user ids or fingerprints) to primary-key fingerprints."""
        found = []
        for recipient in recipients:
            out = self.run(["--with-colons", "--list-keys", recipient], what="find public key for %s" % recipient)
            fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
            if not fprs:
                raise ConfigError("Failed to find public key for recipient %s in %s" % (recipient, self.path))
            found.append(fprs[0])
        return found


class Encryption:
    """What to encrypt with; builds the gpg stage and describes itself for the manifest."""

    def __init__(self, passphrase_file=None, recipients=None, gnupg_home=None, public_key_files=None):
        if bool(passphrase_file) == bool(recipients):
            raise ConfigError("Failed to configure encryption: give exactly one of passphrase_file or recipients")
        self.passphrase_file = passphrase_file
        self.recipients = list(recipients or [])
        self.gnupg_home = gnupg_home
        self.public_key_files = list(public_key_files or [])
        self.mode = "symmetric" if passphrase_file else "public-key"

    def preflight(self):
        if self.passphrase_file:
            check_key_file(self.passphrase_file, "passphrase file")
        for key_file in self.public_key_files:
            if not os.path.isfile(key_file):
                raise KeyFileError("Failed to use public key file %s: it does not exist" % key_file)

    def home(self):
        return GpgHome(self.gnupg_home, import_files=self.public_key_files)

    def describe(self, home):
        if self.mode == "symmetric":
            return {"mode": "symmetric", "cipher": CIPHER, "key_id": symmetric_key_id(self.passphrase_file)}
        return {"mode": "public-key", "cipher": CIPHER, "recipients": home.fingerprints(self.recipients)}

    def stage(self, home):
        """argv and the descriptors to inherit for the encrypting gpg process."""
        argv = home.base() + ["--compress-algo", "none", "--cipher-algo", CIPHER, "--output", "-"]
        fds = ()
        if self.mode == "symmetric":
            fd = os.open(self.passphrase_file, os.O_RDONLY)
            # A fixed, maximal S2K count: a fresh GNUPGHOME would otherwise spend ~1 s calibrating
            # it on every run, and the key-hashing strength would depend on the machine.
            argv += [
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                str(fd),
                "--s2k-mode",
                "3",
                "--s2k-count",
                str(S2K_COUNT),
                "--s2k-cipher-algo",
                CIPHER,
                "--s2k-digest-algo",
                "SHA512",
                "--symmetric",
            ]
            fds = (fd,)
        else:
            argv += ["--trust-model", "always", "--encrypt"]
            for recipient in self.recipients:
                argv += ["--recipient", recipient]
        return argv, fds


class Decryption:
    """What to decrypt with: a passphrase file, a secret key file, or an existing keyring."""

    def __init__(self, passphrase_file=None, secret_key_file=None, secret_key_passphrase_file=None, gnupg_home=None):
        if not (passphrase_file or secret_key_file or gnupg_home):
            raise ConfigError(
                "Failed to configure decryption: give passphrase_file (symmetric backups) or "
                "secret_key_file / gnupg_home (public-key backups)"
            )
        self.passphrase_file = passphrase_file
        self.secret_key_file = secret_key_file
        self.secret_key_passphrase_file = secret_key_passphrase_file
        self.gnupg_home = gnupg_home

    def preflight(self, encryption_doc=None):
        mode = (encryption_doc or {}).get("mode")
        if mode == "symmetric" and not self.passphrase_file:
            raise ConfigError("Failed to decrypt: the backup is symmetrically encrypted; give passphrase_file")
        if mode == "public-key" and not (self.secret_key_file or self.gnupg_home):
            raise ConfigError(
                "Failed to decrypt: the backup is encrypted to %s; give secret_key_file or gnupg_home"
                % ", ".join((encryption_doc or {}).get("recipients", []))
            )
        if self.passphrase_file:
            check_key_file(self.passphrase_file, "passphrase file")
            wanted = (encryption_doc or {}).get("key_id")
            if mode == "symmetric" and wanted and symmetric_key_id(self.passphrase_file) != wanted:
                raise DecryptError(
                    "Failed to decrypt: the passphrase file %s is not the key this backup was made with "
                    "(manifest key_id %s)" % (self.passphrase_file, wanted),
                    hint="Use the key file that was current when the backup was taken",
                )
        if self.secret_key_file:
            check_key_file(self.secret_key_file, "secret key file")
        if self.secret_key_passphrase_file:
            check_key_file(self.secret_key_passphrase_file, "secret key passphrase file")

    def home(self):
        files = [self.secret_key_file] if self.secret_key_file else []
        return GpgHome(self.gnupg_home, import_files=files, passphrase_file=self.secret_key_passphrase_file)

    def stage(self, home):
        argv, fds = home.base(), ()
        secret = self.passphrase_file or self.secret_key_passphrase_file
        if secret:
            fd = os.open(secret, os.O_RDONLY)
            argv += ["--pinentry-mode", "loopback", "--passphrase-fd", str(fd)]
            fds = (fd,)
        return argv + ["--decrypt", "--output", "-"], fds


def decrypt_error(stderr):
    """Turn gpg's stderr into an operator-facing reason."""
    text = stderr.strip()
    lowered = text.lower()
    if "bad session key" in lowered or "bad passphrase" in lowered:
        return "wrong passphrase or key (gpg: %s)" % text.splitlines()[-1]
    if "no secret key" in lowered:
        return "no secret key for this backup in the keyring (gpg: %s)" % text.splitlines()[-1]
    if "invalid packet" in lowered or "mdc" in lowered or "integrity" in lowered or "crc error" in lowered:
        return "the encrypted data is corrupt (gpg: %s)" % text.splitlines()[-1]
    return text or "gpg failed without a message"
