"""The dispatcher against real HTTP receivers on 127.0.0.1, with a settable clock.

Outbox rows are written as alert evaluation writes them (`store.alerts.add_notification`); each
test registers its own endpoints. The clock only moves when a test moves it, so "5 minutes later"
or "a 10-hour outage" takes milliseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from email.utils import format_datetime

from sqlalchemy import Connection, func, select
from standardwebhooks import Webhook

from meterline.delivery.dispatcher import FANOUT_BATCH, RECORD_INTERVAL_S, Dispatcher, Finished, lease_us
from meterline.delivery.handoff import RemoteOutbox
from meterline.delivery.secrets import SecretBox
from meterline.domain.ids import new_id
from meterline.domain.timeutil import US_PER_HOUR, US_PER_SECOND, from_us
from meterline.engine.evaluator import Evaluator
from meterline.store import alerts
from meterline.store import webhooks as store
from meterline.store.db import Database
from meterline.store.tables import notifications, webhook_deliveries
from tests.delivery.conftest import StartDispatcher
from tests.delivery.helpers import (
    Clock,
    attempts,
    deliveries,
    notify,
    register,
    settle,
    wait_for_attempts,
    wait_for_state,
)
from tests.delivery.receiver import Receiver, Reply, Request
from tests.support.waiting import wait_for


def _payload_text(db: Database, notification_id: str) -> str:
    with db.read() as conn:
        return str(
            conn.execute(notifications.select().where(notifications.c.id == notification_id))
            .mappings()
            .one()["payload"]
        )


def test_each_request_carries_both_signatures(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver().up()
    endpoint = register(db, box, receiver.url)
    start_dispatcher()
    notification_id = notify(db, current_spend=5000)

    [request] = receiver.wait_for_requests(1)
    body = _payload_text(db, notification_id).encode()
    assert request.body == body  # the outbox's exact JSON text
    assert Webhook(endpoint.secret).verify(request.body, request.headers) == json.loads(body)
    assert request.headers["webhook-id"] == notification_id == json.loads(body)["id"]
    assert request.headers["webhook-timestamp"] == str(clock() // US_PER_SECOND)
    date = request.headers["date"]
    assert request.headers["x-metronome-date"] == date
    assert date == format_datetime(from_us(clock() - clock() % US_PER_SECOND), usegmt=True)
    by_hand = hmac.new(endpoint.secret.encode(), date.encode() + b"\n" + body, hashlib.sha256).hexdigest()
    assert request.headers["metronome-webhook-signature"] == by_hand
    assert request.headers["content-type"] == "application/json"
    delivery = wait_for_state(db, notification_id, "succeeded")
    assert (delivery.attempts, delivery.last_status_code) == (1, 200)


def test_a_5xx_is_retried_on_schedule_with_the_same_id(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver(lambda _r, i: Reply(503, b"busy " * 500) if i < 2 else Reply(204, b"")).up()
    register(db, box, receiver.url)
    start_dispatcher()
    notification_id = notify(db)

    receiver.wait_for_requests(1)
    wait_for_attempts(db, notification_id, 1)
    clock.advance(4.9)
    settle()
    assert len(receiver.requests) == 1  # not before the 5 s the schedule says
    clock.advance(0.1)
    receiver.wait_for_requests(2)
    wait_for_attempts(db, notification_id, 2)
    clock.advance(300)
    first, second, third = receiver.wait_for_requests(3)

    assert first.webhook_id == second.webhook_id == third.webhook_id == notification_id
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 5
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]  # signed afresh
    delivery = wait_for_state(db, notification_id, "succeeded")
    log = attempts(db, delivery.id)
    assert [a.status_code for a in log] == [503, 503, 204]
    assert log[0].error == "HTTP 503"
    assert log[0].response_body is not None and len(log[0].response_body) == 1024  # truncated to 1 KiB
    assert all(a.latency_ms >= 0 for a in log)


def test_a_timeout_is_retried_with_the_same_id(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver(lambda _r, i: Reply(delay_s=3.0) if i == 0 else Reply()).up()
    register(db, box, receiver.url)
    start_dispatcher(timeout_s=0.3)
    notification_id = notify(db)

    delivery = wait_for_attempts(db, notification_id, 1)
    assert delivery.state == "pending"
    assert delivery.last_error == "timed out after 0.3 s"
    clock.advance(5)
    first, second = receiver.wait_for_requests(2)
    assert first.webhook_id == second.webhook_id == notification_id
    wait_for_state(db, notification_id, "succeeded")
    receiver.down()


def test_410_disables_the_endpoint_and_only_an_explicit_replay_reaches_it(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver(lambda _r, i: Reply(410) if i == 0 else Reply()).up()
    endpoint = register(db, box, receiver.url)
    start_dispatcher()
    gone_id = notify(db)

    assert wait_for_state(db, gone_id, "failed").last_status_code == 410
    with db.read() as conn:
        disabled = store.get_endpoint(conn, endpoint.endpoint.id)
    assert not disabled.enabled and "410" in (disabled.disabled_reason or "")

    later_id = notify(db)
    clock.advance(3600)
    settle()
    assert len(receiver.requests) == 1
    assert deliveries(db, later_id) == []  # a disabled endpoint gets no new deliveries
    with db.write() as conn:
        assert store.replay(conn, later_id, None, clock()) == []  # not without naming it
        store.replay(conn, later_id, endpoint.endpoint.id, clock())
    assert receiver.wait_for_requests(2)[1].webhook_id == later_id
    assert wait_for_state(db, later_id, "succeeded").attempts == 1


def test_retry_after_is_honoured(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    def script(_request: Request, index: int) -> Reply:
        if index == 0:
            return Reply(429, headers={"Retry-After": "120"})
        if index == 1:
            later = from_us(clock() + 600 * US_PER_SECOND)
            return Reply(503, headers={"Retry-After": format_datetime(later, usegmt=True)})
        return Reply()

    receiver = Receiver(script).up()
    register(db, box, receiver.url)
    start_dispatcher()
    notification_id = notify(db)

    wait_for_attempts(db, notification_id, 1)
    clock.advance(60)  # past the schedule's 5 s, not the receiver's 120 s
    settle()
    assert len(receiver.requests) == 1
    clock.advance(60)
    receiver.wait_for_requests(2)
    wait_for_attempts(db, notification_id, 2)
    clock.advance(300)  # past the schedule's 5 min, not the HTTP date 10 min ahead
    settle()
    assert len(receiver.requests) == 2
    clock.advance(300)
    assert len({r.webhook_id for r in receiver.wait_for_requests(3)}) == 1
    wait_for_state(db, notification_id, "succeeded")


def test_retry_after_is_capped_at_the_72_hour_limit(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver(lambda _r, _i: Reply(503, headers={"Retry-After": "31536000"})).up()
    register(db, box, receiver.url)
    start_dispatcher()
    first_at = clock()
    notification_id = notify(db)

    delivery = wait_for_attempts(db, notification_id, 1)
    assert delivery.next_attempt_at_us == first_at + 72 * US_PER_HOUR
    clock.advance(72 * 3600)
    receiver.wait_for_requests(2)
    failed = wait_for_state(db, notification_id, "failed")  # the attempt at the limit was the last
    assert failed.attempts == 2
    assert failed.next_attempt_at_us is None


def test_replay_sends_the_same_notification_again(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver().up()
    register(db, box, receiver.url)
    dispatcher = start_dispatcher()
    notification_id = notify(db)
    wait_for_state(db, notification_id, "succeeded")

    with db.write() as conn:
        queued = store.replay(conn, notification_id, None, clock())
    dispatcher.notify()
    first, second = receiver.wait_for_requests(2)
    assert first.webhook_id == second.webhook_id == notification_id
    assert first.body == second.body
    assert len(queued) == 1
    assert wait_for_attempts(db, notification_id, 2).state == "succeeded"


def test_a_restart_in_the_middle_of_the_schedule_resumes_it(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver(lambda _r, i: Reply(500) if i == 0 else Reply()).up()
    register(db, box, receiver.url)
    first = start_dispatcher()
    notification_id = notify(db)
    wait_for_attempts(db, notification_id, 1)
    first.stop()

    clock.advance(5)
    start_dispatcher()
    requests = receiver.wait_for_requests(2)
    assert [r.webhook_id for r in requests] == [notification_id, notification_id]
    assert wait_for_state(db, notification_id, "succeeded").attempts == 2


def test_a_delivery_claimed_by_a_dispatcher_that_died_is_sent_after_its_lease(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver().up()
    register(db, box, receiver.url)
    notification_id = notify(db)
    with db.write() as conn:  # what a dispatcher does before it sends, and then it is killed
        store.fan_out(conn, clock(), 100)
        lease_until = clock() + 60 * US_PER_SECOND
        [claim] = store.claim_due(conn, clock(), lease_until, lambda _e: 4)
    assert claim.notification_id == notification_id

    start_dispatcher()
    settle()
    assert receiver.requests == []  # the lease still holds
    clock.advance(60)
    assert receiver.wait_for_requests(1)[0].webhook_id == notification_id
    assert wait_for_state(db, notification_id, "succeeded").attempts == 1


def test_a_receiver_down_through_a_long_outage_gets_every_notification_after(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver()  # not listening: connections are refused
    register(db, box, receiver.url)
    start_dispatcher()
    sent: list[str] = []
    for _half_hour in range(20):  # ten hours, a notification every half hour
        sent.append(notify(db))
        _attempt_everything_due(db, clock, len(sent))
        clock.advance(1800)
    _attempt_everything_due(db, clock, len(sent))
    assert all(d.state == "pending" and d.attempts >= 1 for d in deliveries(db))
    assert "could not connect" in (deliveries(db, sent[0])[0].last_error or "")

    receiver.up()
    clock.advance(24 * 3600)  # every delivery is due again, all within 72 h of its first attempt
    receiver.wait_for_requests(len(sent))
    wait_for(lambda: deliveries(db), lambda got: all(d.state == "succeeded" for d in got))
    assert sorted(receiver.ids()) == sorted(sent)  # none lost, none twice, none with a new id
    assert all(json.loads(r.body)["id"] == r.webhook_id for r in receiver.requests)
    receiver.down()


def _attempt_everything_due(db: Database, clock: Clock, count: int) -> None:
    """Wait until the dispatcher has fanned out `count` deliveries and attempted every one due now.

    A claimed delivery is due later too (its lease), before its attempt is recorded: each must
    also show an attempt, or the first attempt of the newest one may still be in flight."""
    wait_for(
        lambda: deliveries(db),
        lambda got: (
            len(got) == count
            and all(d.attempts >= 1 for d in got)
            and all(d.state != "pending" or (d.next_attempt_at_us or 0) > clock() for d in got)
        ),
    )


def test_type_filters_and_resolved_notifications(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    default, resolved_only, both = Receiver().up(), Receiver().up(), Receiver().up()
    register(db, box, default.url)
    register(db, box, resolved_only.url, ["alerts.spend_threshold_reached_resolved"])
    register(db, box, both.url, ["alerts.spend_threshold_reached", "alerts.spend_threshold_reached_resolved"])
    start_dispatcher()
    triggered = notify(db, "alerts.spend_threshold_reached")
    resolved = notify(db, "alerts.spend_threshold_reached_resolved")
    usage = notify(db, "alerts.usage_threshold_reached")

    default.wait_for_requests(2)
    resolved_only.wait_for_requests(1)
    both.wait_for_requests(2)
    settle()
    assert sorted(default.ids()) == sorted([triggered, usage])
    assert resolved_only.ids() == [resolved]
    assert sorted(both.ids()) == sorted([triggered, resolved])
    for receiver in (default, resolved_only, both):
        receiver.down()


def test_a_rotated_secret_signs_beside_the_previous_one_during_the_grace(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    from meterline.delivery import endpoints

    receiver = Receiver().up()
    old = register(db, box, receiver.url)
    with db.write() as conn:
        new = endpoints.rotate(conn, box, old.endpoint.id, None, 24 * US_PER_HOUR, clock())
    dispatcher = start_dispatcher()
    notify(db)
    [during] = receiver.wait_for_requests(1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (new.secret, old.secret):
        Webhook(secret).verify(during.body, during.headers)
    expected = hmac.new(
        new.secret.encode(), during.headers["date"].encode() + b"\n" + during.body, hashlib.sha256
    )
    assert during.headers["metronome-webhook-signature"] == expected.hexdigest()

    # A dispatcher's cycle reads the clock once, before it claims: one that read it before the
    # clock moves could claim the next notification at the old time, inside the grace. So the
    # next one is sent by a dispatcher started after the grace ended.
    dispatcher.stop()
    clock.advance(24 * 3600 + 1)
    start_dispatcher()
    notify(db)
    after = receiver.wait_for_requests(2)[1]
    [only] = after.headers["webhook-signature"].split(" ")
    timestamp = int(after.headers["webhook-timestamp"])
    from meterline.delivery.signing import standard_signature

    assert only == standard_signature(new.secret, after.webhook_id, timestamp, after.body)
    receiver.down()


def test_a_slow_endpoint_does_not_hold_up_a_fast_one(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    # The slow endpoint answers in 3 s and the fast one's six must all arrive within 2.5 s: still
    # while the slow one answers its first two, with room for a machine busy with other work.
    slow = Receiver(lambda _r, _i: Reply(delay_s=3.0)).up()
    fast = Receiver().up()
    register(db, box, slow.url)
    register(db, box, fast.url)
    start_dispatcher(concurrency_per_endpoint=2, timeout_s=5.0)
    sent = [notify(db) for _ in range(6)]

    fast.wait_for_requests(6, timeout_s=2.5)  # all six while the slow one still answers its first two
    assert sorted(fast.ids()) == sorted(sent)
    assert len(slow.requests) == 2  # its own slots only
    assert len(slow.wait_for_requests(4, timeout_s=10)) <= 4
    slow.down()
    fast.down()


def test_two_dispatchers_on_one_database_never_send_the_same_attempt(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver(lambda _r, _i: Reply(delay_s=0.05)).up()
    register(db, box, receiver.url)
    start_dispatcher()
    start_dispatcher()  # as a second server process would
    sent = [notify(db) for _ in range(30)]

    receiver.wait_for_requests(len(sent))
    wait_for(lambda: deliveries(db), lambda got: len(got) == 30 and all(d.state == "succeeded" for d in got))
    settle()
    assert sorted(receiver.ids()) == sorted(sent)  # each exactly once
    receiver.down()


def test_the_evaluator_calls_on_commit_after_each_commit(db: Database) -> None:
    commits: list[int] = []
    evaluator = Evaluator(db, batch_events=100, poll_interval_s=1.0, on_commit=lambda: commits.append(1))
    evaluator.run_once()
    assert commits == [1]


def test_the_fan_out_cursor_waits_at_a_gap_but_sends_past_it(
    tmp_path: object, box: SecretBox, clock: Clock
) -> None:
    db = Database(f"sqlite:///{tmp_path}/gaps.db")
    from meterline.store.migrate import upgrade_to_head

    upgrade_to_head(db)
    receiver_url = "http://127.0.0.1:9/hooks"
    endpoint = register(db, box, receiver_url)
    first = notify(db)
    with db.write() as conn:  # seq 3 committed while seq 2 is still (or forever) missing
        conn.execute(
            notifications.insert().values(
                seq=3,
                id="n-after-gap",
                type="alerts.spend_threshold_reached",
                payload="{}",
                created_at_us=clock(),
            )
        )
    with db.write() as conn:
        waiting = store.fan_out(conn, clock(), 100)
    assert (waiting.position, waiting.gap_before) == (1, 3)
    assert {d.notification_id for d in deliveries(db, endpoint_id=endpoint.endpoint.id)} == {
        first,
        "n-after-gap",
    }
    with db.write() as conn:
        again = store.fan_out(conn, clock(), 100)
        jumped = store.fan_out(conn, clock(), 100, skip_gap_through=3)
    assert (again.position, len(deliveries(db))) == (1, 2)  # read again, nothing created twice
    assert (jumped.position, jumped.gap_before) == (3, None)
    db.dispose()


def test_notifications_handed_over_by_the_evaluator_leave_at_its_commit_without_a_poll(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    """The evaluator claims its batch's notifications inside its own transaction and hands them
    over after the commit: they are sent at once, though the dispatcher would not poll for a minute."""
    receiver = Receiver().up()
    register(db, box, receiver.url)
    dispatcher = start_dispatcher(poll_interval_s=60.0)
    settle()  # its first cycle has run and found nothing: it sleeps for the minute now
    notification_id = new_id()
    with db.write() as conn:  # as the evaluator's batch transaction does
        alerts.add_notification(
            conn,
            alerts.Notification(notification_id, "alerts.spend_threshold_reached", "a-1", "c-1", {}),
            clock(),
        )
        claims = dispatcher.claim_in(conn, clock())
    assert [c.notification_id for c in claims] == [notification_id]
    dispatcher.hand_over(claims)
    receiver.wait_for_requests(1, timeout_s=2.0)
    assert receiver.ids() == [notification_id]
    assert wait_for_state(db, notification_id, "succeeded").attempts == 1  # recorded, once
    receiver.down()


def test_claims_handed_over_before_the_dispatcher_runs_are_each_sent_once(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    """The evaluator's process claims in its own transaction and hands the claim's id over; one
    that arrives while the delivery process is still starting is sent once it runs."""
    receiver = Receiver().up()
    register(db, box, receiver.url)
    sent = [notify(db) for _ in range(5)]
    dispatcher = Dispatcher(
        db, box, timeout_s=2.0, poll_interval_s=0.02, clock=clock, allow_private_networks=True
    )
    outbox = RemoteOutbox(_AdoptingChannel(dispatcher), timeout_s=2.0)
    with db.write() as conn:
        claims = outbox.claim_in(conn, clock())
    assert [len(taken.delivery_ids) for taken in claims] == [5]  # one claim, handed over by id
    outbox.hand_over(claims)  # before the dispatcher's loop exists
    dispatcher.start()
    try:
        receiver.wait_for_requests(5)
        settle()
        assert sorted(receiver.ids()) == sorted(sent) and len(receiver.requests) == 5
        wait_for(lambda: deliveries(db), lambda got: all(d.state == "succeeded" for d in got))
    finally:
        dispatcher.stop()
        receiver.down()


def test_claims_waiting_their_turn_keep_their_lease(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    """A backlog to a slow endpoint outlives one lease: its dispatcher extends the leases it holds,
    so another dispatcher (another server) does not take them over and send them twice."""
    receiver = Receiver(lambda _request, _index: Reply(delay_s=0.3)).up()
    register(db, box, receiver.url)
    sent = [notify(db) for _ in range(6)]
    first = start_dispatcher(concurrency_per_endpoint=1)
    receiver.wait_for_requests(1)  # all six claimed; five wait for the one slot
    lease_us = lease_us_of(first)
    claimed_until = clock() + lease_us
    clock.advance(lease_us / 2 / US_PER_SECOND)
    wait_for(
        lambda: [d for d in deliveries(db) if d.state == "pending"],
        lambda waiting: bool(waiting) and all((d.next_attempt_at_us or 0) > claimed_until for d in waiting),
    )
    clock.advance(lease_us / 2 / US_PER_SECOND + 1)  # past the first leases, within the renewed ones
    start_dispatcher(concurrency_per_endpoint=4)
    receiver.wait_for_requests(6, timeout_s=15)
    settle(0.5)
    assert sorted(receiver.ids()) == sorted(sent) and len(receiver.requests) == 6
    receiver.down()


def test_a_batch_of_more_crossings_than_one_fan_out_is_handed_over_whole(
    db: Database, box: SecretBox, clock: Clock
) -> None:
    """A burst: the evaluator's batch wrote more notifications than the dispatcher fans out at a
    time. Its hand-over claims every one in the batch's own transaction, so none waits for a write
    transaction of the delivery process (queued behind the evaluator's next batch), and each is
    sent once."""
    receiver = Receiver().up()
    register(db, box, receiver.url)
    # Within what the test receiver's listen backlog takes on a busy machine (a refused or timed
    # out attempt would wait for a retry on a clock that does not move).
    dispatcher = Dispatcher(
        db,
        box,
        timeout_s=10.0,
        poll_interval_s=60.0,
        concurrency_per_endpoint=4,
        clock=clock,
        allow_private_networks=True,
    )
    outbox = RemoteOutbox(_AdoptingChannel(dispatcher), timeout_s=10.0)
    sent = [new_id() for _ in range(FANOUT_BATCH + 200)]
    with db.write() as conn:  # as the evaluator's batch transaction does
        alerts.add_notifications(
            conn,
            [
                (alerts.Notification(n, "alerts.spend_threshold_reached", "a-1", f"c-{k}", {}), clock())
                for k, n in enumerate(sent)
            ],
        )
        claims = outbox.claim_in(conn, clock())
    assert [len(taken.delivery_ids) for taken in claims] == [len(sent)]
    dispatcher.start()
    try:
        outbox.hand_over(claims)
        receiver.wait_for_requests(len(sent), timeout_s=30.0)
        settle()
        assert sorted(receiver.ids()) == sorted(sent) and len(receiver.requests) == len(sent)
        wait_for(lambda: _states(db), lambda states: states == {"succeeded": len(sent)}, 30.0)
    finally:
        dispatcher.stop()
        receiver.down()


def test_attempts_are_recorded_within_the_recording_interval_without_a_poll(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    """Attempts are recorded together, not one transaction each; the delivery log still shows
    them within a moment though nothing else wakes the dispatcher (it would poll in a minute)."""
    receiver = Receiver().up()
    register(db, box, receiver.url)
    sent = [notify(db) for _ in range(12)]
    start_dispatcher(poll_interval_s=60.0)
    receiver.wait_for_requests(len(sent))
    for notification_id in sent:
        assert wait_for_state(db, notification_id, "succeeded", timeout_s=RECORD_INTERVAL_S + 2).attempts == 1
    receiver.down()


class _DiesBeforeRecording(Dispatcher):
    """A dispatcher whose process is killed once it has sent, before any attempt is recorded."""

    @staticmethod
    def _record_in(conn: Connection, finished: list[Finished]) -> None:
        if finished:
            raise RuntimeError("killed before recording")


def test_attempts_sent_and_not_recorded_before_a_crash_are_sent_again_never_lost(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    """Recording in batches widens the window between sending and recording: a crash in it means
    those webhooks go out again (same ids) once their leases end, and every one is recorded."""
    receiver = Receiver().up()
    register(db, box, receiver.url)
    sent = [notify(db) for _ in range(10)]
    dying = _DiesBeforeRecording(
        db,
        box,
        timeout_s=10.0,
        poll_interval_s=0.02,
        concurrency_per_endpoint=4,
        clock=clock,
        allow_private_networks=True,
    )
    dying.start()
    receiver.wait_for_requests(len(sent), timeout_s=30.0)
    settle(RECORD_INTERVAL_S * 2)
    dying.stop()
    assert all(d.state == "pending" and d.attempts == 0 for d in deliveries(db))  # none recorded

    start_dispatcher()
    settle()
    assert len(receiver.requests) == len(sent)  # their leases still hold
    clock.advance(lease_us(10.0) / US_PER_SECOND)
    receiver.wait_for_requests(2 * len(sent), timeout_s=30.0)
    settle()
    assert sorted(receiver.ids()) == sorted(sent * 2)  # each sent again, once, with its own id
    for notification_id in sent:
        assert wait_for_state(db, notification_id, "succeeded").attempts == 1
    receiver.down()


def _states(db: Database) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.state, func.count()).group_by(webhook_deliveries.c.state)
        )
        return {state: int(count) for state, count in rows}


class _AdoptingChannel:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def send_claim(self, claim_id: str) -> None:
        self.dispatcher.adopt(claim_id)


def lease_us_of(dispatcher: Dispatcher) -> int:
    return lease_us(dispatcher.timeout_s)
