"""Schemathesis over /openapi.json against a real server, with a live key and with a
test key.

The billing/management API (``/api/v1/**``, plus ``/healthz`` and ``/readyz``) runs every
check schemathesis has: no 5xx, and every status, content type, header and body exactly
as the OpenAPI document declares them (``web/response_schemas.py``), invalid input
refused, valid input accepted, deleted things gone, created things readable.

The gateway (``/v1/**``) passes provider bodies through, so the document does not
describe them: it gets the no-5xx check only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from meterline.testing.server import running_servers

pytestmark = pytest.mark.slow

API = r"^/(api/v1/|healthz$|readyz$)"
GATEWAY = r"^/v1/"

# Every check ("all"), with one setting: schema-valid input may still get a 422. JSON
# Schema cannot say "'to' not before 'from'", "a period of at most 366 days", "a rate
# plan id that exists", "a currency we support" or "no control characters"; the API
# answers those with the contract's 422 and, for a valid request, anything else (a 400
# for a body we failed to read, a 415, a 5xx) still fails ``positive_data_acceptance``.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""


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


def _schemathesis(url: str, key: str, tmp_path: Path, *args: str) -> str:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--report-dir",
            str(tmp_path),
            "--no-color",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout[-12000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    return output


def _counts(output: str) -> tuple[int, int]:
    tested = re.search(r"Tested: (\d+)", output)
    generated = re.search(r"(\d+) generated", output)
    assert tested and generated, output
    return int(tested.group(1)), int(generated.group(1))


@pytest.mark.parametrize("key_name", ["live_key", "test_key"])
def test_api_conforms_to_its_schema(server_and_keys, key_name, tmp_path):
    url, keys = server_and_keys
    output = _schemathesis(
        url, keys[key_name], tmp_path, "--include-path-regex", API, "--checks", "all"
    )
    # It really exercised the API: every operation, and many generated cases.
    tested, generated = _counts(output)
    assert tested >= 40, output  # every billing/management/invoice/Stripe route + ops
    assert generated >= 500, output


@pytest.mark.parametrize("key_name", ["live_key", "test_key"])
def test_gateway_never_answers_5xx(server_and_keys, key_name, tmp_path):
    url, keys = server_and_keys
    output = _schemathesis(
        url,
        keys[key_name],
        tmp_path,
        "--include-path-regex",
        GATEWAY,
        "--checks",
        "not_a_server_error",
    )
    tested, generated = _counts(output)
    assert tested >= 5, output  # chat, embeddings, responses, messages, models
    assert generated >= 50, output
