"""Webhook endpoints: which notification types an endpoint gets, and what a valid URL and secret are.

An endpoint without a type filter gets every alert notification except the `_resolved` ones,
and threshold billing's `payment_gate.threshold_reached`:
resolutions matter only to applications that act on them (lifting a block), and those ask for
them by name. An endpoint with a filter gets exactly the types it lists.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from urllib.parse import urlsplit

from meterline.domain.alerts import KINDS, webhook_type
from meterline.domain.errors import InvalidInput

SECRET_PREFIX = "whsec_"
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64
MAX_URL_CHARS = 2048
RESOLVED_SUFFIX = "_resolved"
PAYMENT_GATE_PREFIX = "payment_gate."
THRESHOLD_REACHED = PAYMENT_GATE_PREFIX + "threshold_reached"  # threshold billing bought a commit
# Every type the outbox can hold: each alert type, triggered and resolved, and threshold billing's.
KNOWN_TYPES = frozenset(webhook_type(t, resolved) for t in KINDS for resolved in (False, True)) | {
    THRESHOLD_REACHED
}


def wants(event_types: Sequence[str] | None, notification_type: str) -> bool:
    """Whether an endpoint with this filter gets notifications of this type."""
    if event_types:
        return notification_type in event_types
    if notification_type.startswith(PAYMENT_GATE_PREFIX):
        return True
    return notification_type.startswith("alerts.") and not notification_type.endswith(RESOLVED_SUFFIX)


def validate_event_types(event_types: Sequence[str] | None, field: str = "types") -> list[str] | None:
    """The filter as stored: None (the default set) or the distinct listed types, in order."""
    if event_types is None:
        return None
    if not event_types:
        raise InvalidInput(f"{field}: must list at least one type, or be omitted for the default set")
    for index, name in enumerate(event_types):
        if name not in KNOWN_TYPES:
            raise InvalidInput(
                f"{field}[{index}]: unknown notification type {name[:120]!r}; types are alerts.<alert_type>"
                " and alerts.<alert_type>_resolved, e.g. alerts.spend_threshold_reached_resolved, and"
                f" {THRESHOLD_REACHED}"
            )
    return list(dict.fromkeys(event_types))


def validate_url(url: str, field: str = "url") -> str:
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"{field}: must be at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise InvalidInput(f"{field}: is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidInput(f"{field}: must be an absolute http:// or https:// URL with a host")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(f"{field}: must not contain whitespace or control characters")
    return url


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key Standard Webhooks signs with: the base64 part after `whsec_`, decoded."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def validate_secret(secret: str, field: str = "secret") -> str:
    """A secret both signature schemes can use: `whsec_` + base64 of 24 to 64 random bytes.

    The error never repeats the value: secrets must not reach logs or error trackers.
    """
    rule = f"{field}: must be {SECRET_PREFIX} followed by the base64 of {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes"
    if not secret.startswith(SECRET_PREFIX) or not secret.isascii():
        raise InvalidInput(rule)
    try:
        key = secret_key_bytes(secret)
    except (binascii.Error, ValueError):
        raise InvalidInput(rule) from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise InvalidInput(rule)
    return secret
