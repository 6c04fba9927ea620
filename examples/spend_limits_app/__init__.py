"""Spend limits enforced from meterline's alerts: a reference webhook receiver."""
