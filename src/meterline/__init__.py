"""meterline: a self-hosted, Metronome-compatible usage-based billing engine."""

__version__ = "0.1.0"
