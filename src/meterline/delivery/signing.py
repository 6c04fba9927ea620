"""The two signatures every webhook request carries, computed afresh for each attempt.

Metronome's: `Metronome-Webhook-Signature` is the lowercase hex HMAC-SHA256, keyed with the whole
secret string, of the `Date` header value, a newline, and the raw body.
Standard Webhooks': `webhook-signature` is `v1,<base64 HMAC-SHA256>` of `id.timestamp.body`, keyed
with the base64-decoded part of the secret after `whsec_`. During a secret rotation the previous
secret signs too (space-separated signatures), so receivers can switch at their own pace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate

from meterline.domain.webhooks import secret_key_bytes


def http_date(epoch_s: int) -> str:
    """RFC 7231 IMF-fixdate, e.g. `Mon, 02 Jan 2006 22:04:05 GMT`."""
    return formatdate(epoch_s, usegmt=True)


def metronome_signature(secret: str, date: str, body: bytes) -> str:
    return hmac.new(secret.encode(), date.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, message_id: str, timestamp_s: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets: list[str], message_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """Headers for one attempt; `secrets` is the current secret, then any still-valid previous one."""
    date = http_date(timestamp_s)
    return {
        "content-type": "application/json",
        "date": date,
        "x-metronome-date": date,
        "metronome-webhook-signature": metronome_signature(secrets[0], date, body),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": " ".join(standard_signature(s, message_id, timestamp_s, body) for s in secrets),
    }
