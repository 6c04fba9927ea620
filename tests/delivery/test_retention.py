"""The delivery log is purged after the retention period: finished deliveries and their attempts
go; younger ones stay."""

from __future__ import annotations

from meterline.delivery.secrets import SecretBox
from meterline.store.db import Database
from tests.delivery.conftest import StartDispatcher
from tests.delivery.helpers import Clock, attempts, deliveries, notify, register, wait_for_state
from tests.delivery.receiver import Receiver, Reply
from tests.support.waiting import wait_for


def test_finished_deliveries_are_purged_after_the_retention_period(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    ok = Receiver().up()
    failing = Receiver(lambda _r, _i: Reply(500)).up()
    try:
        register(db, box, ok.url)
        sent = notify(db)
        start_dispatcher(retention_days=30)
        delivered = wait_for_state(db, sent, "succeeded")
        assert len(attempts(db, delivered.id)) == 1

        register(db, box, failing.url)
        refused = notify(db)
        wait_for(lambda: deliveries(db, refused), lambda got: any(d.attempts >= 1 for d in got))

        clock.advance(29 * 86_400)
        younger = notify(db)  # a cycle at 29 days: nothing is old enough yet
        wait_for(lambda: deliveries(db, younger), lambda got: len(got) == 2)
        assert len(deliveries(db, sent)) == 1 and len(deliveries(db, refused)) == 2

        clock.advance(2 * 86_400)
        notify(db)  # wakes a cycle at 31 days: its retries over, the refused delivery fails now
        wait_for(lambda: deliveries(db, sent), lambda got: got == [])
        wait_for(lambda: deliveries(db, refused), lambda got: all(d.state != "pending" for d in got))
        clock.advance(11 * 60)  # the next purge, ten minutes on
        notify(db)
        wait_for(lambda: deliveries(db, refused), lambda got: got == [])
        assert attempts(db, delivered.id) == []
        assert len(deliveries(db, younger)) == 2  # two days old: kept
    finally:
        ok.down()
        failing.down()
