"""Every (method, path) the official `metronome-sdk` calls, read from its resource modules' source.

Parsed, not imported or exercised: each resource method ends in `self._get/_post/...(path, ...)`
or `self._get_api_list(path, ..., method=...)`, where `path` is a literal or
`path_template("/v1/customers/{customer_id}/...", ...)`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import metronome

VERBS = {"_get": "GET", "_post": "POST", "_put": "PUT", "_patch": "PATCH", "_delete": "DELETE"}


def sdk_routes() -> set[tuple[str, str]]:
    resources = Path(metronome.__file__).parent / "resources"
    found: set[tuple[str, str]] = set()
    for source in resources.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            route = _route(node)
            if route is not None:
                found.add(route)
    return found


def _route(node: ast.AST) -> tuple[str, str] | None:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
        return None
    name = node.func.attr
    if name == "_get_api_list":
        given = {k.arg: k.value for k in node.keywords}
        method_node = given.get("method")
        method = method_node.value.upper() if isinstance(method_node, ast.Constant) else "GET"
    elif name in VERBS:
        method = VERBS[name]
    else:
        return None
    path = _path(node.args[0])
    return (method, path) if path is not None and path.startswith("/v") else None


def _path(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "path_template" and node.args:
        return _path(node.args[0])
    return None
