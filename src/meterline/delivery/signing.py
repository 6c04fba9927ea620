"""The two signatures every webhook request carries, computed afresh for each attempt.

Metronome's: `Metronome-Webhook-Signature` is the lowercase hex HMAC-SHA256, keyed with the whole
secret string, of the `Date` header value, a newline, and the raw body.
Standard Webhooks': `webhook-signature` is `v1,<base64 HMAC-SHA256>` of `id.timestamp.body`, keyed
with the base64-decoded part of the secret after `whsec_`. During a secret rotation the previous
secret signs too (space-separated signatures), so receivers can switch at their own pace.

The dispatcher keeps a `Signer` per endpoint: its keys are decoded and loaded into HMAC states
once, and each attempt copies a state instead of keying a new one (a burst of thousands of
webhooks to one endpoint signs with the same keys every time).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate
from functools import lru_cache

from meterline.domain.webhooks import secret_key_bytes


@lru_cache(maxsize=8)
def http_date(epoch_s: int) -> str:
    """RFC 7231 IMF-fixdate, e.g. `Mon, 02 Jan 2006 22:04:05 GMT` (formatted once per second)."""
    return formatdate(epoch_s, usegmt=True)


def metronome_signature(secret: str, date: str, body: bytes) -> str:
    return hmac.new(secret.encode(), date.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, message_id: str, timestamp_s: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Signer:
    """Signs attempts with one endpoint's secrets: the current one, then any still-valid previous one."""

    def __init__(self, secrets: list[str]) -> None:
        self._metronome = hmac.new(secrets[0].encode(), digestmod=hashlib.sha256)
        self._standard = [hmac.new(secret_key_bytes(s), digestmod=hashlib.sha256) for s in secrets]

    def headers(self, message_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
        """Headers for one attempt."""
        date = http_date(timestamp_s)
        metronome = self._metronome.copy()
        metronome.update(date.encode() + b"\n" + body)
        signed = f"{message_id}.{timestamp_s}.".encode() + body
        standard = []
        for keyed in self._standard:
            digest = keyed.copy()
            digest.update(signed)
            standard.append("v1," + base64.b64encode(digest.digest()).decode())
        return {
            "content-type": "application/json",
            "date": date,
            "x-metronome-date": date,
            "metronome-webhook-signature": metronome.hexdigest(),
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp_s),
            "webhook-signature": " ".join(standard),
        }


def signed_headers(secrets: list[str], message_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """Headers for one attempt; `secrets` is the current secret, then any still-valid previous one."""
    return Signer(secrets).headers(message_id, timestamp_s, body)
