"""The layers of DESIGN.md, checked from the source: each module imports only the layers below its
own, and no two packages import each other (directly or around a loop).

Imports are read with `ast` (every `import` and `from ... import`, at any depth, including those
under `TYPE_CHECKING`), so a violation fails here before anyone reads the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "meterline"

# The layer of each package or top-level module of meterline, and the layers it may import.
# `meterline` is the package itself (its `__version__`); `logging`, `metrics`, `liveness` and
# `settings` are leaves that the layers using them may import.
ALLOWED: dict[str, set[str]] = {
    "meterline": set(),
    # The client applications embed (meterline.guard): httpx and the standard library only.
    "guard": set(),
    "logging": set(),
    "metrics": set(),
    "liveness": set(),
    "domain": set(),
    "settings": {"domain"},
    "store": {"domain", "logging", "metrics", "liveness"},
    # services: the engine only for names the engine defines (what triggered an alert's sweep).
    "services": {"domain", "store", "engine"},
    "engine": {"domain", "store", "logging", "metrics", "liveness"},
    "delivery": {"domain", "store", "logging", "metrics", "liveness", "meterline"},
    "api": {
        "domain",
        "store",
        "services",
        "engine",
        "delivery",
        "settings",
        "logging",
        "metrics",
        "liveness",
        "meterline",
    },
    # web: the embeddable dashboards; above the API, whose renderings and capabilities it reuses.
    "web": {
        "domain",
        "store",
        "services",
        "engine",
        "api",
        "settings",
        "logging",
        "metrics",
        "liveness",
        "meterline",
    },
    "runtime": {
        "web",
        "domain",
        "store",
        "engine",
        "delivery",
        "api",
        "settings",
        "logging",
        "metrics",
        "liveness",
        "meterline",
    },
    "cli": {
        "domain",
        "store",
        "services",
        "engine",
        "delivery",
        "api",
        "runtime",
        "settings",
        "logging",
        "metrics",
        "liveness",
    },
}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        yield ".".join(("meterline", *parts)).removesuffix(".__init__"), path


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "meterline"


MODULES = dict(_modules())


@cache
def imports_of(module: str) -> set[str]:
    """Every meterline module or name this module imports, absolute (parsed when a test first asks:
    every test process collects this file, and few of them run its tests)."""
    path = MODULES[module]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; meterline imports absolutely"
            names.add(node.module or "")
    return {name for name in names if name == "meterline" or name.startswith("meterline.")}


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = sorted({_layer(module) for module in MODULES} - ALLOWED.keys())
    assert not unknown, f"packages missing from the layer table: {unknown}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_layers_below_its_own(module: str) -> None:
    own = _layer(module)
    wrong = sorted(
        name for name in imports_of(module) if _layer(name) != own and _layer(name) not in ALLOWED[own]
    )
    assert not wrong, f"{module} ({own}/) may import {sorted(ALLOWED[own])} only, but imports {wrong}"


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        graph.setdefault(_layer(module), set()).update(
            _layer(name) for name in imports_of(module) if _layer(name) != _layer(module)
        )
    for start in graph:
        seen, frontier = set(), set(graph[start])
        while frontier:
            layer = frontier.pop()
            assert layer != start, f"{start} imports itself through {sorted(seen)}"
            if layer not in seen:
                seen.add(layer)
                frontier |= graph.get(layer, set())


def test_the_table_itself_has_no_cycle() -> None:
    """So a table edit cannot allow one: the layers sort into an order where each imports below."""
    order: list[str] = []
    remaining = dict(ALLOWED)
    while remaining:
        ready = [layer for layer, below in remaining.items() if below <= set(order)]
        assert ready, f"the layer table has a cycle among {sorted(remaining)}"
        order.extend(sorted(ready))
        for layer in ready:
            del remaining[layer]
