"""Colors of the embeddable dashboards, by Metronome's color names, with the operator's overrides.

Each becomes a CSS custom property (`--Gray_dark`, `--UsageLine_3`, ...) the stylesheet uses. The
defaults keep text at 4.5:1 contrast or more on white.
"""

from __future__ import annotations

DEFAULTS: dict[str, str] = {
    "Gray_dark": "#1f2933",
    "Gray_medium": "#52606d",
    "Gray_light": "#cbd2d9",
    "Gray_extralight": "#f5f7fa",
    "White": "#ffffff",
    "Primary_medium": "#1d4ed8",
    "Primary_light": "#dbeafe",
    "UsageLine_0": "#1d4ed8",
    "UsageLine_1": "#c2410c",
    "UsageLine_2": "#047857",
    "UsageLine_3": "#7c3aed",
    "UsageLine_4": "#b91c1c",
    "UsageLine_5": "#0e7490",
    "UsageLine_6": "#a16207",
    "UsageLine_7": "#be185d",
    "UsageLine_8": "#4d7c0f",
    "UsageLine_9": "#475569",
    "Primary_green": "#047857",
    "Primary_red": "#b91c1c",
    "Progress_bar": "#1d4ed8",
    "Progress_bar_background": "#e4e7eb",
    "Action": "#1d4ed8",
    "Action_hover": "#1e40af",
}
SERIES_COLORS = 10  # UsageLine_0 .. UsageLine_9


def css_variables(overrides: dict[str, str]) -> str:
    """`:root { --Name: #hex; ... }` with the overrides applied (already checked as #RRGGBB)."""
    colors = {**DEFAULTS, **{k: v for k, v in overrides.items() if k in DEFAULTS}}
    return ":root{" + "".join(f"--{name}:{value};" for name, value in colors.items()) + "}"


def series_color(index: int) -> str:
    return f"var(--UsageLine_{index % SERIES_COLORS})"
