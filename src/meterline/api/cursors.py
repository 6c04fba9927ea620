"""Cursors for list endpoints: opaque to clients, signed, and bound to the list that issued them.

A cursor is `base64url(JSON [list, position]) "." base64url(HMAC-SHA256)`, signed with the
deployment's cursor key. A list accepts only a cursor it issued itself (its name is signed with
the position) holding a position of its own type, so no request can make a list run a query it
never issued. Anything else, forged, truncated, tampered or another list's, is a 400
`next_page: invalid cursor` (naming the list's cursor field), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from meterline.domain.errors import InvalidInput

P = TypeVar("P")

SIGNATURE_BYTES = 16  # a truncated HMAC-SHA256: forging one is a 2**-128 guess
KEY_CONTEXT = b"meterline pagination cursors"


def derive_cursor_key(secret: bytes) -> bytes:
    """The cursor key of a deployment that has a secret of its own (METERLINE_SECRET_KEY)."""
    return hmac.new(secret, KEY_CONTEXT, hashlib.sha256).digest()


class CursorCodec:
    """Signs and checks cursors with one key (every API process of a deployment shares it)."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        # A callable is asked once, at the first cursor: building the app reads no database.
        self._key_source = key
        self._resolved: bytes | None = key if isinstance(key, bytes) else None

    @property
    def _key(self) -> bytes:
        if self._resolved is None:
            source = self._key_source
            assert callable(source)
            self._resolved = source()
        return self._resolved

    def encode(self, list_name: str, position: Any) -> str:
        payload = _b64(json.dumps([list_name, position], separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._sign(payload))}"

    def decode(self, list_name: str, token: str, position_type: type[P], field: str) -> P:
        invalid = InvalidInput(f"{field}: invalid cursor")
        payload, dot, signature = token.partition(".")
        try:
            # Compared as text: one signature has one spelling (base64 could hide changed padding bits).
            if not dot or not hmac.compare_digest(signature.encode(), _b64(self._sign(payload)).encode()):
                raise invalid
            issued_by, position = json.loads(_unb64(payload))
            if issued_by != list_name:
                raise invalid
            return msgspec.convert(position, position_type, strict=True)
        except (ValueError, TypeError, msgspec.ValidationError):
            raise invalid from None

    def _sign(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise ValueError(str(error)) from None
