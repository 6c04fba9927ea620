"""API tokens: stored as SHA-256 digests (tokens are 256-bit random, so a fast hash suffices)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from meterline.domain.errors import NotFound
from meterline.domain.ids import new_id
from meterline.domain.timeutil import now_us
from meterline.store.tables import api_tokens

TOKEN_PREFIX = "ml_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    created_at_us: int
    revoked_at_us: int | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, name: str) -> tuple[str, str]:
    """Returns (token id, the token itself). The token is never stored and cannot be shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id()
    conn.execute(
        api_tokens.insert().values(id=token_id, name=name, token_sha256=digest(token), created_at_us=now_us())
    )
    return token_id, token


def is_valid(conn: Connection, token: str) -> bool:
    return client_of(conn, token) is not None


def client_of(conn: Connection, token: str) -> str | None:
    """The name of the client a valid (unrevoked) token was created for, or None."""
    row = conn.execute(
        select(api_tokens.c.name).where(
            api_tokens.c.token_sha256 == digest(token), api_tokens.c.revoked_at_us.is_(None)
        )
    ).first()
    return None if row is None else str(row.name)


def list_tokens(conn: Connection) -> list[TokenInfo]:
    rows = conn.execute(
        select(
            api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at_us, api_tokens.c.revoked_at_us
        ).order_by(api_tokens.c.created_at_us)
    ).all()
    return [TokenInfo(*row) for row in rows]


def revoke_token(conn: Connection, token_id: str) -> None:
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at_us.is_(None))
        .values(revoked_at_us=now_us())
    )
    if result.rowcount == 0:
        raise NotFound(f"no active API token with id {token_id}")
