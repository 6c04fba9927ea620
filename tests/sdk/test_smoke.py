from __future__ import annotations

from metronome import Metronome

from tests.support.server import RunningServer


def test_credit_types_always_include_usd_cents(server: RunningServer) -> None:
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    ids = [ct.id for ct in client.v1.pricing_units.list()]
    assert "2714e483-4ff1-48e4-9e25-ac732e8f24f2" in ids
