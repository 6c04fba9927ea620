"""Webhook delivery: signing, the retry schedule, endpoint secrets, and the dispatcher.

Imports domain/ and store/ (and meterline's logging) only; the API and the CLI wire it to settings.
"""
