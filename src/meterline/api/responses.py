"""JSON responses that write Decimal as exact JSON numbers (never through float)."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi.responses import JSONResponse

_encoder = msgspec.json.Encoder(decimal_format="number")


class ExactJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def message(status_code: int, text: str, headers: dict[str, str] | None = None) -> ExactJSONResponse:
    """Metronome's error shape."""
    return ExactJSONResponse({"message": text}, status_code=status_code, headers=headers)
