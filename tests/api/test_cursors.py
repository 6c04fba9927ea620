"""Cursors as the codec sees them: only an unchanged cursor this key issued for this list decodes."""

from __future__ import annotations

import pytest

from meterline.api.cursors import CursorCodec, derive_cursor_key
from meterline.domain.errors import InvalidInput

KEY = derive_cursor_key(b"a deployment's secret")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def test_a_cursor_decodes_to_its_position_in_its_own_list_only() -> None:
    codec = CursorCodec(KEY)
    token = codec.encode("contracts", [1_700_000_000_000_000, "c-1"])
    assert codec.decode("contracts", token, tuple[int, str], "cursor") == (1_700_000_000_000_000, "c-1")
    with pytest.raises(InvalidInput, match=r"^next_page: invalid cursor$"):
        codec.decode("webhook_endpoints", token, tuple[int, str], "next_page")
    with pytest.raises(InvalidInput, match=r"^next_page: invalid cursor$"):
        CursorCodec(derive_cursor_key(b"another deployment")).decode(
            "contracts", token, tuple[int, str], "next_page"
        )


def test_every_one_character_change_is_refused() -> None:
    codec = CursorCodec(KEY)
    token = codec.encode("customers", "0b6e4c1a-3f7e-4a38-9d57-1f0c2a1e9b77")
    for at, original in enumerate(token):
        for replacement in ALPHABET:
            if replacement == original:
                continue
            changed = token[:at] + replacement + token[at + 1 :]
            with pytest.raises(InvalidInput):
                codec.decode("customers", changed, str, "next_page")


@pytest.mark.parametrize("position", [True, 1.5, None, "1", ["x"], {"x": 1}])
def test_a_position_of_another_type_is_refused(position: object) -> None:
    codec = CursorCodec(KEY)
    with pytest.raises(InvalidInput, match=r"^next_page: invalid cursor$"):
        codec.decode("rates", codec.encode("rates", position), int, "next_page")
