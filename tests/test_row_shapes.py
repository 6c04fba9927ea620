"""Rows the evaluator reads positionally (its hot path) must keep their records' field order."""

from __future__ import annotations

from dataclasses import fields

from meterline.store.alerts import AlertState
from meterline.store.event_log import _LOGGED_COLUMNS, LoggedEvent
from meterline.store.tables import alert_states


def test_alert_state_rows_are_alert_states_in_field_order() -> None:
    assert [c.name for c in alert_states.columns] == [f.name for f in fields(AlertState)]


def test_logged_event_columns_are_in_field_order() -> None:
    assert [c.name for c in _LOGGED_COLUMNS] == [f.name for f in fields(LoggedEvent)]
