"""Typed settings: every knob has a working default and a `METERLINE_` environment variable."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    evaluator_batch_events: int = 20_000
    evaluator_poll_interval_s: float = 0.5

    # Invoices move from DRAFT to FINALIZED this long after their period ends.
    invoice_grace_period_hours: int = 24

    # Time-driven alert evaluation (periods rolling over, segments starting or expiring, days
    # remaining): every customer with alerts is re-measured this often, in bounded chunks.
    alert_sweep_interval_s: float = 60.0
    alert_sweep_chunk_customers: int = 500

    # How long a verified API token stays cached; revocation takes effect within this.
    token_cache_ttl_s: float = 5.0

    # Largest page any list endpoint returns.
    max_page_size: int = 100


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
