"""Webhook endpoints, deliveries and attempts: the queries the dispatcher, the API and the CLI share.

A delivery is one (notification, endpoint) pair. The dispatcher fans new outbox rows out into
deliveries in the transaction that moves its cursor, claims due deliveries by pushing their due
time past a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so two dispatchers never take the same
one), and records each attempt. A dispatcher that dies mid-attempt leaves the delivery pending:
once the lease ends it is due again and sent again, with the same notification id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, func, or_, select, update

from meterline.domain.errors import NotFound
from meterline.domain.ids import new_id
from meterline.domain.webhooks import wants
from meterline.store import cursors
from meterline.store.alerts import contiguous_frontier
from meterline.store.sql import among, insert_ignoring_duplicates
from meterline.store.tables import (
    notifications,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

FANOUT_CURSOR = "webhook_fanout"
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
_E, _D, _A = webhook_endpoints.c, webhook_deliveries.c, webhook_attempts.c


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: str
    url: str
    event_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at_us: int | None
    created_at_us: int
    updated_at_us: int
    removed_at_us: int | None


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery taken for one attempt, with everything needed to send and sign it."""

    delivery_id: int
    claim_id: str
    notification_id: str
    payload: str
    endpoint_id: str
    url: str
    secret_ciphertexts: list[str]  # the current secret, then a previous one still in its grace
    forced: bool
    attempt: int
    round_attempt: int
    round_started_at_us: int | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    attempted_at_us: int
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None
    response_headers: str | None = None  # a JSON object


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    notification_id: str
    notification_type: str
    endpoint_id: str
    state: str
    attempts: int
    next_attempt_at_us: int | None
    last_status_code: int | None
    last_error: str | None
    created_at_us: int
    updated_at_us: int


@dataclass(frozen=True, slots=True)
class FanOut:
    notifications: int  # outbox rows read
    position: int  # the cursor after this pass
    gap_before: int | None  # a row the cursor stopped at, because the seq before it is missing
    more: bool


# -- endpoints -----------------------------------------------------------------------------------
def create_endpoint(
    conn: Connection, url: str, event_types: list[str] | None, secret_ciphertext: str, now_us: int
) -> EndpointRecord:
    endpoint_id = new_id()
    last_seq = conn.execute(select(func.max(notifications.c.seq))).scalar()
    conn.execute(
        webhook_endpoints.insert().values(
            id=endpoint_id,
            url=url,
            event_types=event_types,
            secret_ciphertext=secret_ciphertext,
            starts_after_seq=int(last_seq or 0),
            enabled=True,
            created_at_us=now_us,
            updated_at_us=now_us,
        )
    )
    return get_endpoint(conn, endpoint_id)


def get_endpoint(conn: Connection, endpoint_id: str) -> EndpointRecord:
    row = (
        conn.execute(select(webhook_endpoints).where(_E.id == endpoint_id, _E.removed_at_us.is_(None)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"id: no webhook endpoint with id {endpoint_id}")
    return _endpoint(row)


def list_endpoints(conn: Connection, *, after: Sequence[Any] | None, limit: int) -> list[EndpointRecord]:
    """Endpoints not removed, oldest first; `after` is the (created_at_us, id) of the last one seen."""
    query = select(webhook_endpoints).where(_E.removed_at_us.is_(None))
    if after is not None:
        created, last_id = after
        query = query.where(
            or_(_E.created_at_us > created, and_(_E.created_at_us == created, _E.id > last_id))
        )
    rows = conn.execute(query.order_by(_E.created_at_us, _E.id).limit(limit)).mappings()
    return [_endpoint(r) for r in rows]


def remove_endpoint(conn: Connection, endpoint_id: str, now_us: int) -> None:
    get_endpoint(conn, endpoint_id)
    conn.execute(
        update(webhook_endpoints)
        .where(_E.id == endpoint_id)
        .values(enabled=False, disabled_reason="removed", removed_at_us=now_us, updated_at_us=now_us)
    )
    _fail_pending(conn, endpoint_id, "endpoint removed", now_us, include_forced=True)


def enable_endpoint(conn: Connection, endpoint_id: str, now_us: int) -> EndpointRecord:
    get_endpoint(conn, endpoint_id)
    conn.execute(
        update(webhook_endpoints)
        .where(_E.id == endpoint_id)
        .values(enabled=True, disabled_reason=None, updated_at_us=now_us)
    )
    return get_endpoint(conn, endpoint_id)


def disable_endpoint(conn: Connection, endpoint_id: str, reason: str, now_us: int) -> None:
    """A receiver answered 410 Gone: stop sending it anything but explicit replays."""
    conn.execute(
        update(webhook_endpoints)
        .where(_E.id == endpoint_id, _E.removed_at_us.is_(None))
        .values(enabled=False, disabled_reason=reason[:200], updated_at_us=now_us)
    )
    _fail_pending(conn, endpoint_id, f"endpoint disabled: {reason}", now_us, include_forced=False)


def rotate_secret(
    conn: Connection, endpoint_id: str, new_ciphertext: str, previous_expires_at_us: int, now_us: int
) -> EndpointRecord:
    """The current secret becomes the previous one, which keeps signing until it expires."""
    get_endpoint(conn, endpoint_id)
    conn.execute(
        update(webhook_endpoints)
        .where(_E.id == endpoint_id)
        .values(
            previous_secret_ciphertext=_E.secret_ciphertext,
            previous_secret_expires_at_us=previous_expires_at_us,
            secret_ciphertext=new_ciphertext,
            updated_at_us=now_us,
        )
    )
    return get_endpoint(conn, endpoint_id)


def _fail_pending(
    conn: Connection, endpoint_id: str, reason: str, now_us: int, *, include_forced: bool
) -> None:
    query = update(webhook_deliveries).where(_D.endpoint_id == endpoint_id, _D.state == PENDING)
    if not include_forced:
        query = query.where(_D.forced.is_(False))
    conn.execute(
        query.values(
            state=FAILED, next_attempt_at_us=None, claim_id=None, last_error=reason, updated_at_us=now_us
        )
    )


def _endpoint(row: Any) -> EndpointRecord:
    return EndpointRecord(
        id=row["id"],
        url=row["url"],
        event_types=row["event_types"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        previous_secret_expires_at_us=row["previous_secret_expires_at_us"],
        created_at_us=row["created_at_us"],
        updated_at_us=row["updated_at_us"],
        removed_at_us=row["removed_at_us"],
    )


# -- fan-out -------------------------------------------------------------------------------------
def outbox_waiting(conn: Connection) -> bool:
    """Whether the outbox holds rows past the fan-out cursor (a cheap read before a write)."""
    last = conn.execute(select(func.max(notifications.c.seq))).scalar()
    return last is not None and int(last) > cursors.peek_cursor(conn, FANOUT_CURSOR)


def fan_out(conn: Connection, now_us: int, limit: int, skip_gap_through: int | None = None) -> FanOut:
    """Create the deliveries of the next outbox rows and move the cursor, in the caller's transaction.

    The cursor only moves over consecutive seqs: on PostgreSQL a transaction may commit a lower
    seq after a higher one is visible. Rows past a gap are fanned out at once all the same (the
    (notification, endpoint) pair is unique, so reading them again creates nothing); the caller
    lets the cursor jump a gap (`skip_gap_through`) once it has persisted long enough to be a
    rolled-back insert rather than a slow one.
    """
    position = cursors.lock_cursor(conn, FANOUT_CURSOR)  # one fan-out at a time, across processes
    rows = conn.execute(
        select(notifications.c.seq, notifications.c.id, notifications.c.type)
        .where(notifications.c.seq > position)
        .order_by(notifications.c.seq)
        .limit(limit)
    ).all()
    if not rows:
        return FanOut(0, position, None, False)
    endpoints = conn.execute(
        select(_E.id, _E.event_types, _E.starts_after_seq).where(
            _E.enabled.is_(True), _E.removed_at_us.is_(None)
        )
    ).all()
    _insert_fresh_deliveries(
        conn,
        [
            (seq, notification_id, endpoint_id)
            for seq, notification_id, kind in rows
            for endpoint_id, event_types, starts_after in endpoints
            if seq > starts_after and wants(event_types, kind)
        ],
        now_us,
    )
    frontier, gap = contiguous_frontier(position, [r[0] for r in rows], skip_gap_through)
    if frontier != position:
        cursors.advance_cursor(conn, FANOUT_CURSOR, position, frontier)
    return FanOut(len(rows), frontier, gap, len(rows) == limit)


# A fresh delivery's row, for SQLite's driver (the columns in `_new_delivery`'s order; a pair
# already fanned out is left as it is).
_INSERT_FRESH_SQLITE = (
    "INSERT INTO webhook_deliveries (notification_seq, notification_id, endpoint_id, state, forced,"
    " attempts, round_attempts, round_started_at_us, next_attempt_at_us, claim_id, created_at_us,"
    " updated_at_us) VALUES (?, ?, ?, ?, 0, 0, 0, NULL, ?, NULL, ?, ?) ON CONFLICT DO NOTHING"
)


def _insert_fresh_deliveries(conn: Connection, pairs: Sequence[tuple[int, str, str]], now_us: int) -> None:
    """A pending delivery for each (seq, notification id, endpoint id), due now. A burst's
    evaluator batch fans out thousands in its own transaction, ahead of its commit: on SQLite the
    rows go straight to the driver, where SQLAlchemy's binding of each row's dict cost more than
    SQLite's insert of it."""
    if not pairs:
        return
    if conn.dialect.name != "sqlite":
        insert_ignoring_duplicates(
            conn,
            webhook_deliveries,
            [_new_delivery(seq, nid, endpoint_id, now_us, forced=False) for seq, nid, endpoint_id in pairs],
        )
        return
    conn.exec_driver_sql(
        _INSERT_FRESH_SQLITE,
        [(seq, nid, endpoint_id, PENDING, now_us, now_us, now_us) for seq, nid, endpoint_id in pairs],
    )


def _new_delivery(
    seq: int, notification_id: str, endpoint_id: str, now_us: int, *, forced: bool
) -> dict[str, Any]:
    return {
        "notification_seq": seq,
        "notification_id": notification_id,
        "endpoint_id": endpoint_id,
        "state": PENDING,
        "forced": forced,
        "attempts": 0,
        "round_attempts": 0,
        "round_started_at_us": None,
        "next_attempt_at_us": now_us,
        "claim_id": None,
        "created_at_us": now_us,
        "updated_at_us": now_us,
    }


# -- claiming and recording ----------------------------------------------------------------------
def next_due_at(conn: Connection) -> int | None:
    """The earliest due time of a pending delivery (a cheap read before claiming)."""
    value = conn.execute(select(func.min(_D.next_attempt_at_us)).where(_D.state == PENDING)).scalar()
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Taken:
    """Deliveries claimed under one id, not yet read: a claim handed to another process."""

    claim_id: str
    delivery_ids: list[int]


def claim_due(conn: Connection, now_us: int, lease_until_us: int, room: Callable[[str], int]) -> list[Claim]:
    """Take due deliveries, at most `room(endpoint_id)` per endpoint, until `lease_until_us`."""
    taken = take_due(conn, now_us, lease_until_us, room)
    if taken is None:
        return []
    return _claims(conn, among(conn, _D.id, taken.delivery_ids), taken.claim_id, now_us)


def take_due(conn: Connection, now_us: int, lease_until_us: int, room: Callable[[str], int]) -> Taken | None:
    """`claim_due` without reading what the deliveries carry (payloads, endpoints, secrets): the
    evaluator's batch transaction claims for the delivery process, which reads them itself."""
    claim_id = new_id()
    due_endpoints = conn.execute(
        select(_D.endpoint_id).where(_D.state == PENDING, _D.next_attempt_at_us <= now_us).distinct()
    ).scalars()
    claimed: list[int] = []
    for endpoint_id in sorted(due_endpoints):
        free = room(endpoint_id)
        if free > 0:
            claimed.extend(_claim_for_endpoint(conn, endpoint_id, free, now_us))
    if not claimed:
        return None
    # The ids as one parameter (`among`): a burst claims thousands at once, and an expanded IN
    # list cost SQLAlchemy more per id than SQLite's update of the row.
    conn.execute(
        update(webhook_deliveries)
        .where(among(conn, _D.id, claimed))
        .values(next_attempt_at_us=lease_until_us, claim_id=claim_id)
    )
    return Taken(claim_id, claimed)


def claimed_counts(conn: Connection, now_us: int) -> dict[str, int]:
    """Deliveries claimed and not yet recorded, per endpoint: what any dispatcher holds right now."""
    rows = conn.execute(
        select(_D.endpoint_id, func.count())
        .where(_D.state == PENDING, _D.claim_id.is_not(None), _D.next_attempt_at_us > now_us)
        .group_by(_D.endpoint_id)
    )
    return {endpoint_id: int(count) for endpoint_id, count in rows}


def claims_by_id(conn: Connection, claim_id: str, now_us: int) -> list[Claim]:
    """The deliveries one claim took, as the claim made them (a claim handed to another process)."""
    return _claims(conn, and_(_D.claim_id == claim_id, _D.state == PENDING), claim_id, now_us)


def _claim_for_endpoint(conn: Connection, endpoint_id: str, limit: int, now_us: int) -> list[int]:
    endpoint = conn.execute(
        select(_E.enabled).where(_E.id == endpoint_id, _E.removed_at_us.is_(None))
    ).first()
    if endpoint is None:
        return []
    query = select(_D.id).where(
        _D.endpoint_id == endpoint_id, _D.state == PENDING, _D.next_attempt_at_us <= now_us
    )
    if not endpoint.enabled:
        query = query.where(_D.forced.is_(True))
    query = query.order_by(_D.next_attempt_at_us, _D.id).limit(limit).with_for_update(skip_locked=True)
    return list(conn.execute(query).scalars())


def _claims(conn: Connection, which: ColumnElement[bool], claim_id: str, now_us: int) -> list[Claim]:
    rows = conn.execute(
        select(
            _D.id,
            _D.notification_id,
            _D.endpoint_id,
            _D.forced,
            _D.attempts,
            _D.round_attempts,
            _D.round_started_at_us,
            notifications.c.payload,
            _E.url,
            _E.secret_ciphertext,
            _E.previous_secret_ciphertext,
            _E.previous_secret_expires_at_us,
        )
        .join(notifications, notifications.c.seq == _D.notification_seq)
        .join(webhook_endpoints, _E.id == _D.endpoint_id)
        .where(which)
        .order_by(_D.id)
    ).mappings()
    return [
        Claim(
            delivery_id=r["id"],
            claim_id=claim_id,
            notification_id=r["notification_id"],
            payload=r["payload"],
            endpoint_id=r["endpoint_id"],
            url=r["url"],
            secret_ciphertexts=_signing_secrets(r, now_us),
            forced=r["forced"],
            attempt=r["attempts"] + 1,
            round_attempt=r["round_attempts"] + 1,
            round_started_at_us=r["round_started_at_us"],
        )
        for r in rows
    ]


def _signing_secrets(row: Any, now_us: int) -> list[str]:
    """The current secret, then the previous one while its rotation grace lasts."""
    previous = row["previous_secret_ciphertext"]
    if previous and (row["previous_secret_expires_at_us"] or 0) > now_us:
        return [row["secret_ciphertext"], previous]
    return [row["secret_ciphertext"]]


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """An attempt made on a claim, and where it leaves the delivery."""

    claim: Claim
    attempt: AttemptRecord
    state: str
    next_attempt_at_us: int | None


_RECORD_DELIVERY = (
    update(webhook_deliveries)
    .where(_D.id == bindparam("b_delivery_id"), _D.claim_id == bindparam("b_claim_id"))
    .values(
        state=bindparam("b_state"),
        attempts=bindparam("b_attempts"),
        round_attempts=bindparam("b_round_attempts"),
        round_started_at_us=bindparam("b_round_started_at_us"),
        next_attempt_at_us=bindparam("b_next_attempt_at_us"),
        claim_id=None,
        last_status_code=bindparam("b_status_code"),
        last_error=bindparam("b_error"),
        updated_at_us=bindparam("b_attempted_at_us"),
    )
)


def record_attempts(conn: Connection, outcomes: Sequence[AttemptOutcome]) -> None:
    """Log the attempts and move each delivery on whose claim still holds (no replay since).

    Two statements for the whole cycle, whatever its size: an executemany each.
    """
    if not outcomes:
        return
    if conn.dialect.name == "sqlite":
        _record_attempts_sqlite(conn, outcomes)
        return
    conn.execute(
        webhook_attempts.insert(),
        [
            {
                "delivery_id": o.claim.delivery_id,
                "attempt": o.attempt.attempt,
                "attempted_at_us": o.attempt.attempted_at_us,
                "status_code": o.attempt.status_code,
                "latency_ms": o.attempt.latency_ms,
                "error": o.attempt.error,
                "response_body": o.attempt.response_body,
                "response_headers": o.attempt.response_headers,
            }
            for o in outcomes
        ],
    )
    conn.execute(
        _RECORD_DELIVERY,
        [
            {
                "b_delivery_id": o.claim.delivery_id,
                "b_claim_id": o.claim.claim_id,
                "b_state": o.state,
                "b_attempts": o.claim.attempt,
                "b_round_attempts": o.claim.round_attempt,
                "b_round_started_at_us": o.claim.round_started_at_us or o.attempt.attempted_at_us,
                "b_next_attempt_at_us": o.next_attempt_at_us,
                "b_status_code": o.attempt.status_code,
                "b_error": o.attempt.error,
                "b_attempted_at_us": o.attempt.attempted_at_us,
            }
            for o in outcomes
        ],
    )


# `record_attempts`' two statements as SQLite's driver takes them: a burst records thousands of
# attempts a cycle, in the delivery process whose CPU the burst's webhooks wait on, and
# SQLAlchemy's binding of each row's dict cost about as much as SQLite's writing of it.
_INSERT_ATTEMPT_SQLITE = (
    "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at_us, status_code, latency_ms,"
    " error, response_body, response_headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_RECORD_DELIVERY_SQLITE = (
    "UPDATE webhook_deliveries SET state = ?, attempts = ?, round_attempts = ?,"
    " round_started_at_us = ?, next_attempt_at_us = ?, claim_id = NULL, last_status_code = ?,"
    " last_error = ?, updated_at_us = ? WHERE webhook_deliveries.id = ?"
    " AND webhook_deliveries.claim_id = ?"
)


def _record_attempts_sqlite(conn: Connection, outcomes: Sequence[AttemptOutcome]) -> None:
    """`record_attempts` on SQLite: the same rows, bound positionally."""
    conn.exec_driver_sql(
        _INSERT_ATTEMPT_SQLITE,
        [
            (
                o.claim.delivery_id,
                o.attempt.attempt,
                o.attempt.attempted_at_us,
                o.attempt.status_code,
                o.attempt.latency_ms,
                o.attempt.error,
                o.attempt.response_body,
                o.attempt.response_headers,
            )
            for o in outcomes
        ],
    )
    conn.exec_driver_sql(
        _RECORD_DELIVERY_SQLITE,
        [
            (
                o.state,
                o.claim.attempt,
                o.claim.round_attempt,
                o.claim.round_started_at_us or o.attempt.attempted_at_us,
                o.next_attempt_at_us,
                o.attempt.status_code,
                o.attempt.error,
                o.attempt.attempted_at_us,
                o.claim.delivery_id,
                o.claim.claim_id,
            )
            for o in outcomes
        ],
    )


_RENEW_CLAIM = (
    update(webhook_deliveries)
    .where(
        _D.id == bindparam("b_delivery_id"),
        _D.claim_id == bindparam("b_claim_id"),
        _D.state == PENDING,
    )
    .values(next_attempt_at_us=bindparam("b_until"))
)


def renew_claims(conn: Connection, claims: Sequence[Claim], lease_until_us: int) -> None:
    """Extend the leases of claims still held (those recorded or taken over since are left alone)."""
    if claims:
        conn.execute(
            _RENEW_CLAIM,
            [
                {"b_delivery_id": c.delivery_id, "b_claim_id": c.claim_id, "b_until": lease_until_us}
                for c in claims
            ],
        )


def release_claims(conn: Connection, claims: Sequence[Claim], now_us: int) -> None:
    """A dispatcher stopping mid-attempt: its deliveries are due again at once, not after the lease."""
    for claim in claims:
        conn.execute(
            update(webhook_deliveries)
            .where(_D.id == claim.delivery_id, _D.claim_id == claim.claim_id, _D.state == PENDING)
            .values(next_attempt_at_us=now_us, claim_id=None)
        )


# -- replay and the delivery log -----------------------------------------------------------------
def replay(
    conn: Connection, notification_id: str, endpoint_id: str | None, now_us: int
) -> list[tuple[int, str]]:
    """Send a notification again (same id): to the named endpoint even if disabled, else to every
    enabled endpoint whose filter wants it. Returns (delivery id, endpoint id) pairs."""
    notification = conn.execute(
        select(notifications.c.seq, notifications.c.type).where(notifications.c.id == notification_id)
    ).first()
    if notification is None:
        raise NotFound(f"notification_id: no notification with id {notification_id}")
    if endpoint_id is not None:
        targets = [(get_endpoint(conn, endpoint_id).id, True)]
    else:
        active = conn.execute(
            select(_E.id, _E.event_types)
            .where(_E.enabled.is_(True), _E.removed_at_us.is_(None))
            .order_by(_E.id)
        ).all()
        targets = [(e.id, False) for e in active if wants(e.event_types, notification.type)]
    return [
        (_reset_delivery(conn, notification.seq, notification_id, target, forced, now_us), target)
        for target, forced in targets
    ]


def _reset_delivery(
    conn: Connection, seq: int, notification_id: str, endpoint_id: str, forced: bool, now_us: int
) -> int:
    insert_ignoring_duplicates(
        conn, webhook_deliveries, [_new_delivery(seq, notification_id, endpoint_id, now_us, forced=forced)]
    )
    pair = and_(_D.notification_id == notification_id, _D.endpoint_id == endpoint_id)
    conn.execute(
        update(webhook_deliveries)
        .where(pair)
        .values(
            state=PENDING,
            forced=forced,
            round_attempts=0,
            round_started_at_us=None,
            next_attempt_at_us=now_us,
            claim_id=None,
            updated_at_us=now_us,
        )
    )
    return int(conn.execute(select(_D.id).where(pair)).scalar_one())


def list_deliveries(
    conn: Connection,
    *,
    endpoint_id: str | None = None,
    notification_id: str | None = None,
    state: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[DeliveryRecord]:
    """Newest first."""
    query = select(webhook_deliveries, notifications.c.type).join(
        notifications, notifications.c.seq == _D.notification_seq
    )
    for column, value in (
        (_D.endpoint_id, endpoint_id),
        (_D.notification_id, notification_id),
        (_D.state, state),
    ):
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(_D.id < before_id)
    rows = conn.execute(query.order_by(_D.id.desc()).limit(limit)).mappings()
    return [
        DeliveryRecord(
            id=r["id"],
            notification_id=r["notification_id"],
            notification_type=r["type"],
            endpoint_id=r["endpoint_id"],
            state=r["state"],
            attempts=r["attempts"],
            next_attempt_at_us=r["next_attempt_at_us"] if r["state"] == PENDING else None,
            last_status_code=r["last_status_code"],
            last_error=r["last_error"],
            created_at_us=r["created_at_us"],
            updated_at_us=r["updated_at_us"],
        )
        for r in rows
    ]


def attempts_of(conn: Connection, delivery_ids: Sequence[int]) -> dict[int, list[AttemptRecord]]:
    """Each delivery's attempts, oldest first."""
    found: dict[int, list[AttemptRecord]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return found
    rows = conn.execute(
        select(webhook_attempts).where(_A.delivery_id.in_(list(delivery_ids))).order_by(_A.id)
    ).mappings()
    for r in rows:
        found[r["delivery_id"]].append(
            AttemptRecord(
                attempt=r["attempt"],
                attempted_at_us=r["attempted_at_us"],
                status_code=r["status_code"],
                latency_ms=r["latency_ms"],
                error=r["error"],
                response_body=r["response_body"],
                response_headers=r["response_headers"],
            )
        )
    return found


def purge_finished(conn: Connection, created_before_us: int, limit: int) -> int:
    """Delete up to `limit` succeeded or failed deliveries created before the time, with their
    attempts (by the state-and-age index); returns how many deliveries went."""
    ids = [
        row[0]
        for row in conn.execute(
            select(_D.id)
            .where(_D.state.in_((SUCCEEDED, FAILED)), _D.created_at_us < created_before_us)
            .limit(limit)
        )
    ]
    if ids:
        conn.execute(delete(webhook_attempts).where(_A.delivery_id.in_(ids)))
        conn.execute(delete(webhook_deliveries).where(_D.id.in_(ids)))
    return len(ids)
