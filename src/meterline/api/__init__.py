"""HTTP API: Metronome-compatible routes. Handlers are thin: parse, call, shape."""
