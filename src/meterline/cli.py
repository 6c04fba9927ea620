"""The `meterline` command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from meterline.domain.errors import MeterlineError
from meterline.logging import configure_logging
from meterline.settings import Settings, get_settings

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table
    from sqlalchemy import Connection

    from meterline.delivery.secrets import SecretBox
    from meterline.store.db import Database
    from meterline.store.webhooks import AttemptRecord, DeliveryRecord

T = TypeVar("T")
app = typer.Typer(
    help="meterline: self-hosted, Metronome-compatible usage-based billing with real-time spend alerts.\n\n"
    "Every setting can also be given as an environment variable prefixed METERLINE_ "
    "(for example METERLINE_DATABASE_URL=postgresql://user@host/db).",
    no_args_is_help=True,
    add_completion=False,
)
tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
webhooks_app = typer.Typer(
    help="Webhook endpoints (secrets shown once, stored encrypted), the delivery log, and replays.",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")
console = Console(stderr=True, soft_wrap=True)  # messages hold ids: the terminal wraps them, rich never cuts


def _settings(database_url: str | None) -> Settings:
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    configure_logging(settings.log_level, settings.log_format)
    return settings


DatabaseOption = typer.Option(
    None,
    "--database-url",
    help="The database [default: METERLINE_DATABASE_URL, else sqlite:///meterline.db in the current"
    " directory]. Give every command the same one as `serve`.",
)
UNBOUNDED_WIDTH = 100_000
TEXT_COLUMN_WIDTH = 48
JsonOption = typer.Option(False, "--json", help="Print a JSON array instead of a table.")


def _table(*columns: str, prose: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A table whose cells are printed whole (ids, URLs, times) but for the `prose` columns (errors,
    bodies, lists), which wrap within TEXT_COLUMN_WIDTH."""
    from rich.table import Column, Table  # imported by the commands that print one, not by `serve`

    return Table(
        *(
            Column(name, max_width=TEXT_COLUMN_WIDTH) if name in prose else Column(name, no_wrap=True)
            for name in columns
        ),
        title=title,
    )


def _show(table: Table) -> None:
    """Print a table on stdout with every id whole, however narrow the terminal (or 80 columns
    when stdout is not one): rich would shrink columns to fit, cutting ids, so the console is made
    as wide as the table needs and the terminal wraps the lines instead."""
    from rich.measure import Measurement

    out = Console()
    needed = Measurement.get(out, out.options.update_width(UNBOUNDED_WIDTH), table).maximum
    if needed > out.width:
        out = Console(width=needed)
    out.print(table)


def _print_json(rows: Iterable[dict[str, Any]]) -> None:
    print(json.dumps(list(rows), indent=2))


def _progress(label: str) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    return Progress(*columns, console=console)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [default: 127.0.0.1, METERLINE_HOST]."),
    port: int = typer.Option(None, help="Port to listen on [default: 8080, METERLINE_PORT]."),
    database_url: str | None = DatabaseOption,
    evaluator: bool = typer.Option(
        None, "--evaluator/--no-evaluator", help="Run the evaluator beside the server [default: on]."
    ),
    engine: bool = typer.Option(
        True,
        "--engine/--no-engine",
        help="Run the engine (evaluator and webhook delivery) beside the server; --no-engine for an "
        "API server whose engine runs elsewhere (`meterline engine`, PostgreSQL).",
    ),
) -> None:
    """Run the API server and, beside it, the engine. SQLite databases are created and migrated automatically."""
    _share_metrics_between_processes()
    settings = _settings(database_url)
    if evaluator is not None:
        settings = settings.model_copy(update={"evaluator_enabled": evaluator})
    if not engine:
        settings = settings.model_copy(update={"evaluator_enabled": False, "webhooks_enabled": False})
    if settings.engine_process and (settings.evaluator_enabled or settings.webhooks_enabled):
        from meterline.runtime.fork_server import start_early

        start_early()  # imports meterline for the engine's processes while the server does too
    import uvicorn

    from meterline.api.connections import connection_cap, guarded_protocol
    from meterline.logging import get_logger
    from meterline.runtime.gc_tuning import tune_for_long_running
    from meterline.runtime.server import create_app

    application = create_app(settings)
    tune_for_long_running()
    protocol = guarded_protocol(
        settings.header_timeout_s,
        settings.max_header_bytes,
        connection_cap(settings.max_connections, settings.descriptor_reserve),
    )
    host, port = host or settings.host, port or settings.port
    get_logger("meterline.server").info("listening", url=f"http://{host}:{port}")
    uvicorn.run(
        application,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=settings.keepalive_timeout_s,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


@app.command("engine")
def engine_command(database_url: str | None = DatabaseOption) -> None:
    """Run the engine alone: the evaluator and webhook delivery, sharing the event log's partitions
    with every other `meterline engine` on the same PostgreSQL database (stop with Ctrl-C or SIGTERM)."""
    import signal
    import threading

    from meterline.runtime.engine_processes import run_engine
    from meterline.runtime.server import prepare_database

    settings = _settings(database_url)
    prepare_database(settings).dispose()  # SQLite: created and migrated; PostgreSQL: must be current
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    run_engine(settings, stop)


def _share_metrics_between_processes() -> None:
    """The engine's processes count into files the server's /metrics sums (prometheus-client's
    multiprocess mode): a fresh folder per server, named before prometheus-client is imported,
    inherited by the processes it starts, removed when it exits."""
    import atexit
    import os
    import shutil
    import tempfile

    variable = "PROMETHEUS_MULTIPROC_DIR"  # meterline.metrics.MULTIPROCESS_ENV, not imported yet
    if os.environ.get(variable):
        return  # the operator's own folder
    folder = tempfile.mkdtemp(prefix="meterline-metrics-")
    os.environ[variable] = folder
    atexit.register(shutil.rmtree, folder, True)


@app.command()
def migrate(database_url: str | None = DatabaseOption) -> None:
    """Create or upgrade the database schema (SQLite or PostgreSQL) to the current version.

    A PostgreSQL database that does not exist yet is created first, when the user may create one."""
    from sqlalchemy.engine import make_url

    from meterline.store.db import Database
    from meterline.store.migrate import (
        create_postgres_database_if_missing,
        current_revision,
        pending_revisions,
        upgrade_to_head,
    )

    url = _settings(database_url).database_url
    if create_postgres_database_if_missing(url):
        console.print(f"created the database {make_url(url).database}")
    db = Database(url)
    with _progress("migrating") as progress:
        task = progress.add_task("revisions", total=pending_revisions(db))
        upgrade_to_head(db, on_revision=lambda _revision: progress.advance(task))
    console.print(f"schema is at revision {current_revision(db)} ({db.dialect})")
    db.dispose()


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for METERLINE_SECRET_KEY, which encrypts webhook endpoint secrets.

    Needed with PostgreSQL (with SQLite a key file is made beside the database): give every server
    and the CLI the same one, e.g. export METERLINE_SECRET_KEY=$(meterline secret-key)."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())


@app.command()
def evaluate(
    database_url: str | None = DatabaseOption,
    follow: bool = typer.Option(
        True, "--follow/--once", help="Keep tailing the log, or stop when caught up."
    ),
) -> None:
    """Run the evaluator alone (for a server started with --no-evaluator, or to catch up a backlog)."""
    from meterline.runtime.evaluator import evaluator_from_settings
    from meterline.runtime.gc_tuning import tune_for_long_running
    from meterline.store import event_log
    from meterline.store.db import Database
    from meterline.store.migrate import upgrade_to_head

    settings = _settings(database_url)
    db = Database(settings.database_url)
    if db.is_sqlite:
        upgrade_to_head(db)
    worker = evaluator_from_settings(db, settings)
    tune_for_long_running()
    if follow:
        worker.run_forever()
        return
    with db.log_read() as conn:
        end = event_log.last_seq(conn)
    with _progress("evaluating") as progress:
        task = progress.add_task("events", total=end)
        while (result := worker.run_once()).events:
            progress.update(task, completed=min(result.position, end))
        progress.update(task, completed=end)
    db.dispose()


@tokens_app.command("create")
def tokens_create(name: str, database_url: str | None = DatabaseOption) -> None:
    """Create an API token and print it as the last line (it is stored hashed and shown only once)."""
    from meterline.store import tokens
    from meterline.store.db import Database
    from meterline.store.migrate import upgrade_to_head

    db = Database(_settings(database_url).database_url)
    if db.is_sqlite:
        upgrade_to_head(db)
    with db.write() as conn:
        token_id, token = tokens.create_token(conn, name)
    db.dispose()
    console.print(f"created API token {token_id} ({name}); store it now, it will not be shown again:")
    print(token)


@tokens_app.command("list")
def tokens_list(database_url: str | None = DatabaseOption, as_json: bool = JsonOption) -> None:
    """List API tokens (never the tokens themselves)."""
    from meterline.domain.timeutil import format_rfc3339
    from meterline.store import tokens

    db = _open_database(_settings(database_url))
    with db.read() as conn:
        found = tokens.list_tokens(conn)
    db.dispose()
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "created_at": format_rfc3339(t.created_at_us),
            "revoked_at": format_rfc3339(t.revoked_at_us) if t.revoked_at_us else None,
        }
        for t in found
    ]
    if as_json:
        _print_json(rows)
        return
    table = _table("id", "name", "created", "revoked", prose=("name",))
    for row in rows:
        table.add_row(row["id"], row["name"], row["created_at"], row["revoked_at"] or "")
    _show(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, database_url: str | None = DatabaseOption) -> None:
    """Revoke an API token by id; requests using it are refused within METERLINE_TOKEN_CACHE_TTL_S."""
    from meterline.domain.errors import NotFound
    from meterline.store import tokens
    from meterline.store.db import Database

    db = Database(_settings(database_url).database_url)
    try:
        with db.write() as conn:
            tokens.revoke_token(conn, token_id)
    except NotFound as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    console.print(f"revoked {token_id}")


# -- webhooks ------------------------------------------------------------------------------------
def _open_database(settings: Settings) -> Database:
    from meterline.store.db import Database
    from meterline.store.migrate import upgrade_to_head

    db = Database(settings.database_url)
    if db.is_sqlite:
        upgrade_to_head(db)
    return db


def _write(settings: Settings, work: Callable[[Connection], T]) -> T:
    """Run `work` in one write transaction; a refusal is printed and exits 1, never a traceback."""
    db = _open_database(settings)
    try:
        with db.write() as conn:
            return work(conn)
    except MeterlineError as error:
        _fail(error)
    finally:
        db.dispose()


def _fail(error: MeterlineError) -> NoReturn:
    console.print(f"[red]{error.message}[/red]")
    raise typer.Exit(1)


def _secret_box(settings: Settings) -> SecretBox:
    from meterline.delivery.secrets import require_box
    from meterline.runtime.webhooks import secret_box

    try:
        return require_box(secret_box(settings))
    except MeterlineError as error:
        _fail(error)


def _split_types(types: str | None) -> list[str] | None:
    return None if types is None else [t.strip() for t in types.split(",") if t.strip()]


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    secret: str | None = typer.Option(
        None, help="whsec_ + base64 of 24-64 bytes; generated (and printed once) when omitted."
    ),
    types: str | None = typer.Option(
        None,
        help="Comma-separated notification types, e.g. alerts.spend_threshold_reached,"
        "alerts.spend_threshold_reached_resolved [default: every alerts.* type but the _resolved ones].",
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Register an endpoint; prints its id, then the secret if one was generated (shown only once)."""
    from meterline.delivery import endpoints
    from meterline.domain.timeutil import now_us

    settings = _settings(database_url)
    box = _secret_box(settings)
    try:
        endpoints.check_url(url, settings.webhook_allow_private_networks)
    except MeterlineError as error:
        _fail(error)
    made = _write(
        settings, lambda conn: endpoints.register(conn, box, url, secret, _split_types(types), now_us())
    )
    console.print(f"created webhook endpoint {made.endpoint.id} for {made.endpoint.url}")
    print(made.endpoint.id)
    if made.generated:
        console.print("its signing secret (store it now, it will not be shown again):")
        print(made.secret)


@webhooks_app.command("list")
def webhooks_list(database_url: str | None = DatabaseOption, as_json: bool = JsonOption) -> None:
    """List endpoints (never their secrets)."""
    from meterline.api.routes.webhooks import endpoint_view
    from meterline.domain.timeutil import format_rfc3339
    from meterline.store import webhooks

    db = _open_database(_settings(database_url))
    with db.read() as conn:
        found = webhooks.list_endpoints(conn, after=None, limit=10_000)
    db.dispose()
    if as_json:
        _print_json(endpoint_view(e) for e in found)
        return
    table = _table("id", "url", "types", "status", "created", prose=("types", "status"))
    for e in found:
        status = "enabled" if e.enabled else f"disabled: {e.disabled_reason}"
        types = ", ".join(e.event_types) if e.event_types else "(default: alerts.*, not _resolved)"
        table.add_row(e.id, e.url, types, status, format_rfc3339(e.created_at_us))
    _show(table)


@webhooks_app.command("remove")
def webhooks_remove(endpoint_id: str, database_url: str | None = DatabaseOption) -> None:
    """Remove an endpoint; its pending deliveries are marked failed."""
    from meterline.domain.timeutil import now_us
    from meterline.store import webhooks

    _write(_settings(database_url), lambda conn: webhooks.remove_endpoint(conn, endpoint_id, now_us()))
    console.print(f"removed {endpoint_id}")


@webhooks_app.command("enable")
def webhooks_enable(endpoint_id: str, database_url: str | None = DatabaseOption) -> None:
    """Enable an endpoint again (after a 410 Gone disabled it)."""
    from meterline.domain.timeutil import now_us
    from meterline.store import webhooks

    _write(_settings(database_url), lambda conn: webhooks.enable_endpoint(conn, endpoint_id, now_us()))
    console.print(f"enabled {endpoint_id}")


@webhooks_app.command("rotate-secret")
def webhooks_rotate_secret(
    endpoint_id: str,
    secret: str | None = typer.Option(
        None, help="The new secret; generated (and printed once) when omitted."
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Give an endpoint a new secret; the previous one keeps signing too during the grace period."""
    from meterline.delivery import endpoints
    from meterline.domain.timeutil import format_rfc3339, now_us

    settings = _settings(database_url)
    box = _secret_box(settings)
    grace_us = settings.webhook_rotation_grace_us()
    made = _write(settings, lambda conn: endpoints.rotate(conn, box, endpoint_id, secret, grace_us, now_us()))
    until = format_rfc3339(made.endpoint.previous_secret_expires_at_us or 0)
    console.print(f"rotated the secret of {endpoint_id}; the previous one also signs until {until}")
    if made.generated:
        console.print("the new signing secret (store it now, it will not be shown again):")
        print(made.secret)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    failed: bool = typer.Option(False, "--failed", help="Only deliveries given up on."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only deliveries to this endpoint id."),
    notification: str | None = typer.Option(
        None, "--notification", help="Only this notification's deliveries, with every attempt."
    ),
    limit: int = typer.Option(50, min=1, max=10_000, help="Newest first, at most this many."),
    database_url: str | None = DatabaseOption,
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON array (each delivery with every attempt) instead of tables."
    ),
) -> None:
    """The delivery log: one row per (notification, endpoint), newest first."""
    from meterline.api.routes.webhooks import delivery_view
    from meterline.store import webhooks

    db = _open_database(_settings(database_url))
    with db.read() as conn:
        found = webhooks.list_deliveries(
            conn,
            endpoint_id=endpoint,
            notification_id=notification,
            state=webhooks.FAILED if failed else None,
            limit=limit,
        )
        wanted = as_json or notification is not None
        attempts = webhooks.attempts_of(conn, [d.id for d in found]) if wanted else {}
    db.dispose()
    if as_json:
        _print_json(delivery_view(d, attempts[d.id]) for d in found)
        return
    _show(_deliveries_table(found))
    for delivery in found:
        if attempts.get(delivery.id):
            _show(_attempts_table(delivery.endpoint_id, attempts[delivery.id]))


def _deliveries_table(found: list[DeliveryRecord]) -> Table:
    from meterline.domain.timeutil import format_rfc3339

    table = _table(
        "notification",
        "type",
        "endpoint",
        "state",
        "attempts",
        "last status",
        "next attempt",
        "last error",
        prose=("last error",),
    )
    for d in found:
        table.add_row(
            d.notification_id,
            d.notification_type,
            d.endpoint_id,
            d.state,
            str(d.attempts),
            "" if d.last_status_code is None else str(d.last_status_code),
            format_rfc3339(d.next_attempt_at_us) if d.next_attempt_at_us is not None else "",
            d.last_error or "",
        )
    return table


def _attempts_table(endpoint_id: str, attempts: list[AttemptRecord]) -> Table:
    from meterline.domain.timeutil import format_rfc3339

    table = _table(
        "attempt",
        "at",
        "status",
        "latency ms",
        "error",
        "response body",
        prose=("error", "response body"),
        title=f"attempts to {endpoint_id}",
    )
    for a in attempts:
        table.add_row(
            str(a.attempt),
            format_rfc3339(a.attempted_at_us),
            "" if a.status_code is None else str(a.status_code),
            str(a.latency_ms),
            a.error or "",
            (a.response_body or "")[:200],
        )
    return table


REPLAYS_PER_TRANSACTION = 100


@webhooks_app.command("replay")
def webhooks_replay(
    notification_id: str | None = typer.Argument(
        None, help="The notification to send again; omit it with --failed."
    ),
    failed: bool = typer.Option(
        False, "--failed", help="Send every failed delivery again, each to its own endpoint (enabled ones)."
    ),
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        help="Only this endpoint (even a disabled one); default: every endpoint that wants it.",
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Send a notification again, or every failed delivery, with the same ids (a running server sends
    them at its next poll)."""
    from meterline.domain.timeutil import now_us
    from meterline.store import webhooks

    settings = _settings(database_url)
    if failed == (notification_id is not None):
        console.print("[red]name one NOTIFICATION_ID, or give --failed[/red]")
        raise typer.Exit(2)
    if notification_id is None:
        _replay_failed(settings, endpoint)
        return
    queued = _write(settings, lambda conn: webhooks.replay(conn, notification_id, endpoint, now_us()))
    if not queued:
        console.print(
            f"[red]no enabled endpoint wants notification {notification_id}; name one with --endpoint[/red]"
        )
        raise typer.Exit(1)
    for _delivery_id, endpoint_id in queued:
        console.print(f"queued {notification_id} for {endpoint_id}")


def _replay_failed(settings: Settings, endpoint_id: str | None) -> None:
    """Queue every failed delivery again (to the named endpoint, else to enabled endpoints only: a
    disabled one answered 410 Gone), a chunk per transaction, with progress."""
    from meterline.domain.timeutil import now_us
    from meterline.store import webhooks

    db = _open_database(settings)
    try:
        with db.read() as conn:
            if endpoint_id is not None:
                webhooks.get_endpoint(conn, endpoint_id)  # a clear error for an unknown id
            enabled = {e.id for e in webhooks.list_endpoints(conn, after=None, limit=10_000) if e.enabled}
            found = _failed_deliveries(conn, endpoint_id)
        wanted = [d for d in found if d.endpoint_id == endpoint_id or d.endpoint_id in enabled]
        with _progress("replaying") as progress:
            task = progress.add_task("deliveries", total=len(wanted))
            for start in range(0, len(wanted), REPLAYS_PER_TRANSACTION):
                chunk = wanted[start : start + REPLAYS_PER_TRANSACTION]
                with db.write() as conn:
                    for d in chunk:
                        webhooks.replay(conn, d.notification_id, d.endpoint_id, now_us())
                progress.advance(task, len(chunk))
    except MeterlineError as error:
        _fail(error)
    finally:
        db.dispose()
    skipped = len(found) - len(wanted)
    note = f" ({skipped} to disabled or removed endpoints left failed)" if skipped else ""
    console.print(f"queued {len(wanted)} failed deliveries again{note}")


def _failed_deliveries(conn: Connection, endpoint_id: str | None) -> list[DeliveryRecord]:
    from meterline.store import webhooks

    found: list[DeliveryRecord] = []
    while page := webhooks.list_deliveries(
        conn,
        endpoint_id=endpoint_id,
        state=webhooks.FAILED,
        before_id=found[-1].id if found else None,
        limit=1000,
    ):
        found.extend(page)
    return found


if __name__ == "__main__":
    app()
