"""Errors every layer may raise; the API turns each into its HTTP status and `{"message": ...}`."""

from __future__ import annotations


class MeterlineError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidInput(MeterlineError):
    status_code = 400


class NotFound(MeterlineError):
    status_code = 404


class Conflict(MeterlineError):
    status_code = 409


class Unavailable(MeterlineError):
    status_code = 503
