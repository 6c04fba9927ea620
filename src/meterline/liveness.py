"""Whether a part of the engine (evaluator, webhook delivery) is alive, as its supervisor sees it."""

from __future__ import annotations

from dataclasses import dataclass

# Restarts are counted over this window: a part restarted several times within it is crash-looping.
RESTART_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class PartLiveness:
    alive: bool
    recent_restarts: int  # restarts within RESTART_WINDOW_S
