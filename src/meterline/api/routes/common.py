"""Pieces shared by route modules: strict request models, custom fields, query lists, time formatting."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from meterline.domain.custom_fields import KEY_MAX_CHARS, VALUE_MAX_CHARS
from meterline.domain.timeutil import format_rfc3339

CustomFieldKey = Annotated[str, Field(min_length=1, max_length=KEY_MAX_CHARS)]
# `custom_fields` wherever Metronome takes them: string values within Metronome's limits.
CustomFields = dict[CustomFieldKey, Annotated[str, Field(max_length=VALUE_MAX_CHARS)]]


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
