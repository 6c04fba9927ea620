"""The seed workflow, as a user runs it: a SOFT and a HARD spend limit on a customer, usage crossing
one then the other, and the user raising the hard limit (archive it, create a new one).
"""

from __future__ import annotations

from metronome import Metronome

from tests.sdk.alert_helpers import (
    billed_customer,
    create_alert,
    outbox,
    settled_outbox,
    status,
    use,
    wait_outbox,
    wait_status,
)
from tests.sdk.contract_helpers import USD_CENTS
from tests.sdk.helpers import uid
from tests.support.server import RunningServer

SPEND = "alerts.spend_threshold_reached"


def summary(server: RunningServer, customer_id: str) -> list[tuple[str, str, str, object, object]]:
    """(type, alert name, triggered_by, threshold, current_spend) of each notification."""
    return [
        (
            p["type"],
            p["properties"]["alert_name"],
            p["properties"]["triggered_by"],
            p["properties"]["threshold"],
            p["properties"]["current_spend"],
        )
        for p in outbox(server, customer_id)
    ]


def test_soft_and_hard_limits_then_raising_the_hard_limit(client: Metronome, server: RunningServer) -> None:
    customer_id, usage = billed_customer(client, price=100)  # 1 dollar per unit
    keys = {"SOFT": f"soft-{uid()}", "HARD": f"hard-{uid()}"}

    def limit(name: str, cents: int) -> str:
        return create_alert(
            client,
            alert_type="spend_threshold_reached",
            name=name,
            threshold=cents,
            customer_id=customer_id,
            credit_type_id=USD_CENTS,
            uniqueness_key=keys[name],
        )

    soft, hard = limit("SOFT", 5000), limit("HARD", 10000)
    wait_status(client, soft, customer_id, ("ok", "alert_created"))
    wait_status(client, hard, customer_id, ("ok", "alert_created"))

    # Usage crosses SOFT: one notification; HARD is still ok.
    use(client, customer_id, usage, 30)
    use(client, customer_id, usage, 25)  # 5500 cents
    wait_status(client, soft, customer_id, ("in_alarm", "usage"))
    assert status(client, hard, customer_id) == ("ok", "alert_created")
    assert summary(server, customer_id) == [(SPEND, "SOFT", "usage", 5000, 5500)]
    [soft_fired] = outbox(server, customer_id)
    assert (soft_fired["properties"]["alert_id"], soft_fired["properties"]["customer_id"]) == (
        soft,
        customer_id,
    )

    # Then HARD; SOFT, already in alarm, says nothing more.
    use(client, customer_id, usage, 50)  # 10500 cents
    wait_status(client, hard, customer_id, ("in_alarm", "usage"))
    use(client, customer_id, usage, 5)  # 11000 cents
    assert summary(server, customer_id) == [
        (SPEND, "SOFT", "usage", 5000, 5500),
        (SPEND, "HARD", "usage", 10000, 10500),
    ]
    assert len(settled_outbox(client, server, customer_id)) == 2

    # The user raises the hard limit: archive HARD (releasing its key) and create it again at 20000.
    client.v1.alerts.archive(id=hard, release_uniqueness_key=True)
    raised = limit("HARD", 20000)
    wait_status(client, raised, customer_id, ("ok", "alert_created"))  # evaluated at once
    assert summary(server, customer_id) == [
        (SPEND, "SOFT", "usage", 5000, 5500),
        (SPEND, "HARD", "usage", 10000, 10500),
        (SPEND + "_resolved", "HARD", "alert_archived", 10000, 11000),
    ]
    assert outbox(server, customer_id)[2]["properties"]["alert_id"] == hard
    listed = client.v1.customers.alerts.list(customer_id=customer_id)
    assert sorted((a.alert.name, a.alert.threshold, a.customer_status) for a in listed) == [
        ("HARD", 20000, "ok"),
        ("SOFT", 5000, "in_alarm"),
    ]
    assert status(client, hard, customer_id) == (None, "alert_archived")

    # The raised limit is live: usage reaching 20000 cents fires it once.
    use(client, customer_id, usage, 90)  # 20000 cents
    wait_outbox(server, customer_id, 4)
    assert summary(server, customer_id)[3:] == [(SPEND, "HARD", "usage", 20000, 20000)]
    assert status(client, raised, customer_id) == ("in_alarm", "usage")
    assert len(settled_outbox(client, server, customer_id)) == 4
