"""``StripePayments`` details the end-to-end tests do not pin down."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from meterline.adapters.stripe import StripePayments, customer_idempotency_key
from meterline.config import Settings
from meterline.domain.entities import EndUser, Environment
from meterline.services.stripe_ports import BadSignature, PaymentsError
from meterline.testing.fake_stripe import sign_payload


def settings(**over) -> Settings:
    values = {"stripe_secret_key": "sk_test_x", "stripe_client_id": "ca_x", **over}
    return Settings(**values)


async def test_default_authorize_url_is_connect_stripe_com():
    payments = StripePayments(settings())
    url = payments.authorize_url("st4te")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://connect.stripe.com/oauth/authorize"
    )
    q = parse_qs(parts.query)
    assert q == {
        "response_type": ["code"],
        "scope": ["read_write"],
        "state": ["st4te"],
        "client_id": ["ca_x"],
    }
    await payments.aclose()


async def test_missing_client_id_or_secrets_are_clear_errors():
    payments = StripePayments(settings(stripe_client_id=None))
    with pytest.raises(PaymentsError) as err:
        payments.authorize_url("s")
    assert err.value.code == "stripe_not_configured"
    with pytest.raises(PaymentsError) as err:
        payments.construct_event(b"{}", "t=1,v1=x")
    assert err.value.code == "webhook_secret_missing"
    await payments.aclose()
    with pytest.raises(ValueError):
        StripePayments(Settings())


async def test_non_json_or_non_object_payloads_are_refused():
    payments = StripePayments(settings(stripe_webhook_secret="whsec_x"))
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(BadSignature):
            payments.construct_event(body, sign_payload(body, "whsec_x"))
    await payments.aclose()


def test_livemode_follows_the_key():
    assert StripePayments(settings(stripe_secret_key="sk_live_x")).livemode is True
    assert StripePayments(settings(stripe_secret_key="rk_live_x")).livemode is True
    assert StripePayments(settings()).livemode is False


def test_customer_keys_are_stable_bounded_and_change_with_the_email():
    user = EndUser("proj", Environment.LIVE, "u" * 256, None, email="a@example.com")
    key = customer_idempotency_key(user)
    assert key == customer_idempotency_key(user) and len(key) < 255
    assert key.startswith("ml-cus-proj-live-")
    other = EndUser("proj", Environment.LIVE, "u" * 256, None, email="b@example.com")
    assert customer_idempotency_key(other) != key
    test_env = EndUser("proj", Environment.TEST, "u" * 256, None, email="a@example.com")
    assert customer_idempotency_key(test_env) != key
