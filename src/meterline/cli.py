"""The `meterline` command."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meterline.logging import configure_logging
from meterline.settings import Settings, get_settings

app = typer.Typer(
    help="meterline: self-hosted, Metronome-compatible usage-based billing with real-time spend alerts.\n\n"
    "Every setting can also be given as an environment variable prefixed METERLINE_ "
    "(for example METERLINE_DATABASE_URL=postgresql://user@host/db).",
    no_args_is_help=True,
    add_completion=False,
)
tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
console = Console(stderr=True)


def _settings(database_url: str | None) -> Settings:
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    configure_logging(settings.log_level, settings.log_format)
    return settings


DatabaseOption = typer.Option(None, "--database-url", help="Overrides METERLINE_DATABASE_URL.")


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on [default: 127.0.0.1, METERLINE_HOST]."),
    port: int = typer.Option(None, help="Port to listen on [default: 8080, METERLINE_PORT]."),
    database_url: str | None = DatabaseOption,
    evaluator: bool = typer.Option(
        None, "--evaluator/--no-evaluator", help="Run the evaluator in this process [default: on]."
    ),
) -> None:
    """Run the API server (and the evaluator). SQLite databases are created and migrated automatically."""
    import uvicorn

    from meterline.api.app import create_app

    settings = _settings(database_url)
    if evaluator is not None:
        settings = settings.model_copy(update={"evaluator_enabled": evaluator})
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


@app.command()
def migrate(database_url: str | None = DatabaseOption) -> None:
    """Create or upgrade the database schema (SQLite or PostgreSQL) to the current version."""
    from meterline.store.db import Database
    from meterline.store.migrate import current_revision, upgrade_to_head

    db = Database(_settings(database_url).database_url)
    upgrade_to_head(db)
    console.print(f"schema is at revision {current_revision(db)} ({db.dialect})")
    db.dispose()


@app.command()
def evaluate(
    database_url: str | None = DatabaseOption,
    follow: bool = typer.Option(
        True, "--follow/--once", help="Keep tailing the log, or stop when caught up."
    ),
) -> None:
    """Run the evaluator alone (for a server started with --no-evaluator, or to catch up a backlog)."""
    from meterline.engine.evaluator import evaluator_from_settings
    from meterline.store import event_log
    from meterline.store.db import Database
    from meterline.store.migrate import upgrade_to_head

    settings = _settings(database_url)
    db = Database(settings.database_url)
    if db.is_sqlite:
        upgrade_to_head(db)
    worker = evaluator_from_settings(db, settings)
    if follow:
        worker.run_forever()
        return
    with db.read() as conn:
        end = event_log.last_seq(conn)
    columns = [TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress:
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
def tokens_list(database_url: str | None = DatabaseOption) -> None:
    """List API tokens (never the tokens themselves)."""
    from meterline.domain.timeutil import format_rfc3339
    from meterline.store import tokens
    from meterline.store.db import Database

    db = Database(_settings(database_url).database_url)
    with db.read() as conn:
        found = tokens.list_tokens(conn)
    db.dispose()
    table = Table("id", "name", "created", "revoked")
    for t in found:
        revoked = format_rfc3339(t.revoked_at_us) if t.revoked_at_us else ""
        table.add_row(t.id, t.name, format_rfc3339(t.created_at_us), revoked)
    Console().print(table)


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


if __name__ == "__main__":
    app()
