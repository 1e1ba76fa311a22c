"""Two server processes sharing PostgreSQL and Redis admit exactly the limit."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from meterline.config import Settings
from meterline.container import build_container
from meterline.services.bootstrap import initialize

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "meterline.web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server on {port} not ready")


async def test_two_processes_admit_exactly_the_daily_request_limit(
    pg_database_url, redis_url, tmp_path
):
    settings = Settings(
        home=tmp_path, database_url=pg_database_url, redis_url=redis_url, secret_key="t"
    )
    container = await build_container(settings)
    init = await initialize(container.accounts)
    await container.close()
    env = {
        **os.environ,
        "METERLINE_DATABASE_URL": pg_database_url,
        "METERLINE_REDIS_URL": redis_url,
        "METERLINE_SECRET_KEY": "t",
        "METERLINE_HOME": str(tmp_path),
    }
    ports = [_free_port(), _free_port()]
    procs = [_start(p, env) for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc)
        headers = {"Authorization": f"Bearer {init.live_key}"}
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as c:
            r = await c.post(
                f"http://127.0.0.1:{ports[0]}/api/v1/billing/rate-plans",
                json={"name": "Fifty", "is_default": True, "daily_request_limit": 50},
                headers=headers,
            )
            assert r.status_code == 201, r.text
            await asyncio.sleep(settings.cache_ttl_seconds + 0.2)  # other replica's plan cache

            async def one(i: int) -> bool:
                port = ports[i % 2]
                r = await c.get(
                    f"http://127.0.0.1:{port}/api/v1/billing/check-quota",
                    params={"end_user_id": "racer", "reserve": "true"},
                    headers=headers,
                )
                assert r.status_code == 200, r.text
                return bool(r.json()["allowed"])

            admitted = await asyncio.gather(*(one(i) for i in range(200)))
            assert sum(admitted) == 50
            final = await c.get(
                f"http://127.0.0.1:{ports[1]}/api/v1/billing/check-quota",
                params={"end_user_id": "racer"},
                headers=headers,
            )
            assert final.json()["usage"]["daily_requests"]["used"] == 50
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
