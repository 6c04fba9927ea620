"""Capabilities signed with a running server's own key, as only the server could (for expiry and
"another customer" cases a client cannot produce by itself)."""

from __future__ import annotations

import base64
import json

from meterline.api import dashboard_capability
from meterline.api.cursors import CursorCodec
from meterline.api.dashboard_capability import Capability
from meterline.runtime.server import cursor_key
from meterline.settings import Settings
from meterline.store.db import Database
from tests.support.server import RunningServer


def server_codec(server: RunningServer) -> CursorCodec:
    settings = Settings(database_url=server.database_url, secret_key=server.env.get("METERLINE_SECRET_KEY"))
    db = Database(server.database_url, pool_size=1)
    try:
        return CursorCodec(cursor_key(settings, db))
    finally:
        db.dispose()


def signed_url(server: RunningServer, customer_id: str, dashboard: str, expires_us: int) -> str:
    token = dashboard_capability.issue(
        server_codec(server), Capability(customer_id, dashboard, expires_us, {}, {}, [])
    )
    return f"{server.base_url}/embed/dashboards/{token}"


def pointed_at(url: str, customer_id: str) -> str:
    """The URL with its payload's customer replaced, its signature kept."""
    base, token = url.rsplit("/", 1)
    payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded[1][0] = customer_id
    raw = base64.urlsafe_b64encode(json.dumps(decoded, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{base}/{raw}.{signature}"
