"""The CLI as a user runs it: a real process, a fresh SQLite home."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "METERLINE_HOME": str(tmp_path)}
    env.pop("METERLINE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "meterline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_json_then_idempotent_then_keys(tmp_path):
    first = run(tmp_path, "init", "--json")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert {
        "organization_id",
        "project_id",
        "live_key",
        "test_key",
        "admin_email",
        "admin_password",
    } <= set(out)
    assert out["live_key"].startswith("mk_live_") and out["test_key"].startswith("mk_test_")
    assert (tmp_path / "meterline.db").exists()

    again = json.loads(run(tmp_path, "init", "--json").stdout)
    assert again["project_id"] == out["project_id"]
    assert "live_key" not in again and again["created"] is False

    made = run(
        tmp_path, "keys", "create", "--project", out["project_id"], "--env", "test", "--json"
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["environment"] == "test" and key["key"].startswith("mk_test_")
    assert key["project_id"] == out["project_id"]

    bad = run(tmp_path, "keys", "create", "--project", "nope", "--env", "live")
    assert bad.returncode != 0


def test_serve_refuses_many_workers_without_redis(tmp_path):
    r = run(tmp_path, "serve", "--workers", "2")
    assert r.returncode == 2
    assert "METERLINE_REDIS_URL" in r.stderr
