"""Every table meterline keeps. Migrations in `migrations/versions` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

from meterline.store.types import ExactDecimal, Json

metadata = MetaData()

# BIGINT on PostgreSQL, but INTEGER on SQLite so that it is the rowid alias and autoincrements.
SeqInteger = BigInteger().with_variant(Integer(), "sqlite")

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("revoked_at_us", BigInteger, nullable=True),
)

credit_types = Table(
    "credit_types",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("is_currency", Boolean, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(160), nullable=False),
    Column("custom_fields", Json, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
    # The engine partition that owns the customer's billing (domain/partitions.py), fixed at creation.
    Column("partition", Integer, nullable=False),
    Index("ix_customers_partition_id", "partition", "id"),
    # Metronome's billing_config as given (the customer's account at a billing provider); kept for
    # integrations, read by no billing code.
    Column("billing_config", Json, nullable=True),
)

# An alias names one active customer at a time; archived customers keep their aliases on
# record but release them for reuse.
customer_aliases = Table(
    "customer_aliases",
    metadata,
    Column("customer_id", String(36), ForeignKey("customers.id"), primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Index(
        "ux_customer_aliases_active_alias",
        "alias",
        unique=True,
        sqlite_where=text("active"),
        postgresql_where=text("active"),
    ),
    # Looking an alias up (ingest resolving customers, listing by alias) without a scan: SQLite
    # cannot use the partial index above for `active = 1`.
    Index("ix_customer_aliases_alias", "alias", "active", "customer_id"),
)

billable_metrics = Table(
    "billable_metrics",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("aggregation_type", String(16), nullable=False),
    Column("aggregation_key", String(256), nullable=True),
    Column("event_type_filter", Json, nullable=True),
    Column("property_filters", Json, nullable=False),
    Column("group_keys", Json, nullable=False),
    Column("custom_fields", Json, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
)

# The event log: append-only, ordered by `seq`. Deduplication lives in `event_dedup`, a compact
# table of 16-byte digests, so the log itself carries no random-key index.
events = Table(
    "events",
    metadata,
    Column("seq", SeqInteger, primary_key=True, autoincrement=True),
    Column("transaction_id", String(128), nullable=False),
    Column("customer_ref", String(256), nullable=False),
    Column("event_type", String(256), nullable=False),
    Column("timestamp_us", BigInteger, nullable=False),
    Column("properties", Text, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
    # partition_of(customer_ref), written at append so that an engine reads its partitions' events
    # only; null for events appended before there were partitions (computed when read).
    Column("partition", Integer, nullable=True),
)

event_dedup = Table(
    "event_dedup",
    metadata,
    Column("transaction_digest", LargeBinary(16), primary_key=True),
    Column("event_seq", BigInteger, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
    # Time-ordered, so cheap to maintain; lets expired keys be purged without a scan.
    Index("ix_event_dedup_received_at_us", "received_at_us"),
    sqlite_with_rowid=False,
)

# Events the evaluator could not count, and why, so they can be found later.
unmatched_events = Table(
    "unmatched_events",
    metadata,
    Column("event_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("reason", String(32), nullable=False),
    Column("customer_id", String(36), nullable=True),
)

# Each partition of the event log: which engine holds it until when, and the last log position
# whose effects for the partition are committed (moved in the same transaction as the effects).
engine_partitions = Table(
    "engine_partitions",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(64), nullable=True),
    Column("lease_until_us", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
)

# The engine processes alive (their heartbeat renewed with their leases), so that each can take
# its fair share of the partitions.
engine_members = Table(
    "engine_members",
    metadata,
    Column("member_id", String(64), primary_key=True),
    Column("alive_until_us", BigInteger, nullable=False),
)

# How far a reader of a log has applied it, moved in the same transaction as the reader's effects:
# the webhook fan-out over the outbox (`webhook_fanout`). The evaluator's positions in the event
# log are per partition, in engine_partitions.
log_cursors = Table(
    "log_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# Keys the server generates for itself on first use, shared by every process on the database
# (today: the key that signs pagination cursors when METERLINE_SECRET_KEY is unset).
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("key", LargeBinary, nullable=False),
)


def _aggregate_columns() -> list[Column[object]]:
    return [
        Column("event_count", BigInteger, nullable=False),
        Column("total", ExactDecimal, nullable=False),
        Column("maximum", ExactDecimal, nullable=True),
        Column("latest", ExactDecimal, nullable=True),
        Column("latest_ts_us", BigInteger, nullable=False),
        Column("latest_seq", BigInteger, nullable=False),
    ]


# One row: a number that every change to the catalog (credit types, metrics, products, rate
# cards, rates) moves, by triggers (migration 0014), so the engine knows when what it derived
# from the catalog may be out of date without any writer having to say so.
catalog_version = Table(
    "catalog_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# One row: a number that every update or delete of a customer or an ingest alias moves, by
# triggers (migration 0021), so the engine knows when the customers it resolved references to may
# have changed (`engine.customer_refs`).
customer_directory_version = Table(
    "customer_directory_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Usage per (customer, metric, hour, group): what HOUR and DAY windows of /v1/usage read.
usage_hourly = Table(
    "usage_hourly",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("metric_id", String(36), primary_key=True),
    Column("hour_us", BigInteger, primary_key=True),
    Column("group_values", String(1024), primary_key=True),
    *_aggregate_columns(),
    # Stored in key order on SQLite: an update dirties one page, not two (migration 0020).
    sqlite_with_rowid=False,
)

# The hour rows of the hours still open (the current one, and the last while late events may
# reach it), kept apart from `usage_hourly` by the engine's journal merges on SQLite
# (`store.usage.merge_journal`): a table of about one row per customer, whose pages a merge of
# many deltas writes many rows to each, where among every hour's rows each delta dirtied a page
# of its own. Sealed into `usage_hourly` once its hour has passed (`store.usage.seal_open_hours`).
# Readers add a key's row here to its row there.
usage_hourly_open = Table(
    "usage_hourly_open",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("metric_id", String(36), primary_key=True),
    Column("hour_us", BigInteger, primary_key=True),
    Column("group_values", String(1024), primary_key=True),
    *_aggregate_columns(),
    # The highest log position folded in (what the month's row says once sealed into it).
    Column("folded_seq", BigInteger, nullable=False, server_default=text("-1")),
    Index("ix_usage_hourly_open_hour", "hour_us"),  # the oldest open hour, and its rows to seal
    sqlite_with_rowid=False,
)

# Usage per (customer, metric, calendar month, group): what pricing reads for a billing period
# that is exactly a calendar month (`domain.periods`); period_start_us/period_end_us are the
# month's bounds.
usage_monthly = Table(
    "usage_monthly",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("metric_id", String(36), primary_key=True),
    Column("period_start_us", BigInteger, primary_key=True),
    Column("group_values", String(1024), primary_key=True),
    Column("period_end_us", BigInteger, nullable=False),
    *_aggregate_columns(),
    # The highest log position folded in: a customer's headroom stored as of an earlier one no
    # longer holds (`store.headrooms`).
    Column("folded_seq", BigInteger, nullable=False, server_default=text("-1")),
    # Stored in key order on SQLite: an update dirties one page, not two (migration 0020).
    sqlite_with_rowid=False,
)

# Each customer's headroom as of its last full measurement (`engine.headroom`), so that an engine
# starting or taking over need not measure again customers whose usage has not moved since.
customer_headrooms = Table(
    "customer_headrooms",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("as_of_seq", BigInteger, nullable=False),
    Column("catalog_version", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    # Stored in key order on SQLite: an update dirties one page, not two (migration 0020).
    sqlite_with_rowid=False,
)

# Usage folded by the engine and not yet merged into the usage tables (`store.usage_journal`):
# one row per batch and shard (a pure function of the customer id), its hour deltas and distinct
# values packed in `body`. Readers add their customers' shards' rows to the stored rows.
usage_journal = Table(
    "usage_journal",
    metadata,
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("through_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("deltas", Integer, nullable=False),
    Column("written_at_us", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

# Distinct values of UNIQUE metrics, per hour (the period's distinct set is their union).
usage_unique_values = Table(
    "usage_unique_values",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("metric_id", String(36), primary_key=True),
    Column("hour_us", BigInteger, primary_key=True),
    Column("group_values", String(1024), primary_key=True),
    Column("value", String(1024), primary_key=True),
    # Stored in key order on SQLite: an update dirties one page, not two (migration 0020).
    sqlite_with_rowid=False,
)

# The contract-pricing catalog: products, rate cards, rates.

products = Table(
    "products",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("custom_fields", Json, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
)

# A product's history: position 0 is the initial version (every field, no starting_at); each
# update adds a row holding only the fields it changes, in force from its starting_at.
product_versions = Table(
    "product_versions",
    metadata,
    Column("product_id", String(36), ForeignKey("products.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("starting_at_us", BigInteger, nullable=True),
    Column("fields", Json, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
)

rate_cards = Table(
    "rate_cards",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("fiat_credit_type_id", String(36), ForeignKey("credit_types.id"), nullable=False),
    Column("custom_fields", Json, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
)

# How many fiat units one unit of a custom pricing unit is worth on a rate card. Never changed
# once set (as in Metronome), so rates priced in the custom unit keep one meaning.
rate_card_conversions = Table(
    "rate_card_conversions",
    metadata,
    Column("rate_card_id", String(36), ForeignKey("rate_cards.id"), primary_key=True),
    Column("custom_credit_type_id", String(36), ForeignKey("credit_types.id"), primary_key=True),
    Column("fiat_per_custom_credit", ExactDecimal, nullable=False),
    Column("position", Integer, nullable=False),
)

# Names a rate card can be found by over a time range. Archived rate cards keep their aliases on
# record but release them (active false) for other rate cards.
rate_card_aliases = Table(
    "rate_card_aliases",
    metadata,
    Column("rate_card_id", String(36), ForeignKey("rate_cards.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("name", String(256), nullable=False),
    Column("starting_at_us", BigInteger, nullable=True),
    Column("ending_before_us", BigInteger, nullable=True),
    Column("active", Boolean, nullable=False),
    Index("ix_rate_card_aliases_name", "name"),
)

# One price for one product (and pricing group values) over [starting_at, ending_before). The
# ranges of rates with the same (rate card, product, pricing group values) never overlap: adding
# a rate reshapes the older ones (see domain/rates.py). `seq` orders rates for pagination.
rates = Table(
    "rates",
    metadata,
    Column("seq", SeqInteger, primary_key=True, autoincrement=True),
    Column("rate_card_id", String(36), ForeignKey("rate_cards.id"), nullable=False),
    Column("product_id", String(36), ForeignKey("products.id"), nullable=False),
    # Canonical JSON (sorted keys) so that equal value maps compare equal in SQL.
    Column("pricing_group_values", String(1024), nullable=False),
    Column("entitled", Boolean, nullable=False),
    Column("rate_type", String(16), nullable=False),
    Column("credit_type_id", String(36), ForeignKey("credit_types.id"), nullable=False),
    Column("price", ExactDecimal, nullable=True),
    # TIERED: [{"price": "<decimal>", "size": "<decimal>" | null}], decimals as text to stay exact.
    Column("tiers", Json, nullable=True),
    Column("starting_at_us", BigInteger, nullable=False),
    Column("ending_before_us", BigInteger, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    # MONTHLY, QUARTERLY, ANNUAL or WEEKLY on rates of SUBSCRIPTION products; NULL on the others.
    Column("billing_frequency", String(16), nullable=True),
    Index("ix_rates_card_product", "rate_card_id", "product_id", "pricing_group_values", "starting_at_us"),
)


# Contracts, and the commits and credits that customers draw down.

contracts = Table(
    "contracts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=False, index=True),
    Column("name", String(200), nullable=True),
    Column("rate_card_id", String(36), ForeignKey("rate_cards.id"), nullable=False),
    Column("starting_at_us", BigInteger, nullable=False),
    Column("ending_before_us", BigInteger, nullable=True),
    Column("schedule_frequency", String(16), nullable=False),
    Column("schedule_day", String(16), nullable=False),
    Column("billing_anchor_us", BigInteger, nullable=True),
    Column("multiplier_override_prioritization", String(24), nullable=False),
    # Overrides as given (validated), with their ids: they only ever change with the contract.
    Column("overrides", Text, nullable=False),
    Column("custom_fields", Json, nullable=False),
    Column("uniqueness_key", String(128), nullable=True, unique=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
    # What integrations send that changes no amount (net_payment_terms_days,
    # salesforce_opportunity_id, total_contract_value, billing_provider_configuration), numbers as
    # decimal text; NULL: none given.
    Column("integration_fields", Json, nullable=True),
    # Scheduled charges as checked, with their ids and their schedule items' (recurring schedules
    # expanded): [{id, product_id, name, custom_fields, schedule: {credit_type_id, schedule_items}}].
    Column("scheduled_charges", Json, nullable=True),
    # "ALL": schedule items dated at a usage period's end go on its usage invoice; NULL: their own.
    Column("scheduled_charges_on_usage_invoices", String(8), nullable=True),
    # Recurring commits and credits as given (store/recurring_commits.py), or null.
    Column("recurring", Json, nullable=True),
    # Threshold billing configurations (store/threshold_configs.py), or null.
    Column("thresholds", Json, nullable=True),
    # The contract's subscriptions with their quantity changes, as JSON (store/subscriptions.py).
    Column("subscriptions", Text, nullable=False, server_default="[]"),
    # The contract this one took over from (contracts/create `transition`), RENEWAL or SUPERSEDE,
    # and its future_invoice_behavior.trueup; NULL: none. A contract is taken over once at most.
    Column("transition_from_contract_id", String(36), nullable=True),
    Column("transition_type", String(16), nullable=True),
    Column("transition_trueup", String(8), nullable=True),
    Index("ux_contracts_transition_from", "transition_from_contract_id", unique=True),
)

# Commits (PREPAID, POSTPAID) and credits (CREDIT), on a contract or on the customer.
# The edits of each contract, as Metronome's v2 contracts/getEditHistory shows them: one row per
# request that changed the contract (v2 contracts/edit, an end date moved, a contract taking over
# from it), written in that request's transaction. `edit` is the exact JSON of what it added,
# updated, archived and removed (numbers as JSON numbers, read back as Decimal); `seq` orders them.
contract_edits = Table(
    "contract_edits",
    metadata,
    Column("seq", SeqInteger, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("contract_id", String(36), ForeignKey("contracts.id"), nullable=False, index=True),
    Column("edited_at_us", BigInteger, nullable=False),
    Column("edit", Text, nullable=False),
)


commits = Table(
    "commits",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=False, index=True),
    Column("contract_id", String(36), ForeignKey("contracts.id"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("product_id", String(36), ForeignKey("products.id"), nullable=False),
    Column("name", String(200), nullable=True),
    Column("description", Text, nullable=True),
    Column("priority", ExactDecimal, nullable=True),
    Column("rate_type", String(16), nullable=False),
    Column("applicable_product_ids", Json, nullable=False),
    Column("applicable_product_tags", Json, nullable=False),
    Column("specifiers", Json, nullable=False),
    Column("credit_type_id", String(36), ForeignKey("credit_types.id"), nullable=False),
    # [{id, amount, starting_at_us, ending_before_us}], amounts as decimal strings.
    Column("access_segments", Json, nullable=False),
    Column("invoice_schedule", Json, nullable=True),
    Column("custom_fields", Json, nullable=False),
    Column("uniqueness_key", String(128), nullable=True, unique=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
    # The recurring commit or credit (contracts.recurring) that created this one for a period.
    Column("recurring_id", String(36), nullable=True),
    # The share of its unused balance that rolls over when its contract transitions; NULL: none.
    Column("rollover_fraction", ExactDecimal, nullable=True),
    # A rollover commit: {commit_id, contract_id, segments: {segment id: amount}} of the commit
    # whose unused balance it took; NULL for every other commit.
    Column("rolled_over_from", Json, nullable=True),
)

# Live draft and finalized invoices (usage and scheduled): the billing snapshot the evaluator keeps.
invoices = Table(
    "invoices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), nullable=False),
    Column("contract_id", String(36), nullable=False),
    Column("credit_type_id", String(36), nullable=False),
    Column("type", String(24), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("subtotal", ExactDecimal, nullable=False),
    Column("total", ExactDecimal, nullable=False),
    # Spend before drawdown per credit type and the line items, as exact JSON text.
    Column("spend_by_credit_type", Text, nullable=False),
    Column("line_items", Text, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("finalized_at_us", BigInteger, nullable=True),
    # The voided invoice this one was regenerated from (invoices/regenerate), if any.
    Column("regenerated_from_invoice_id", String(36), nullable=True, unique=True),
    # The schedule items (commit purchases, scheduled charges) the invoice bills: JSON list of ids.
    Column("schedule_item_ids", Json, nullable=True),
    Index("ix_invoices_customer_start", "customer_id", "start_us"),
    Index("ix_invoices_status_end", "status", "end_us"),
)

# What each invoice drew from each commit segment (the AUTOMATED_INVOICE_DEDUCTION ledger entries).
commit_deductions = Table(
    "commit_deductions",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("segment_id", String(36), primary_key=True),
    Column("commit_id", String(36), nullable=False, index=True),
    Column("amount", ExactDecimal, nullable=False),
    Column("at_us", BigInteger, nullable=False),
)

# Customers whose billing must be recomputed although no event arrived (a new contract, commit...).
billing_requests = Table(
    "billing_requests",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("requested_at_us", BigInteger, nullable=False),
)


# Threshold alerts, their per-customer state, and the notification outbox.

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("alert_type", String(80), nullable=False),
    Column("threshold", ExactDecimal, nullable=False),
    Column("credit_type_id", String(36), nullable=True),
    # NULL: the alert applies to every customer, present and future.
    Column("customer_id", String(36), nullable=True, index=True),
    Column("billable_metric_id", String(36), nullable=True),
    Column("invoice_types_filter", Json, nullable=True),
    Column("group_values", Json, nullable=True),
    Column("custom_field_filters", Json, nullable=True),
    Column("credit_grant_type_filters", Json, nullable=True),
    Column("evaluate_on_create", Boolean, nullable=False),
    Column("uniqueness_key", String(128), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("archived_at_us", BigInteger, nullable=True),
    # Set by /v1/customFields/setValues (alerts are created without); NULL: none.
    Column("custom_fields", Json, nullable=True),
    # meterline's extension: a customer is denied access while the alert is in alarm for it.
    Column("blocking", Boolean, nullable=False, server_default=false()),
    # "soft" or "hard" for the alerts /v1/spend-limits/set manages (a customer's limits in a
    # credit type); NULL for every other alert.
    Column("spend_limit", String(8), nullable=True),
    # meterline's extension: a spend_forecast_reached alert's pace window, in hours (NULL: the
    # default, 24; and for every other type).
    Column("forecast_window_hours", Integer, nullable=True),
    # low_remaining_seat_balance_reached: {"seat_group_key", "seat_group_value"?}; NULL otherwise.
    Column("seat_filter", Json, nullable=True),
    # A uniqueness key is held by one alert until released on archive.
    Index(
        "ux_alerts_uniqueness_key",
        "uniqueness_key",
        unique=True,
        sqlite_where=text("uniqueness_key IS NOT NULL"),
        postgresql_where=text("uniqueness_key IS NOT NULL"),
    ),
    # The blocking alerts in force, by customer (NULL: of every customer): what access decisions read.
    Index(
        "ix_alerts_blocking_in_force",
        "customer_id",
        sqlite_where=text("blocking AND archived_at_us IS NULL"),
        postgresql_where=text("blocking AND archived_at_us IS NULL"),
    ),
    # The spend limits in force, by customer and credit type (spend-limits/list pages through them).
    Index(
        "ix_alerts_active_spend_limits",
        "customer_id",
        "credit_type_id",
        sqlite_where=text("spend_limit IS NOT NULL AND archived_at_us IS NULL"),
        postgresql_where=text("spend_limit IS NOT NULL AND archived_at_us IS NULL"),
    ),
)

# One row per (alert, customer, scope): scope is "" or, for per-segment alerts, the segment id.
alert_states = Table(
    "alert_states",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("customer_id", String(36), primary_key=True),
    Column("scope", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("triggered_by", String(32), nullable=True),
    Column("measure", ExactDecimal, nullable=True),
    Column("period_start_us", BigInteger, nullable=True),
    Column("updated_at_us", BigInteger, nullable=False),
    Index("ix_alert_states_customer", "customer_id"),
)

# The outbox: one row per transition, written in the transaction that changed the state.
notifications = Table(
    "notifications",
    metadata,
    Column("seq", SeqInteger, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("type", String(120), nullable=False),
    Column("alert_id", String(36), nullable=True),
    Column("customer_id", String(36), nullable=True),
    Column("payload", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

# Alerts whose customers must be (re)evaluated in bounded chunks (a new alert), one sweep per
# home partition, each resumable.
alert_sweeps = Table(
    "alert_sweeps",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("after_customer_id", String(36), nullable=True),
    Column("triggered_by", String(32), nullable=False),
)

# Alert states the API asks the engine to resolve (an archived alert's in-alarm states, a reset),
# per home partition, so that alert states have one writer: the engine holding the partition.
# customer_id "" means every customer of the partition.
alert_resolutions = Table(
    "alert_resolutions",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", String(36), primary_key=True),
    Column("cause", String(32), nullable=False),
    Column("requested_at_us", BigInteger, nullable=False),
)

# When each customer's alert measures next move with the clock alone (a billing period ending, a
# segment starting or expiring, days remaining reaching a threshold): the evaluator re-measures a
# customer when its instant comes, so time costs nothing for customers whose instant is far off.
alert_wakeups = Table(
    "alert_wakeups",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("due_us", BigInteger, nullable=False),
    Index("ix_alert_wakeups_due_us", "due_us"),
)


# Webhook delivery: endpoints, one delivery per (notification, endpoint), and every attempt.

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    # NULL: every alerts.* type but the _resolved ones; otherwise exactly the listed types.
    Column("event_types", Json, nullable=True),
    # Fernet ciphertexts (the dispatcher must sign, so secrets cannot be hashed); the previous
    # secret signs too until it expires, after a rotation.
    Column("secret_ciphertext", Text, nullable=False),
    Column("previous_secret_ciphertext", Text, nullable=True),
    Column("previous_secret_expires_at_us", BigInteger, nullable=True),
    # The endpoint gets the notifications written after it was registered: outbox seq > this.
    Column("starts_after_seq", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(200), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("removed_at_us", BigInteger, nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", SeqInteger, primary_key=True, autoincrement=True),
    Column("notification_seq", BigInteger, nullable=False),
    Column("notification_id", String(36), nullable=False),
    Column("endpoint_id", String(36), nullable=False),
    Column("state", String(16), nullable=False),
    # Replayed to an endpoint named explicitly: sent even while the endpoint is disabled.
    Column("forced", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    # Attempts since the delivery was created or last replayed; the retry schedule's position.
    Column("round_attempts", Integer, nullable=False),
    Column("round_started_at_us", BigInteger, nullable=True),
    # When pending: due time; while an attempt is in flight, the end of its lease.
    Column("next_attempt_at_us", BigInteger, nullable=True),
    Column("claim_id", String(36), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Index("ux_webhook_deliveries_pair", "notification_id", "endpoint_id", unique=True),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at_us"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "state", "next_attempt_at_us"),
    Index("ix_webhook_deliveries_claim", "claim_id"),
    # Deliveries by state and age: the oldest undelivered (health), the retention purge.
    Index("ix_webhook_deliveries_state_age", "state", "created_at_us"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", SeqInteger, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at_us", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    # The first KiB of the receiver's answer, kept only where private destinations are allowed.
    Column("response_body", Text, nullable=True),
    # The answer's headers as a JSON object (at most a KiB of them).
    Column("response_headers", Text, nullable=True),
)


# Custom field keys added per entity type (/v1/customFields/addKey); a key that enforces
# uniqueness keeps any two active entities of that type from holding the same value for it.
custom_field_keys = Table(
    "custom_field_keys",
    metadata,
    Column("entity", String(32), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("enforce_uniqueness", Boolean, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)


# Idempotency-Key: the answer to each keyed request that wrote something, replayed to a request
# repeating it until the key expires. A row is inserted (claiming the key) and completed in the
# transaction that applied the request, so a committed row always holds its answer.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", SeqInteger, primary_key=True, autoincrement=True),
    # The API token's name: keys belong to the client that sent them.
    Column("client", String(200), nullable=False),
    Column("key", String(255), nullable=False),
    # SHA-256 of the method, path, query and body: the same key with another request is refused.
    Column("request_sha256", String(64), nullable=False),
    Column("request_line", Text, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Index("ux_idempotency_keys_client_key", "client", "key", unique=True),
    Index("ix_idempotency_keys_expires_at_us", "expires_at_us"),
)


# Reservations (meterline's extension, /v1/access/reserve): an amount held against a customer's
# hard spend limit until released, settled by usage or expired. Written by the API only; the
# engine records settlements in a table of its own (one writer a table).
reservations = Table(
    "reservations",
    metadata,
    Column("id", String(128), primary_key=True),  # the client's reservation_id
    Column("customer_id", String(36), nullable=False),
    Column("credit_type_id", String(36), nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    # Set once the reservation no longer holds: "released", "settled" or "expired".
    Column("closed_as", String(16), nullable=True),
    Column("closed_at_us", BigInteger, nullable=True),
    # The reservations still holding, by customer and credit type: what a reservation sums.
    Index(
        "ix_reservations_open",
        "customer_id",
        "credit_type_id",
        sqlite_where=text("closed_at_us IS NULL"),
        postgresql_where=text("closed_at_us IS NULL"),
    ),
)

# A reservation settled by the engine: the first evaluated usage event of its customer whose
# properties carry its `reservation_id` (written in the batch that folds the event's usage).
reservation_settlements = Table(
    "reservation_settlements",
    metadata,
    Column("reservation_id", String(128), primary_key=True),
    Column("customer_id", String(36), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the settling event's position in the log
    Column("settled_at_us", BigInteger, nullable=False),
)

# The current period's spend of each customer with a hard spend limit, in its credit type, as the
# engine last measured it in full (what a reservation is decided on while it still holds: no
# usage folded for the customer since `as_of_seq`, the same catalog, no recompute pending, before
# `valid_until_us`). Written by the engine only.
customer_spend = Table(
    "customer_spend",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("credit_type_id", String(36), primary_key=True),
    Column("spend", ExactDecimal, nullable=False),
    Column("as_of_seq", BigInteger, nullable=False),
    Column("catalog_version", BigInteger, nullable=False),
    Column("valid_until_us", BigInteger, nullable=True),  # NULL: no instant ends it
)
