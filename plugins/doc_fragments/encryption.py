# Copyright: (c) 2026, DiagnosticPro Technical Operations
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenPGP options; paired with ENCRYPTION_SPEC / DECRYPTION_SPEC in module_utils/_crypto.py."""

from __future__ import annotations


class ModuleDocFragment:
    # Encrypting side (backups).
    DOCUMENTATION = r"""
options:
  passphrase_file:
    description:
      - File whose first line is the passphrase for symmetric OpenPGP encryption (AES-256).
      - The passphrase reaches C(gpg) through an inherited file descriptor (C(--passphrase-fd)),
        never argv, environment or a temp file. Refused if the file is readable by group or others.
      - The manifest records only a non-reversible key id (scrypt of the passphrase), so a restore can
        tell a wrong key file before decrypting.
      - Mutually exclusive with O(recipients).
    type: path
  recipients:
    description:
      - Public-key mode. OpenPGP fingerprints or user ids to encrypt to; the host taking the backup
        needs only their public keys, never a decryption key.
      - The manifest records the recipients' fingerprints.
    type: list
    elements: str
  gnupg_home:
    description:
      - An existing GnuPG home holding the recipients' public keys. Without it, each run uses a private
        temporary GnuPG home, into which O(public_key_files) are imported.
    type: path
  public_key_files:
    description:
      - Exported public keys (ASCII armour or binary) of the O(recipients), imported for this run only.
    type: list
    elements: path
"""

    # Decrypting side (verification, restore).
    DECRYPTION = r"""
options:
  passphrase_file:
    description:
      - Passphrase file for symmetrically encrypted backups (first line is the passphrase).
      - Checked against the key id in the manifest before anything is decrypted.
      - Refused if readable by group or others.
    type: path
  secret_key_file:
    description:
      - Exported OpenPGP secret key for backups made in public-key mode; imported into a private
        temporary GnuPG home for this run and removed afterwards. Refused if readable by group or others.
    type: path
  secret_key_passphrase_file:
    description:
      - File holding the passphrase protecting O(secret_key_file), if it is protected.
    type: path
  gnupg_home:
    description:
      - An existing GnuPG home with the secret key, instead of O(secret_key_file).
    type: path
"""
