"""Rules every request body and URL passes at the edge, before any route parses it.

Checked once here for every route, so no route can forget them:

- a body is valid UTF-8 (no parser downstream sees bytes it could decode only leniently);
- every string of a JSON body is made of Unicode scalar values: a lone surrogate (`"\\ud800"`)
  is valid JSON but not text, and neither a database driver nor a hash can encode it;
- a JSON body nests at most `MAX_JSON_DEPTH` levels: deeper ones exhaust the parsers' recursion
  (and stored deep values would do the same to every later reader);
- a percent-encoded path or query decodes to valid UTF-8.

The checks are cheap where input is ordinary: the surrogate and depth walks run only when a
byte-level scan finds an escape that could be a surrogate or more brackets than the bound.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_JSON_DEPTH = 32
SURROGATE_RULE = "must be valid Unicode (no lone surrogates)"
DEPTH_RULE = f"must not nest deeper than {MAX_JSON_DEPTH} levels"
# A JSON escape of a UTF-16 surrogate (\uD800-\uDFFF); a valid pair decodes to one character.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")


def url_problem(raw_path: bytes, query_string: bytes) -> str | None:
    """Why the request's path or query is refused, or None."""
    for name, raw in (("path", raw_path), ("query", query_string)):
        if b"%" not in raw:
            continue
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return f"{name}: must be valid UTF-8 once percent-decoded"
    return None


def body_problem(body: bytes, root: str, *, check_depth: bool = True) -> str | None:
    """Why a JSON body is refused at the edge (`field.path: rule`), or None.

    A body that is not JSON at all passes: the route's own parser says so, naming its rule.
    `root` names the top level where the body is an array (`events` for ingest's batch).
    `check_depth=False` leaves the depth bound to a route whose own parser enforces it.
    """
    if not body:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "body: must be valid UTF-8"
    may_hold_surrogate = b"\\u" in body and _SURROGATE_ESCAPE.search(body) is not None
    may_be_deep = check_depth and body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    if not (may_hold_surrogate or may_be_deep):
        return None
    try:
        parsed = json.loads(body)
    except RecursionError:
        return f"body: {DEPTH_RULE}"
    except ValueError:
        return None
    return _walk(parsed, root)


def _walk(parsed: Any, root: str) -> str | None:
    """The first string that is not Unicode text, or the first value nested too deep."""
    # Iterative, so the walk itself cannot run out of stack.
    pending: list[tuple[Any, str, int]] = [(parsed, "", 1)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, str):
            if _SURROGATE_CHAR.search(value):
                return f"{path or 'body'}: {SURROGATE_RULE}"
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            return f"{path or 'body'}: {DEPTH_RULE}"
        if isinstance(value, list):
            prefix = path or root
            pending.extend((item, f"{prefix}[{i}]", depth + 1) for i, item in enumerate(value))
            continue
        for key, item in value.items():
            if _SURROGATE_CHAR.search(key):
                return f"{_join(path, _printable(key))}: keys {SURROGATE_RULE}"
            pending.append((item, _join(path, key), depth + 1))
    return None


def _join(path: str, key: str) -> str:
    key = key if len(key) <= 100 else f"{key[:100]}..."
    return f"{path}.{key}" if path else key


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
