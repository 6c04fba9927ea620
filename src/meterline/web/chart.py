"""A server-rendered bar chart (SVG) of one metric's usage per month and group: no script, no
library, drawn in the page's own colors. Every chart sits beside a table of the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meterline.web.theme import series_color

WIDTH, HEIGHT = 600, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 28
MAX_SERIES = 10  # more groups than this are in the table only


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    top_label: str  # the axis' maximum
    baseline_y: float
    legend: list[tuple[str, str]]  # (label, color)


def bar_chart(categories: list[str], series: dict[str, list[Decimal | None]]) -> Chart:
    shown = list(series.items())[:MAX_SERIES]
    top = max((v for _label, values in shown for v in values if v is not None), default=Decimal(0))
    scale = top if top > 0 else Decimal(1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(categories))
    bar_w = slot * 0.8 / max(1, len(shown))
    bars, ticks = [], []
    for ci, category in enumerate(categories):
        ticks.append(Tick(LEFT + slot * (ci + 0.5), category))
        for si, (label, values) in enumerate(shown):
            value = values[ci] or Decimal(0)
            height = float(value / scale) * plot_h
            bars.append(
                Bar(
                    x=round(LEFT + slot * ci + slot * 0.1 + bar_w * si, 2),
                    y=round(TOP + plot_h - height, 2),
                    width=round(bar_w, 2),
                    height=round(height, 2),
                    color=series_color(si),
                    title=f"{label}, {category}: {value}",
                )
            )
    legend = [(label, series_color(si)) for si, (label, _v) in enumerate(shown)]
    return Chart(WIDTH, HEIGHT, bars, ticks, str(top), TOP + plot_h, legend)
