"""Pieces shared by route modules: strict request models, query lists, time formatting."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from meterline.domain.timeutil import format_rfc3339


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused with a 400 that names them."""

    model_config = ConfigDict(extra="forbid")


def id_response(object_id: str) -> dict[str, dict[str, str]]:
    return {"data": {"id": object_id}}


def split_query_list(values: list[str] | None) -> list[str] | None:
    """The SDK sends arrays in the query as comma-separated values; accept repeats too."""
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


def optional_time(us: int | None) -> str | None:
    return None if us is None else format_rfc3339(us)
