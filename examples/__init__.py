"""Runnable examples of applications built on meterline."""
