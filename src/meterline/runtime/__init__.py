"""Process wiring: what runs where, built from settings.

The one place that turns `Settings` into running parts: the API server (`server.create_app`) with
the evaluator and webhook delivery either in processes of their own (`engine_processes`) or as
threads beside it, the evaluator alone for `meterline evaluate`, and webhook delivery for the CLI.
It imports every layer below it; nothing below imports it.
"""
