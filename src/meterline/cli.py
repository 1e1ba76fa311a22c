"""``meterline serve | migrate | init | keys`` (typer)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from meterline.config import Settings, load_settings

__all__ = ["app"]

app = typer.Typer(help="meterline: AI gateway with end-user billing.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage project API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

T = TypeVar("T")


def _run(fn: Callable[[Settings], Awaitable[T]]) -> T:
    return asyncio.run(fn(load_settings()))


@app.command()
def migrate() -> None:
    """Apply database migrations (SQLite or PostgreSQL, from METERLINE_DATABASE_URL)."""
    from meterline.adapters.db import migrate as run_migrations

    async def go(settings: Settings) -> None:
        await run_migrations(settings.resolved_database_url())

    _run(go)
    typer.echo("migrations applied")


@app.command()
def init(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    admin_email: Annotated[str, typer.Option(help="First admin's email")] = "admin@localhost",
) -> None:
    """Create the first organization, project, admin and keys if the database is empty."""
    from meterline.adapters.db import SqlAccounts, create_engine
    from meterline.adapters.db import migrate as run_migrations
    from meterline.services.bootstrap import initialize

    async def go(settings: Settings) -> dict[str, object]:
        url = settings.resolved_database_url()
        await run_migrations(url)
        settings.resolved_secret_key()
        engine = create_engine(url)
        try:
            result = await initialize(SqlAccounts(engine), admin_email=admin_email)
        finally:
            await engine.dispose()
        out: dict[str, object] = {
            "organization_id": result.organization_id,
            "project_id": result.project_id,
        }
        if result.created:
            out |= {
                "live_key": result.live_key,
                "test_key": result.test_key,
                "admin_email": result.admin_email,
                "admin_password": result.admin_password,
            }
        out["created"] = result.created
        return out

    out = _run(go)
    if as_json:
        typer.echo(json.dumps(out))
        return
    if out["created"]:
        typer.echo("Initialised meterline. These secrets are shown once; keep them safe:")
        for name in ("admin_email", "admin_password", "live_key", "test_key"):
            typer.echo(f"  {name:15} {out[name]}")
    else:
        typer.echo(f"Already initialised (project {out['project_id']}).")


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option("--project", help="Project id")],
    env: Annotated[str, typer.Option("--env", help="live or test")] = "live",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create an API key; it is printed once."""
    from meterline.adapters.db import SqlAccounts, create_engine
    from meterline.domain.entities import Environment
    from meterline.services.bootstrap import create_key

    try:
        environment = Environment(env)
    except ValueError:
        typer.echo("--env must be 'live' or 'test'", err=True)
        raise typer.Exit(2) from None

    async def go(settings: Settings) -> str | None:
        engine = create_engine(settings.resolved_database_url())
        try:
            accounts = SqlAccounts(engine)
            if await accounts.get_project(project) is None:
                return None
            return (await create_key(accounts, project, environment)).plaintext
        finally:
            await engine.dispose()

    key = _run(go)
    if key is None:
        typer.echo(f"no project {project!r}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps({"key": key, "environment": env, "project_id": project}))
    else:
        typer.echo(key)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
) -> None:
    """Serve the gateway and APIs (uvicorn)."""
    import uvicorn

    settings = load_settings()
    n = workers or settings.workers
    if n > 1 and not settings.redis_url:
        typer.echo(
            "More than one worker needs shared counters: set METERLINE_REDIS_URL "
            "(in-process counters would let each worker grant the full quota).",
            err=True,
        )
        raise typer.Exit(2)
    settings.resolved_secret_key()
    uvicorn.run(
        "meterline.web.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=n,
        log_level=settings.log_level,
        loop="auto",
        http="auto",
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Gateway port")] = 8080,
    duration: Annotated[float | None, typer.Option(help="Stop after N seconds")] = None,
) -> None:
    """Gateway + fake provider + simulated traffic, to watch metering without a provider key."""
    from meterline.testing.demo import run_demo

    result = asyncio.run(run_demo(load_settings(), port=port, duration=duration))
    typer.echo(
        f"demo stopped: {result.requests_sent} simulated requests, {result.denied} denied by limits"
    )


def main() -> None:  # pragma: no cover
    sys.exit(app())
