"""Typed settings: every knob has a working default and a `METERLINE_` environment variable."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METERLINE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///meterline.db",
        description="SQLAlchemy URL: sqlite:///path.db (default) or postgresql://user@host/db",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    log_format: str = Field(default="json", description="json or console")

    # Ingest limits (Metronome's documented rules).
    max_body_bytes: int = 1_048_576
    max_events_per_request: int = 100
    dedup_window_days: int = 34
    max_backdate_days: int = 34
    max_future_hours: int = 24
    max_transaction_id_chars: int = 128

    # Group commit: one writer drains every request waiting and commits them together.
    group_commit_max_events: int = 20_000

    # Evaluator: batch size and how often it looks for events written by other processes.
    evaluator_enabled: bool = True
    # The evaluator and the webhook dispatcher each run in a process of their own beside the API
    # server (every core works, and webhooks never wait for the evaluator's time slices); false:
    # threads inside the server process.
    engine_process: bool = True
    evaluator_batch_events: int = 20_000
    # The most customers one evaluator batch measures: the rest are measured by the next batches,
    # so the first of a burst of crossings commit (and their webhooks leave) early.
    evaluator_batch_customers: int = Field(default=500, ge=1)
    # Engine processes share the event log's partitions by lease: each renews its leases every
    # third of this, and a dead one's partitions are taken over within twice this.
    engine_lease_s: float = Field(default=10.0, gt=0)
    evaluator_poll_interval_s: float = 0.5
    # Customers whose snapshots (contracts, commits, invoices, alerts and their states) the
    # evaluator keeps between batches on SQLite while no other connection writes; 0: none.
    evaluator_cached_customers: int = Field(default=20_000, ge=0)
    # Customers whose headroom (how far their usage is from moving an alert: engine/headroom.py)
    # the engine keeps in memory; 0: measure every customer a batch touches.
    engine_headroom_customers: int = Field(default=1_000_000, ge=0)
    # Event references (ingest aliases, customer ids) whose customer the engine keeps in memory,
    # about 250 bytes each, the least recently used dropped first; 0: each batch reads its own.
    engine_reference_customers: int = Field(default=2_000_000, ge=0)
    # The usage journal (engine/usage_deferral.py): a batch of at least this many usage rows, of
    # fewer than `hot_events_per_row` events each, journals them instead of writing them, and the
    # journal is merged into the usage tables at this many deltas or this age.
    engine_usage_journal_min_rows: int = Field(default=1000, ge=1)
    engine_usage_journal_hot_events_per_row: int = Field(default=4, ge=1)
    engine_usage_journal_max_deltas: int = Field(default=300_000, ge=1)
    engine_usage_journal_max_age_s: float = Field(default=10.0, ge=0)
    # The journal's merges keep the hour rows of open hours in a table of their own (SQLite): an
    # hour stays open this long after it ends, then its rows are sealed this many a batch.
    engine_usage_open_hour_grace_s: float = Field(default=600.0, ge=0)
    engine_usage_seal_rows: int = Field(default=20_000, ge=1)

    # Reservations (/v1/access/reserve and /release): true, a grant is answered once its batch's
    # commit is flushed to disk (it survives a power loss). false: once written to the operating
    # system (SQLite `synchronous=NORMAL` in WAL, PostgreSQL `synchronous_commit=off` for those
    # transactions): a grant still survives the API process being killed (`kill -9`) or
    # crashing, but a power loss or a kernel (or, on PostgreSQL, database server) crash can lose
    # the last moments of grants, so two operations could together pass a hard limit after one.
    # It takes the disk's flush off every reservation's answer.
    reservation_durable_commits: bool = True

    # Invoices move from DRAFT to FINALIZED this long after their period ends.
    invoice_grace_period_hours: int = 24

    # Alert evaluation no event asks for (a new all-customers alert; customers whose measures move
    # with the clock at this instant) runs in chunks of this many customers per evaluator batch.
    alert_sweep_chunk_customers: int = 500

    # How long a verified API token stays cached; revocation takes effect within this.
    token_cache_ttl_s: float = 5.0

    # Largest page any list endpoint returns.
    max_page_size: int = 100

    # A request with an Idempotency-Key gets the first answer to that key again for this long.
    idempotency_key_ttl_hours: float = Field(default=24.0, gt=0)
    # Access streams (/v1/access/stream): how often a server with streams open looks for new alert
    # transitions in the outbox (the engine writes them in another process).
    access_stream_poll_interval_s: float = Field(default=0.05, gt=0)

    # Connections (see api/connections.py): a request's headers must arrive within this, and be
    # at most this large; a kept-alive connection idle this long after a response is closed.
    header_timeout_s: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=65_536, ge=1024)
    keepalive_timeout_s: int = Field(default=5, ge=1)
    # A request's body must arrive within this (bodies are read whole, at most max_body_bytes).
    body_timeout_s: float = Field(default=60.0, gt=0)
    # Open connections at most: past it, the one waiting longest without a request is closed.
    max_connections: int = Field(default=4096, ge=1)
    # File descriptors kept out of the connection cap, for the database, logs and engine pipes.
    descriptor_reserve: int = Field(default=256, ge=16)

    # /health answers 503 past these: evaluation this far behind (seconds since the oldest
    # unevaluated event arrived, or events), an engine part restarted this often within ten
    # minutes, less free disk than this beside a SQLite database.
    health_max_lag_s: float = Field(default=60.0, gt=0)
    health_max_lag_events: int = Field(default=1_000_000, ge=1)
    health_max_recent_restarts: int = Field(default=3, ge=1)
    health_min_free_disk_bytes: int = Field(default=16 * 1_048_576, ge=0)

    # Finished webhook deliveries and their attempts are purged this long after they were created.
    webhook_retention_days: float = Field(default=30.0, gt=0)

    # Webhook delivery: the dispatcher runs inside `serve`, woken by the evaluator's commits.
    webhooks_enabled: bool = True
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_poll_interval_s: float = Field(default=1.0, gt=0)
    # Webhooks to loopback, private, link-local, multicast or unspecified addresses (and keeping
    # receivers' answer bodies in the delivery log) only when the operator allows it.
    webhook_allow_private_networks: bool = False
    # At most this many requests in flight to one endpoint, so a slow receiver starves no other.
    # Requests in flight to one endpoint. A burst of crossings is sent at the receiver's pace:
    # at 4 in flight and 50 ms a round trip, 3,000 webhooks would take 37 s; at 16, 9 s.
    webhook_concurrency_per_endpoint: int = Field(default=16, ge=1)
    # After a secret rotation the previous secret keeps signing (beside the new one) this long.
    webhook_secret_rotation_grace_hours: float = Field(default=24.0, ge=0)
    # Endpoint secrets are stored encrypted (Fernet) with this key; several comma-separated keys
    # decrypt, the first encrypts. Unset: read from (or created in) `secret_key_file`.
    secret_key: SecretStr | None = None
    secret_key_file: str | None = Field(
        default=None,
        description="default: meterline.key beside a SQLite database; PostgreSQL needs a key or this file",
    )

    # Embeddable dashboards (POST /v1/dashboards/getEmbeddableUrl): how long a URL stays valid,
    # which origins may frame the page (CSP frame-ancestors, space-separated; 'self' by default),
    # and the public base URL the links point at (unset: the base URL the API request came to).
    embed_url_ttl_s: float = Field(default=3600.0, gt=0)
    embed_frame_ancestors: str = Field(default="'self'", min_length=1)
    embed_base_url: str | None = None
    # The most an end customer may set a soft or hard limit to on the spend_limits dashboard, in
    # USD cents ($1,000 by default); a URL's `max_spend_limit` option can only lower it.
    embed_max_spend_limit: Decimal = Field(default=Decimal(100_000), ge=0, allow_inf_nan=False)

    def open_horizon_us(self) -> int:
        """How far back billing periods stay open: events may arrive this late, plus the grace."""
        return self.max_backdate_days * US_PER_DAY + self.invoice_grace_period_hours * US_PER_HOUR

    def idempotency_key_ttl_us(self) -> int:
        return round(self.idempotency_key_ttl_hours * US_PER_HOUR)

    def webhook_rotation_grace_us(self) -> int:
        return round(self.webhook_secret_rotation_grace_hours * US_PER_HOUR)

    def webhook_key_file(self) -> Path | None:
        """Where the endpoint-secret key lives when METERLINE_SECRET_KEY is unset (None: nowhere)."""
        if self.secret_key_file:
            return Path(self.secret_key_file).expanduser()
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).expanduser().resolve().parent / "meterline.key"
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
