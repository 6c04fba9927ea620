"""The README's verification code, run on what a real receiver gets before, during and after a
secret rotation: the Standard Webhooks header verifies with either secret during the grace period,
Metronome's with the new secret only, which the README's `metronome_verified` accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from meterline.delivery import endpoints
from meterline.delivery.secrets import SecretBox, generate_secret
from meterline.domain.timeutil import US_PER_SECOND
from meterline.store.db import Database
from tests.delivery.conftest import StartDispatcher
from tests.delivery.helpers import Clock, notify, register
from tests.delivery.receiver import Receiver, Request

GRACE_S = 60
README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_verification() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    [block] = [b for b in blocks if "def metronome_verified" in b]
    return block


def as_the_readme(secret: str, request: Request) -> dict[str, Any]:
    """Run the README's block as a receiver would: SECRET, the raw body, the request's headers."""
    headers = httpx.Headers(request.headers)  # case-insensitive, as every web framework's
    scope: dict[str, Any] = {"SECRET": secret, "raw_body": request.body, "request_headers": headers}
    exec(_readme_verification(), scope)
    return scope


def test_a_receiver_verifies_through_a_rotation_as_the_readme_says(
    db: Database, box: SecretBox, clock: Clock, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver().up()
    registered = register(db, box, receiver.url)
    old = registered.secret
    new = generate_secret()  # chosen first, as the README advises for Metronome-scheme receivers
    with db.write() as conn:
        endpoints.rotate(conn, box, registered.endpoint.id, new, GRACE_S * US_PER_SECOND, clock())
    start_dispatcher()

    notify(db)
    [during] = receiver.wait_for_requests(1)
    for secret in (old, new):  # Standard Webhooks: either secret, during the grace period
        scope = as_the_readme(secret, during)
        assert scope["notification"]["type"] == "alerts.spend_threshold_reached"
    verified = scope["metronome_verified"]
    headers = httpx.Headers(during.headers)
    assert verified(during.body, headers, [new, old])
    assert verified(during.body, headers, [new])
    assert not verified(during.body, headers, [old])  # Metronome's header: the new secret only

    clock.advance(GRACE_S + 1)  # within the receivers' 5-minute timestamp tolerance
    notify(db)
    after = receiver.wait_for_requests(2)[1]
    as_the_readme(new, after)
    with pytest.raises(WebhookVerificationError):
        as_the_readme(old, after)
    assert verified(after.body, httpx.Headers(after.headers), [new, old])
    receiver.down()
