"""``meterline serve | migrate | init | keys | admin`` (typer)."""

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
admin_app = typer.Typer(help="Manage dashboard admins.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
invoices_app = typer.Typer(help="Generate and finalize invoices.", no_args_is_help=True)
app.add_typer(invoices_app, name="invoices")

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


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option("--email", help="The admin's email (their login)")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password"),
    ],
    organization: Annotated[
        str | None, typer.Option("--organization", help="Organization id (default: the first)")
    ] = None,
) -> None:
    """Add a dashboard admin to an organization (argon2-hashed password)."""
    from meterline.adapters.db import SqlAccounts, create_engine
    from meterline.services.admin_auth import AdminAuth
    from meterline.services.errors import ServiceError

    async def go(settings: Settings) -> str:
        engine = create_engine(settings.resolved_database_url())
        try:
            accounts = SqlAccounts(engine)
            org = organization
            if org is None:
                first = await accounts.first_project()
                if first is None:
                    return "error: no organization yet: run `meterline init` first"
                org = first.organization_id
            try:
                return await AdminAuth(accounts).create_admin(org, email, password)
            except ServiceError as exc:
                return f"error: {exc.message}"
        finally:
            await engine.dispose()

    result = _run(go)
    if result.startswith("error: "):
        typer.echo(result.removeprefix("error: "), err=True)
        raise typer.Exit(1)
    typer.echo(f"admin {email} created ({result})")


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
    from meterline.observability import configure_logging
    from meterline.web.http_protocol import HTTP_PROTOCOL

    configure_logging(settings.log_level)  # JSON lines; each worker's app sets up its own
    uvicorn.run(
        "meterline.web.app:create_app",
        factory=True,
        log_config=None,
        host=host or settings.host,
        port=port or settings.port,
        workers=n,
        log_level=settings.log_level,
        loop="auto",
        http=HTTP_PROTOCOL,  # uvicorn's httptools protocol, one write per response
        # meterline's own middleware writes one access line per request (JSON, with the
        # request id); uvicorn's would be a second, and it formats its arguments even
        # when the level drops it.
        access_log=False,
        server_header=False,  # no "server: uvicorn" on every answer
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


@invoices_app.command("generate")
def invoices_generate(
    period: Annotated[str, typer.Option("--period", help="A month, YYYY-MM")],
    project: Annotated[str | None, typer.Option("--project", help="Project id")] = None,
    env: Annotated[str, typer.Option("--env", help="live or test")] = "live",
    finalize: Annotated[bool, typer.Option("--finalize", help="Finalize the drafts")] = False,
    send: Annotated[bool, typer.Option("--send", help="Send through Stripe")] = False,
) -> None:
    """Generate draft invoices for every end user with usage in a month (idempotent:
    drafts are replaced, finalized invoices skipped); optionally finalize and send."""
    from meterline.container import build_container
    from meterline.domain.entities import ApiKey, Environment
    from meterline.services.auth import AuthContext
    from meterline.services.errors import ServiceError
    from meterline.services.invoicing import month_period

    try:
        environment = Environment(env)
        start, end = month_period(period)
    except (ValueError, ServiceError) as exc:
        typer.echo(f"invalid option: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(2) from None

    async def go(settings: Settings) -> dict[str, object] | None:
        container = await build_container(settings)
        try:
            found = await (
                container.accounts.get_project(project)
                if project
                else container.accounts.first_project()
            )
            if found is None:
                return None
            ctx = AuthContext(ApiKey("cli", found.id, environment, "cli"), found)
            result = await container.invoicing.generate(ctx, start, end)
            errors: list[dict[str, str]] = list(result.errors)
            finalized = sent = 0
            with typer.progressbar(result.generated, label="invoices", file=sys.stderr) as bar:
                for inv in bar:
                    try:
                        if finalize:
                            inv = await container.invoicing.finalize(ctx, inv.id)
                            finalized += 1
                        if send:
                            sync = getattr(container, "stripe_sync", None)
                            if sync is None:
                                raise ServiceError("stripe sending not available")
                            await sync.send(ctx, inv.id)
                            sent += 1
                    except ServiceError as exc:
                        errors.append({"invoice_id": inv.id, "error": exc.message})
            return {
                "project_id": found.id,
                "environment": environment.value,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "generated": len(result.generated),
                "finalized": finalized,
                "sent": sent,
                "skipped": len(result.skipped),
                "errors": errors,
                "total_cents": sum(i.total_cents for i in result.generated),
            }
        finally:
            await container.close()

    out = _run(go)
    if out is None:
        typer.echo(f"no project {project!r}" if project else "no project: run init", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(out))
    if out["errors"]:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    sys.exit(app())
