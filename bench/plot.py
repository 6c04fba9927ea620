"""The PNG beside the tables: events/s acknowledged and evaluated, second by second, during (a);
and during (b) each webhook's latency at the moment its threshold was crossed. Needs matplotlib
(the `bench` extra); without it nothing is drawn."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bodies import EVENTS_PER_BATCH
from bench.workloads import LatencyRun, LoadRun

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def per_second_acked(run: LoadRun) -> list[tuple[float, float]]:
    """(second, events acknowledged during that second)."""
    seconds = max(1, int((run.last_ack_ns - run.started_ns) // 1_000_000_000) + 1)
    counts = [0] * seconds
    for t in run.ack_ns:
        if t:
            counts[min(seconds - 1, int((t - run.started_ns) // 1_000_000_000))] += EVENTS_PER_BATCH
    return [(i + 0.5, float(c)) for i, c in enumerate(counts)]


def per_second_evaluated(run: LoadRun) -> list[tuple[float, float]]:
    """(second, events evaluated during that second), interpolated between the samples."""
    samples = sorted(((t - run.started_ns) / 1e9, float(e)) for t, _a, e in run.samples)
    points = [(0.0, 0.0), *samples]
    end = points[-1][0]

    def at(second: float) -> float:
        for (t0, e0), (t1, e1) in itertools.pairwise(points):
            if t0 <= second <= t1:
                return e0 if t1 == t0 else e0 + (e1 - e0) * (second - t0) / (t1 - t0)
        return points[-1][1]

    rates = []
    second = 0.0
    while second < end:
        upper = min(second + 1.0, end)
        rates.append((second + (upper - second) / 2, (at(upper) - at(second)) / (upper - second)))
        second += 1.0
    return rates


def plot(throughput: LoadRun | None, latency: LatencyRun | None, path: Path) -> bool:
    """Draw the PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8.5), constrained_layout=True)
    if throughput is not None:
        _rates(top, throughput)
        _legend(top, [top])
        top.set_title("(a) throughput: events/s, second by second")
    if latency is not None:
        _rates(bottom, latency.load)
        right = bottom.twinx()
        start = latency.load.started_ns
        for points, color, label in (
            (latency.latencies.samples, "tab:red", "webhook latency"),
            (latency.latencies.censored, "tab:gray", "no webhook yet when the wait ended (lower bound)"),
        ):
            if points:
                right.scatter(
                    [(t - start) / 1e9 for t, _ms in points],
                    [ms for _t, ms in points],
                    s=6,
                    color=color,
                    label=label,
                )
        right.set_ylabel("ms from the crossing ack to the webhook")
        right.set_ylim(bottom=0)
        _legend(bottom, [bottom, right])
        bottom.set_title(
            "(b) alert latency at half the rate: each webhook at the time its threshold was crossed"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _rates(axes: Axes, run: LoadRun) -> None:
    acked = per_second_acked(run)
    evaluated = per_second_evaluated(run)
    axes.plot([a[0] for a in acked], [a[1] for a in acked], label="acknowledged", color="tab:blue")
    axes.plot(
        [e[0] for e in evaluated],
        [e[1] for e in evaluated],
        label="evaluated",
        color="tab:green",
        linestyle="--",
    )
    axes.set_ylabel("events/s")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("seconds since the load started")


def _legend(axes: Axes, sources: list[Axes]) -> None:
    """One legend for the lines and points of `sources`, below `axes`, clear of the data."""
    handles, labels = [], []
    for source in sources:
        found = source.get_legend_handles_labels()
        handles += found[0]
        labels += found[1]
    axes.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(labels), fontsize="small"
    )
