"""Schemathesis over /openapi.json against a real server: no 5xx on any route, with a
live key and with a test key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from meterline.testing.server import running_servers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server_and_keys(tmp_path_factory):
    home = tmp_path_factory.mktemp("st")
    env = {
        "METERLINE_HOME": str(home),
        "METERLINE_SECRET_KEY": "t",
        "METERLINE_DATABASE_URL": f"sqlite:///{home}/st.db",
    }
    init = subprocess.run(
        [sys.executable, "-m", "meterline", "init", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    keys = json.loads(init.stdout)
    with running_servers(1, env) as servers:
        yield servers[0].url, keys


@pytest.mark.parametrize("key_name", ["live_key", "test_key"])
def test_no_server_errors_anywhere(server_and_keys, key_name, tmp_path):
    url, keys = server_and_keys
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {keys[key_name]}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    # It really exercised the API: every operation, and many generated cases.
    tested = re.search(r"Tested: (\d+)", output)
    generated = re.search(r"(\d+) generated", output)
    assert tested and int(tested.group(1)) >= 15, output  # every billing route
    assert generated and int(generated.group(1)) >= 500, output
