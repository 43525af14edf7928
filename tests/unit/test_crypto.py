"""Key-file rules and the gpg command lines: no secret ever on argv."""

from __future__ import annotations

import os

import pytest

from ansible_collections.diagnosticpro.dr.plugins.module_utils import _crypto
from ansible_collections.diagnosticpro.dr.plugins.module_utils._errors import ConfigError, DecryptError, KeyFileError


def keyfile(tmp_path, content="a long enough passphrase\n", mode=0o600, name="k"):
    path = tmp_path / name
    path.write_text(content)
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o777])
def test_loose_key_files_are_refused(tmp_path, mode):
    with pytest.raises(KeyFileError, match="chmod 600"):
        _crypto.check_key_file(keyfile(tmp_path, mode=mode))


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_key_files_are_accepted(tmp_path, mode):
    assert _crypto.check_key_file(keyfile(tmp_path, mode=mode))


def test_missing_empty_and_directory_key_files_are_refused(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        _crypto.check_key_file(str(tmp_path / "nope"))
    with pytest.raises(KeyFileError, match="empty"):
        _crypto.check_key_file(keyfile(tmp_path, content=""))
    os.chmod(tmp_path, 0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        _crypto.check_key_file(str(tmp_path))


def test_key_id_is_stable_distinct_and_reveals_nothing(tmp_path):
    a = keyfile(tmp_path, "passphrase one\n", name="a")
    b = keyfile(tmp_path, "passphrase two\n", name="b")
    a_crlf = keyfile(tmp_path, "passphrase one\r\n", name="a2")
    assert _crypto.symmetric_key_id(a) == _crypto.symmetric_key_id(a_crlf) != _crypto.symmetric_key_id(b)
    assert "passphrase" not in _crypto.symmetric_key_id(a)


def test_exactly_one_encryption_mode():
    with pytest.raises(ConfigError):
        _crypto.Encryption()
    with pytest.raises(ConfigError):
        _crypto.Encryption(passphrase_file="/k", recipients=["x"])
    with pytest.raises(ConfigError):
        _crypto.Decryption()


def test_symmetric_stage_passes_the_key_by_descriptor(tmp_path):
    key = keyfile(tmp_path, "never-on-argv-123\n")
    with _crypto.GpgHome() as home:
        argv, fds = _crypto.Encryption(passphrase_file=key).stage(home)
        try:
            assert "--passphrase-fd" in argv and str(fds[0]) in argv
            assert "never-on-argv-123" not in " ".join(argv) and key not in argv
            assert argv[argv.index("--cipher-algo") + 1] == "AES256"
            assert argv[argv.index("--compress-algo") + 1] == "none"
        finally:
            for fd in fds:
                os.close(fd)
        assert os.stat(home.path).st_mode & 0o777 == 0o700
    assert not os.path.exists(home.path), "the private GNUPGHOME must be removed"


def test_decryption_preflight_catches_mode_and_key_mismatch(tmp_path):
    key = keyfile(tmp_path, "the right key\n", name="right")
    wrong = keyfile(tmp_path, "the wrong key\n", name="wrong")
    doc = {"mode": "symmetric", "key_id": _crypto.symmetric_key_id(key)}
    _crypto.Decryption(passphrase_file=key).preflight(doc)
    with pytest.raises(DecryptError, match="not the key this backup was made with"):
        _crypto.Decryption(passphrase_file=wrong).preflight(doc)
    with pytest.raises(ConfigError, match="give passphrase_file"):
        _crypto.Decryption(gnupg_home=str(tmp_path)).preflight(doc)
    with pytest.raises(ConfigError, match="encrypted to ABC"):
        _crypto.Decryption(passphrase_file=key).preflight({"mode": "public-key", "recipients": ["ABC"]})


@pytest.mark.parametrize(
    "stderr, expected",
    [
        ("gpg: decryption failed: Bad session key", "wrong passphrase or key"),
        ("gpg: decryption failed: No secret key", "no secret key"),
        ("gpg: [don't know]: invalid packet (ctb=7f)", "corrupt"),
        ("", "without a message"),
    ],
)
def test_gpg_errors_are_translated(stderr, expected):
    assert expected in _crypto.decrypt_error(stderr)
