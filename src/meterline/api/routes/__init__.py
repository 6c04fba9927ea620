"""One module per Metronome resource."""
