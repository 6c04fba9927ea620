"""Registering endpoints and rotating their secrets: what the API and the CLI both do.

A secret is returned once, here, and otherwise exists only encrypted in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from meterline.delivery.destinations import check_endpoint_url
from meterline.delivery.secrets import SecretBox, generate_secret
from meterline.domain.webhooks import validate_event_types, validate_secret, validate_url
from meterline.store import webhooks as store
from meterline.store.webhooks import EndpointRecord


@dataclass(frozen=True, slots=True)
class WithSecret:
    endpoint: EndpointRecord
    secret: str
    generated: bool


def check_url(url: str, allow_private_networks: bool) -> None:
    """The URL's form and destination (see destinations.py); resolves the host, so it is called
    before the transaction that registers the endpoint, not inside it."""
    check_endpoint_url(validate_url(url), allow_private_networks)


def register(
    conn: Connection,
    box: SecretBox,
    url: str,
    secret: str | None,
    event_types: list[str] | None,
    now_us: int,
) -> WithSecret:
    """Store the endpoint; `check_url` it first, outside the transaction (it resolves the host)."""
    url = validate_url(url)
    event_types = validate_event_types(event_types)
    chosen = validate_secret(secret) if secret is not None else generate_secret()
    endpoint = store.create_endpoint(conn, url, event_types, box.encrypt(chosen), now_us)
    return WithSecret(endpoint, chosen, secret is None)


def rotate(
    conn: Connection, box: SecretBox, endpoint_id: str, secret: str | None, grace_us: int, now_us: int
) -> WithSecret:
    """The new secret signs from now on; the previous one also signs for `grace_us`."""
    chosen = validate_secret(secret) if secret is not None else generate_secret()
    endpoint = store.rotate_secret(conn, endpoint_id, box.encrypt(chosen), now_us + grace_us, now_us)
    return WithSecret(endpoint, chosen, secret is None)
