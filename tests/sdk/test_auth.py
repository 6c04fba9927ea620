"""Authentication: every API route needs a valid bearer token; the health check does not."""

from __future__ import annotations

import httpx
import metronome
import pytest
from metronome import Metronome

from tests.sdk.helpers import hours_ago, rfc3339
from tests.support.server import RunningServer


def test_a_wrong_token_is_refused(server: RunningServer) -> None:
    client = Metronome(bearer_token="not-a-real-token", base_url=server.base_url, max_retries=0)
    with pytest.raises(metronome.AuthenticationError) as raised:
        client.v1.customers.create(name="intruder")
    assert raised.value.status_code == 401
    assert raised.value.body["message"]  # type: ignore[index]
    with pytest.raises(metronome.AuthenticationError):
        list(client.v1.pricing_units.list())


def test_a_wrong_token_cannot_ingest(server: RunningServer) -> None:
    client = Metronome(bearer_token="not-a-real-token", base_url=server.base_url, max_retries=0)
    with pytest.raises(metronome.AuthenticationError):
        client.v1.usage.ingest(
            usage=[
                {
                    "transaction_id": "auth-test",
                    "customer_id": "nobody",
                    "event_type": "x",
                    "timestamp": rfc3339(hours_ago(1)),
                }
            ]
        )


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dXNlcjpwYXNz", "Token abc"])
def test_a_missing_token_is_refused(server: RunningServer, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(f"{server.base_url}/v1/credit-types/list", headers=headers)
    assert response.status_code == 401
    assert response.json()["message"]


def test_the_right_token_is_accepted_without_the_sdk(server: RunningServer) -> None:
    response = httpx.get(f"{server.base_url}/v1/credit-types/list", headers=server.headers())
    assert response.status_code == 200


def test_health_needs_no_token(server: RunningServer) -> None:
    response = httpx.get(f"{server.base_url}/health")
    assert response.status_code == 200
    assert (
        response.json()["status"] == "ok"
    )  # each part's report: tests/integration/test_health_and_metrics.py
