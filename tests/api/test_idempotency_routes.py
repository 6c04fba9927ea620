"""Which routes take the Idempotency-Key header, read from the application's own route table: every
POST that only reads is listed as a read (so a key there changes nothing), and the list names
no route that is not served."""

from __future__ import annotations

import re

from meterline.api.idempotency import NOT_KEYED, READS, is_keyed
from tests.support.offline_app import openapi_document

# Reads sent with POST, by their names (Metronome's, and meterline's access check).
READ_NAME = re.compile(r"/(get|list|search)[A-Za-z]*$|^/v1/usage(/groups)?$|^/v1/access/check$")


def _served() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in openapi_document()["paths"].items() for method in ops}


def test_every_post_that_only_reads_is_listed_as_a_read() -> None:
    reads = {path for method, path in _served() if method == "POST" and READ_NAME.search(path)}
    not_keyed = {path for path in reads if any(path.startswith(p) for p in NOT_KEYED)}
    assert reads - not_keyed == READS


def test_every_listed_read_is_a_served_post() -> None:
    assert {("POST", path) for path in READS} <= _served()


def test_every_served_write_but_ingest_and_webhooks_takes_the_key_and_documents_it() -> None:
    for method, path in _served():
        operation = openapi_document()["paths"][path][method.lower()]
        documented = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
        writes = method in ("POST", "PUT") and path not in READS
        exempt = path == "/v1/ingest" or path.startswith("/v1/webhooks/")
        assert is_keyed(method, path) == documented == (writes and not exempt), (method, path)
