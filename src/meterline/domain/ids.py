"""Identifiers meterline hands out."""

from __future__ import annotations

import uuid

USD_CENTS_CREDIT_TYPE_ID = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"


def new_id() -> str:
    return str(uuid.uuid4())
