"""Endpoint secrets at rest: the key's source, the key file, and key rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from meterline.delivery.secrets import load_secret_box, require_box
from meterline.domain.errors import InvalidInput, Unavailable
from meterline.settings import Settings


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "meterline.key"
    first = require_box(load_secret_box(None, key_file))
    ciphertext = first.encrypt("whsec_x")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert require_box(load_secret_box(None, key_file)).decrypt(ciphertext) == "whsec_x"
    assert [p.name for p in key_file.parent.iterdir()] == ["meterline.key"]  # no draft left behind


def test_a_configured_key_wins_and_old_keys_still_decrypt(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = require_box(load_secret_box(old, None)).encrypt("whsec_y")
    rotated = require_box(load_secret_box(f"{new}, {old}", tmp_path / "unused.key"))
    assert rotated.decrypt(stored) == "whsec_y"
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(Unavailable, match="cannot be decrypted"):
        require_box(load_secret_box(new, None)).decrypt(stored)


def test_a_malformed_key_is_refused_without_showing_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        load_secret_box("not-a-fernet-key", None)
    assert "not-a-fernet-key" not in refused.value.message


def test_postgresql_has_no_default_key_file() -> None:
    assert Settings(database_url="postgresql://u@h/db").webhook_key_file() is None
    with pytest.raises(Unavailable, match="METERLINE_SECRET_KEY"):
        require_box(load_secret_box(None, None))
    beside = Settings(database_url="sqlite:////var/lib/meterline/meterline.db").webhook_key_file()
    assert beside == Path("/var/lib/meterline/meterline.key")
    named = Settings(
        database_url="postgresql://u@h/db", secret_key_file="/etc/meterline.key"
    ).webhook_key_file()
    assert named == Path("/etc/meterline.key")
