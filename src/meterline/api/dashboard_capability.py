"""The capability an embeddable dashboard URL carries: one customer, one dashboard, until a moment.

It is signed by the same codec and key as pagination cursors (`api.cursors`), under a name of its
own ("dashboard"), so no cursor can pass for a capability nor the reverse. It holds no API token:
whoever has the URL can read that customer's dashboard, and nothing else, until it expires.
Changing any byte (another customer, another dashboard, a later expiry) breaks the signature.
"""

from __future__ import annotations

from enum import Enum

import msgspec

from meterline.api.cursors import CursorCodec
from meterline.domain.errors import InvalidInput

SIGNED_AS = "dashboard"


class GroupNames(msgspec.Struct, array_like=True, frozen=True):
    """How a billable metric group key and its values are shown (`bm_group_key_overrides`)."""

    key: str
    display_name: str | None
    values: dict[str, str]


class Capability(msgspec.Struct, array_like=True, frozen=True):
    customer_id: str
    dashboard: str
    expires_us: int
    colors: dict[str, str]  # Metronome's color name -> hex
    options: dict[str, str]  # dashboard_options, key -> value
    groups: list[GroupNames]


class Refusal(Enum):
    """Why a URL opens no dashboard; each is a 403 page saying so."""

    INVALID = "This dashboard link is not valid."
    EXPIRED = "This dashboard link has expired. Ask for a new one."
    UNAVAILABLE = "This dashboard is no longer available."


class CapabilityRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


def issue(codec: CursorCodec, capability: Capability) -> str:
    return codec.encode(SIGNED_AS, msgspec.to_builtins(capability))


def verify(codec: CursorCodec, token: str, now_us: int) -> Capability:
    """The capability `token` carries, if it is genuine and not expired; else `CapabilityRefused`."""
    try:
        capability = codec.decode(SIGNED_AS, token, Capability, "token")
    except InvalidInput:
        raise CapabilityRefused(Refusal.INVALID) from None
    if capability.expires_us <= now_us:
        raise CapabilityRefused(Refusal.EXPIRED)
    return capability
