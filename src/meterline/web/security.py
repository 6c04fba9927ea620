"""What every dashboard response carries: who may frame it (CSP frame-ancestors) and nothing else
it may load but meterline's own files. The pages set no cookies."""

from __future__ import annotations

import secrets

from meterline.settings import Settings


def new_nonce() -> str:
    """For the one inline <style> holding the customer's colors."""
    return secrets.token_urlsafe(16)


def page_headers(settings: Settings, nonce: str) -> dict[str, str]:
    policy = "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {settings.embed_frame_ancestors}",
        )
    )
    return {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
