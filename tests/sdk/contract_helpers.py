"""Helpers for the contract, commit and credit SDK tests: the catalog a contract needs, and errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import metronome
import pytest
from metronome import Metronome

from tests.sdk.helpers import rfc3339, uid

USD_CENTS = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"
MISSING_ID = "00000000-0000-4000-8000-0000000000dd"
JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
MAR = datetime(2024, 3, 1, tzinfo=UTC)
APR = datetime(2024, 4, 1, tzinfo=UTC)
MAY = datetime(2024, 5, 1, tzinfo=UTC)
JUN = datetime(2024, 6, 1, tzinfo=UTC)
# The end of access schedules that outlive the tests: years after now, whenever now is.
FAR = datetime(datetime.now(UTC).year + 5, 1, 1, tzinfo=UTC)


def error_of(call: Any, status: int) -> str:
    """Run an SDK call expected to fail with `status`; return the server's message."""
    with pytest.raises(metronome.APIStatusError) as raised:
        call()
    assert raised.value.status_code == status, raised.value.response.text
    message: str = raised.value.response.json()["message"]
    return message


def new_fixed_product(client: Metronome, **fields: Any) -> str:
    return client.v1.contracts.products.create(name=f"commit {uid()}", type="FIXED", **fields).data.id


def new_usage_product(client: Metronome, **fields: Any) -> str:
    metric_id = client.v1.billable_metrics.create(
        name=f"calls {uid()}",
        aggregation_type="COUNT",
        event_type_filter={"in_values": [f"call_{uid()}"]},
        group_keys=[["region"]],
    ).data.id
    return client.v1.contracts.products.create(
        name=f"calls {uid()}", type="USAGE", billable_metric_id=metric_id, **fields
    ).data.id


def new_card(client: Metronome, **fields: Any) -> str:
    fields.setdefault("name", f"rate card {uid()}")
    return client.v1.contracts.rate_cards.create(**fields).data.id


def new_unit(client: Metronome) -> str:
    return client.v1.pricing_units.create(name=f"credits {uid()}").data.id


def access(amount: float, starting_at: datetime, ending_before: datetime, **fields: Any) -> dict[str, Any]:
    """An access schedule with one item."""
    return {
        "schedule_items": [{"amount": amount, "starting_at": starting_at, "ending_before": ending_before}],
        **fields,
    }


def invoice(amount: float, timestamp: datetime, **fields: Any) -> dict[str, Any]:
    """An invoice schedule with one item."""
    return {"schedule_items": [{"amount": amount, "timestamp": timestamp}], **fields}


def post(client: Metronome, path: str, body: dict[str, Any]) -> Any:
    """POST a body the SDK's typed methods would refuse to send (a required field left out)."""
    return client.post(path, body=_jsonable(body), cast_to=object)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
