"""`make soak`: the crash and fault suite, bounded in time, on SQLite and (when a server is named)
PostgreSQL. Prints a table of the attacks tried, with, for each, the unexpected 5xx answers seen
(a 503 with Retry-After during a fault is the promised answer and is counted apart), the
acknowledged events lost, and the events counted twice.

Attacks, each against a real `meterline serve` on 127.0.0.1 (loopback only, loops bounded):

- kill -9 of the evaluator's process, the delivery process and the server itself, under load;
- a full disk (SQLite on a small tmpfs that is filled) and a read-only database (the tmpfs
  remounted read-only; on PostgreSQL, default_transaction_read_only and its sessions ended);
- 1,000 concurrent clients ingesting at once;
- slow clients: 2,000 stalled connections while ordinary clients ingest;
- hostile webhook receivers (hanging, trickling, huge answers, 500s, redirects inside, resets)
  beside a good one, which must get every notification exactly once;
- schemathesis over the whole OpenAPI document for a few minutes.

Every load client retries a batch it got no 200 for (as a real client does; transaction ids make
that safe) until it is acknowledged; then the event log must hold every acknowledged event, and
usage (after evaluation caught up) must count each exactly once. The server's own log is read for
5xx answers too, so none goes unseen.

    python -m bench.soak [--quick] [--postgres-url URL]   (PostgreSQL also from METERLINE_SOAK_POSTGRES_URL)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from meterline.domain.ids import new_id
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.store import alerts, event_log
from meterline.store.db import Database, normalize_url

BATCH = 20
CUSTOMER_ALIAS = "soak-customer"
EVENT_TYPE = "soak"
START_TIMEOUT_S = 60
SECRET_KEY = Fernet.generate_key().decode()


@dataclass
class Row:
    attack: str
    database: str
    requests: int = 0
    answered_503: int = 0
    unexpected_5xx: int = 0
    lost: int = 0
    duplicates: int = 0
    note: str = ""


# -- a server ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    database_url: str
    workdir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    label: str = "sqlite"
    fault_note: str = ""
    port: int = field(default_factory=_free_port)
    token: str = ""
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "METERLINE_DATABASE_URL": self.database_url,
                "METERLINE_LOG_LEVEL": "info",
                "METERLINE_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",  # the soak's receivers are on loopback
                "METERLINE_WEBHOOK_POLL_INTERVAL_S": "0.2",
                "METERLINE_SECRET_KEY": SECRET_KEY,  # PostgreSQL has no key file: webhooks need one
                **self.env_extra,
            }
        )
        return env

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "meterline.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"meterline {' '.join(args)}: {done.stderr[-2000:]}")
        return done.stdout

    def start(self) -> Server:
        if not self.token:
            if not self.database_url.startswith("sqlite"):
                self.cli("migrate")
            self.token = self.cli("tokens", "create", "soak").strip().splitlines()[-1]
        log = self.workdir / f"server-{len(self.logs)}.log"
        self.logs.append(log)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meterline.cli", "serve", "--port", str(self.port)],
            env=self.env(),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code in (200, 503):
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"serve did not start: {log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def kill_server(self) -> None:
        """SIGKILL the server's process alone: its engine processes see their pipes close and exit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def part_pid(self, part: str) -> int:
        found = re.findall(
            rf'"part": "{part}", "pid": (\d+)|"pid": (\d+), "part": "{part}"', self.logs[-1].read_text()
        )
        return int(found[-1][0] or found[-1][1])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def statuses_logged(self) -> list[str]:
        """The status of every request line the server logged (webhook attempts' are not requests)."""
        found = []
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if '"event": "request"' in line:
                    status = re.search(r'"status": (\d+)', line)
                    found.append(status.group(1) if status else "?")
        return found

    def unexpected_5xx_logged(self) -> int:
        return sum(1 for s in self.statuses_logged() if s.startswith("5") and s != "503")

    def tracebacks_logged(self) -> int:
        return sum(log.read_text(errors="replace").count("unhandled_error") for log in self.logs)


def setup_catalog(server: Server) -> str:
    """A customer (alias soak-customer) and a SUM metric of properties.n over soak events."""
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as api:
        api.post(
            "/v1/customers", json={"name": "soak", "ingest_aliases": [CUSTOMER_ALIAS]}
        ).raise_for_status()
        made = api.post(
            "/v1/billable-metrics/create",
            json={
                "name": "soak-units",
                "aggregation_type": "SUM",
                "aggregation_key": "n",
                "event_type_filter": {"in_values": [EVENT_TYPE]},
            },
        )
        made.raise_for_status()
        return str(made.json()["data"]["id"])


# -- load that retries until acknowledged, and its ledger -------------------------------------------
@dataclass
class Ledger:
    acked: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    retry_after_missing: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, response: httpx.Response | None) -> None:
        with self.lock:
            if response is None:
                self.transport_errors += 1
                return
            self.statuses[response.status_code] += 1
            if response.status_code == 503 and "retry-after" not in response.headers:
                self.retry_after_missing += 1


def _batch(prefix: str) -> list[dict[str, Any]]:
    stamp = format_rfc3339(now_us())
    return [
        {
            "transaction_id": f"{prefix}-{uuid.uuid4().hex}",
            "customer_id": CUSTOMER_ALIAS,
            "event_type": EVENT_TYPE,
            "timestamp": stamp,
            "properties": {"n": 1},
        }
        for _ in range(BATCH)
    ]


def send_until_acked(server: Server, ledger: Ledger, batch: list[dict[str, Any]], deadline: float) -> bool:
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                response = client.post(f"{server.base_url}/v1/ingest", json=batch, headers=server.headers())
            except httpx.TransportError:
                ledger.note(None)
                time.sleep(0.2)
                continue
            ledger.note(response)
            if response.status_code == 200:
                with ledger.lock:
                    ledger.acked.update(e["transaction_id"] for e in batch)
                return True
            time.sleep(0.2 if response.status_code == 503 else 0.05)
    return False


@contextlib.contextmanager
def load(server: Server, ledger: Ledger, *, threads: int = 4, settle_s: float = 60.0) -> Iterator[None]:
    """Ingest continuously on `threads` threads while the block runs; then every batch sent is
    retried until acknowledged (within `settle_s`)."""
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            send_until_acked(server, ledger, _batch("soak"), time.monotonic() + settle_s)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join(settle_s + 15)


# -- checks -------------------------------------------------------------------------------------------
def wait_evaluated(server: Server, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError, KeyError, ValueError):
            body = httpx.get(f"{server.base_url}/health", timeout=5).json()
            if body["evaluator"]["lag_events"] == 0:
                return
        time.sleep(0.5)
    raise RuntimeError("evaluation did not catch up")


def usage_total(server: Server, metric_id: str) -> int:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    body = {
        "starting_on": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ending_before": (start + timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window_size": "NONE",
        "billable_metrics": [{"id": metric_id}],
    }
    total = 0
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60) as api:
        page: str | None = None
        while True:
            answer = api.post("/v1/usage", json=body, params={"next_page": page} if page else None)
            answer.raise_for_status()
            data = answer.json()
            total += sum(int(float(r["value"] or 0)) for r in data["data"])
            page = data["next_page"]
            if not page:
                return total


def stored(database_url: str, transaction_ids: set[str]) -> set[str]:
    db = Database(database_url, pool_size=1)
    try:
        found: set[str] = set()
        ids = sorted(transaction_ids)
        with db.log_read() as conn:
            for i in range(0, len(ids), 500):
                found.update(
                    e.transaction_id for e in event_log.find_by_transaction_ids(conn, ids[i : i + 500])
                )
        return found
    finally:
        db.dispose()


def stored_count(database_url: str) -> int:
    db = Database(database_url, pool_size=1)
    try:
        with db.log_read() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM events WHERE event_type = :t"), {"t": EVENT_TYPE}
                ).scalar()
                or 0
            )
    finally:
        db.dispose()


def baseline(server: Server, metric_id: str) -> tuple[int, int]:
    """Usage counted and events logged before an attack, once evaluation has caught up."""
    wait_evaluated(server)
    return usage_total(server, metric_id), stored_count(server.database_url)


def account(
    row: Row, server: Server, ledger: Ledger, metric_id: str, counted_before: int, stored_before: int
) -> None:
    """Fill the row's columns from the ledger, the event log and usage."""
    wait_evaluated(server)
    row.requests += sum(ledger.statuses.values()) + ledger.transport_errors
    row.answered_503 += ledger.statuses[503]
    row.unexpected_5xx += sum(n for s, n in ledger.statuses.items() if s >= 500 and s != 503)
    row.unexpected_5xx += ledger.retry_after_missing  # a 503 without Retry-After breaks the promise
    row.lost += len(ledger.acked - stored(server.database_url, ledger.acked))
    in_log = stored_count(server.database_url) - stored_before
    counted = usage_total(server, metric_id) - counted_before
    row.duplicates += max(0, counted - in_log)
    row.lost += max(0, in_log - counted)  # logged but never counted is lost to billing too


# -- the attacks -------------------------------------------------------------------------------------
def attack_kills(server: Server, metric_id: str, quick: bool) -> Row:
    row = Row("kill -9 evaluator, delivery, server under load", server.label)
    ledger = Ledger()
    before = baseline(server, metric_id)
    with load(server, ledger):
        time.sleep(2)
        for part in ("evaluator", "webhooks"):
            os.kill(server.part_pid(part), signal.SIGKILL)
            time.sleep(2 if quick else 4)
        server.kill_server()
        time.sleep(1)
        server.start()
        time.sleep(2 if quick else 5)
    account(row, server, ledger, metric_id, *before)
    return row


def attack_concurrency(server: Server, metric_id: str, quick: bool) -> Row:
    clients = 300 if quick else 1000
    row = Row(f"{clients} concurrent clients", server.label)
    ledger = Ledger()
    before = baseline(server, metric_id)

    async def client(session: aiohttp.ClientSession) -> None:
        batch = _batch("conc")
        for _ in range(50):
            try:
                async with session.post(
                    f"{server.base_url}/v1/ingest", json=batch, headers=server.headers()
                ) as answer:
                    await answer.read()
                    with ledger.lock:
                        ledger.statuses[answer.status] += 1
                        if answer.status == 503 and "Retry-After" not in answer.headers:
                            ledger.retry_after_missing += 1
                    if answer.status == 200:
                        with ledger.lock:
                            ledger.acked.update(e["transaction_id"] for e in batch)
                        return
            except (TimeoutError, aiohttp.ClientError, OSError):
                with ledger.lock:
                    ledger.transport_errors += 1
            await asyncio.sleep(0.2)

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            await asyncio.gather(*(client(session) for _ in range(clients)))

    asyncio.run(main())
    account(row, server, ledger, metric_id, *before)
    if len(ledger.acked) != clients * BATCH:
        row.note = f"{clients * BATCH - len(ledger.acked)} events never acknowledged"
    return row


def attack_slow_clients(server: Server, metric_id: str, quick: bool) -> Row:
    stalled_count = 500 if quick else 2000
    row = Row(f"slow clients ({stalled_count} stalled connections)", server.label)
    ledger = Ledger()
    before = baseline(server, metric_id)
    sockets: list[socket.socket] = []
    try:
        for i in range(stalled_count):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if i % 2:
                sock.sendall(b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Le")
            sockets.append(sock)
        with load(server, ledger, threads=2):
            time.sleep(3 if quick else 8)
        still_open = 0
        for sock in sockets:
            sock.settimeout(0.01)
            try:
                if sock.recv(1) != b"":
                    still_open += 1
            except TimeoutError:
                still_open += 1
            except OSError:
                pass
        row.note = f"{stalled_count - still_open} of {stalled_count} stalled connections closed by the server"
    finally:
        for sock in sockets:
            sock.close()
    account(row, server, ledger, metric_id, *before)
    return row


class _Hostile(BaseHTTPRequestHandler):
    behaviour = "good"
    seen: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def log_message(self, *_args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        kind = type(self).behaviour
        if kind == "good":
            with type(self).lock:
                type(self).seen[json.loads(body)["id"]] += 1
            self._answer(200, b"ok")
        elif kind == "hang":
            time.sleep(8)
            self._answer(200, b"late")
        elif kind == "trickle":
            self.send_response(200)
            self.send_header("content-length", "100000")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        elif kind == "huge":
            self.send_response(200)
            self.send_header("content-length", str(20 * 1_048_576))
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(20):
                    self.wfile.write(b"y" * 1_048_576)
        elif kind == "error":
            self._answer(500, b"boom" * 1000)
        elif kind == "redirect":
            self.send_response(301)
            self.send_header("location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("content-length", "0")
            self.end_headers()
        elif kind == "reset":
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.close()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def attack_hostile_receivers(server: Server, metric_id: str, quick: bool) -> Row:
    notifications = 50 if quick else 200
    row = Row("hostile webhook receivers", server.label)
    ledger = Ledger()
    before = baseline(server, metric_id)
    servers: list[ThreadingHTTPServer] = []
    _Hostile.seen = Counter()
    try:
        with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as api:
            for kind in ("good", "hang", "trickle", "huge", "error", "redirect", "reset"):
                handler = type(f"Hostile_{kind}", (_Hostile,), {"behaviour": kind})
                receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
                receiver.daemon_threads = True
                threading.Thread(target=receiver.serve_forever, daemon=True).start()
                servers.append(receiver)
                answer = api.post(
                    "/v1/webhooks/endpoints/create",
                    json={"url": f"http://127.0.0.1:{receiver.server_address[1]}/hooks"},
                )
                answer.raise_for_status()
        db = Database(server.database_url, pool_size=1)
        ids = [new_id() for _ in range(notifications)]
        try:
            with load(server, ledger, threads=2):
                for chunk in range(0, notifications, 10):
                    with db.write() as conn:
                        alerts.add_notifications(
                            conn,
                            [
                                (
                                    alerts.Notification(
                                        i, "alerts.spend_threshold_reached", "soak", "soak", {"n": 1}
                                    ),
                                    now_us(),
                                )
                                for i in ids[chunk : chunk + 10]
                            ],
                        )
                    time.sleep(0.1)
                deadline = time.monotonic() + (20 if quick else 40)
                while time.monotonic() < deadline and len(_Hostile.seen) < notifications:
                    time.sleep(0.2)
        finally:
            db.dispose()
        row.lost += notifications - len(set(ids) & set(_Hostile.seen))
        row.duplicates += sum(n - 1 for n in _Hostile.seen.values() if n > 1)
        row.note = (
            f"good receiver got {len(_Hostile.seen)}/{notifications} notifications beside 6 hostile ones"
        )
    finally:
        for receiver in servers:
            receiver.shutdown()
            receiver.server_close()
    account(row, server, ledger, metric_id, *before)
    return row


def attack_schemathesis(server: Server, metric_id: str, quick: bool) -> Row:
    budget_s = 60 if quick else 240
    row = Row(f"schemathesis ({budget_s} s)", server.label)
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        row.note = "schemathesis is not installed (pip install -e '.[soak]')"
        return row
    before_5xx = server.unexpected_5xx_logged()
    before_requests = len(server.statuses_logged())
    command = [
        st,
        "run",
        f"{server.base_url}/openapi.json",
        "-H",
        f"Authorization: Bearer {server.token}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25" if quick else "150",
        "--workers",
        "2",
        "--request-timeout",
        "20",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=budget_s, cwd=server.workdir)
        summary = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
        row.note = f"exit {done.returncode}: {' '.join(summary)[:120]}"
    except subprocess.TimeoutExpired:
        row.note = f"stopped at the {budget_s} s budget"
    row.unexpected_5xx += server.unexpected_5xx_logged() - before_5xx
    row.requests = len(server.statuses_logged()) - before_requests
    return row


# -- faults on the database's storage ----------------------------------------------------------------
@contextlib.contextmanager
def small_disk(root: Path, size_mb: int) -> Iterator[Path | None]:
    mount = root / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def attack_full_disk_sqlite(root: Path, quick: bool) -> list[Row]:
    full = Row("full disk (SQLite on a filled tmpfs)", "sqlite")
    readonly = Row("read-only database (tmpfs remounted read-only)", "sqlite")
    with small_disk(root, 64) as mount:
        if mount is None:
            full.note = readonly.note = "skipped: mounting a tmpfs is not permitted here"
            return [full, readonly]
        server = Server(f"sqlite:///{mount / 'meterline.db'}", root).start()
        try:
            metric_id = setup_catalog(server)
            faults: list[tuple[Row, Callable[[], None], Callable[[], None]]] = [
                (full, lambda: _fill(mount), lambda: (mount / "filler").unlink()),
                (readonly, lambda: _read_only(server, mount, True), lambda: _read_only(server, mount, False)),
            ]
            for row, fault, heal in faults:
                ledger = Ledger()
                before = baseline(server, metric_id)
                with load(server, ledger, threads=2):
                    time.sleep(1)
                    fault()
                    time.sleep(3 if quick else 6)
                    health = _health(server)
                    heal()
                    time.sleep(2)
                account(row, server, ledger, metric_id, *before)
                status = health.status_code if health is not None else "-"
                row.note = server.fault_note or f"/health during the fault: {status} {_down(health)}"
            _unseen_5xx(server, [full, readonly])
        finally:
            server.stop()
    return [full, readonly]


def _health(server: Server) -> httpx.Response | None:
    try:
        return httpx.get(f"{server.base_url}/health", timeout=10)
    except httpx.TransportError:
        return None


def _down(health: httpx.Response | None) -> str:
    if health is None:
        return "no answer"
    with contextlib.suppress(ValueError):
        return str(health.json().get("down"))
    return health.text[:80]


def _fill(mount: Path) -> None:
    with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 1_048_576)


def _read_only(server: Server, mount: Path, on: bool) -> None:
    """Remount the database's filesystem read-only (or back). The kernel refuses that while files
    on it are open for writing, so the server is stopped around it and started again (its
    clients retry meanwhile): it must then come up and refuse writes with 503, or not come up."""
    server.stop()
    subprocess.run(
        ["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(mount)], check=True, capture_output=True
    )
    try:
        server.start()
    except RuntimeError as error:
        if not on:
            raise
        # SQLite in WAL mode cannot open a database on a read-only file system at all.
        reason = (
            "unable to open database file" if "unable to open database file" in str(error) else "see its log"
        )
        server.fault_note = (
            f"the server does not start on a read-only file system ({reason}); clients retried"
        )


def attack_read_only_postgres(server: Server, metric_id: str, quick: bool) -> Row:
    row = Row("read-only database (default_transaction_read_only)", server.label)
    ledger = Ledger()
    before = baseline(server, metric_id)
    name = make_url(server.database_url).database
    admin = create_engine(normalize_url(server.database_url), isolation_level="AUTOCOMMIT")

    def set_read_only(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}')
            )
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": name},
            )

    try:
        with load(server, ledger, threads=2):
            time.sleep(1)
            set_read_only(True)
            time.sleep(3 if quick else 6)
            health = httpx.get(f"{server.base_url}/health", timeout=10)
            set_read_only(False)
            time.sleep(3)
    finally:
        set_read_only(False)
        admin.dispose()
    account(row, server, ledger, metric_id, *before)
    row.note = f"/health during the fault: {health.status_code} {health.json().get('down')}"
    return row


# -- running it all ------------------------------------------------------------------------------------
def run_database(label: str, database_url: str, root: Path, quick: bool) -> list[Row]:
    server = Server(
        database_url, root, {"METERLINE_HEADER_TIMEOUT_S": "3", "METERLINE_WEBHOOK_TIMEOUT_S": "2"}, label
    )
    server.start()
    rows: list[Row] = []
    try:
        metric_id = setup_catalog(server)
        attacks: list[Callable[[Server, str, bool], Row]] = [
            attack_kills,
            attack_concurrency,
            attack_slow_clients,
            attack_hostile_receivers,
        ]
        if label == "postgresql":
            attacks.append(attack_read_only_postgres)
        attacks.append(attack_schemathesis)
        for attack in attacks:
            started = time.monotonic()
            try:
                row = attack(server, metric_id, quick)
            except Exception as error:  # an attack that could not run is reported, not hidden
                row = Row(
                    attack.__name__, label, note=f"did not complete: {type(error).__name__}: {error}"[:200]
                )
                row.unexpected_5xx = -1
            print(
                f"  {label}: {row.attack} done in {time.monotonic() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
        _unseen_5xx(server, rows)
    finally:
        server.stop()
    return rows


def _unseen_5xx(server: Server, rows: list[Row]) -> None:
    """A 5xx the server logged that no client counted (schemathesis' are counted from the log)."""
    seen = sum(
        r.unexpected_5xx for r in rows if r.unexpected_5xx > 0 and not r.attack.startswith("schemathesis")
    )
    seen += sum(r.unexpected_5xx for r in rows if r.attack.startswith("schemathesis"))
    logged = server.unexpected_5xx_logged()
    if logged > seen:
        rows.append(
            Row("(5xx in the server's log no client counted)", server.label, unexpected_5xx=logged - seen)
        )


def table(rows: list[Row]) -> str:
    lines = [
        "| attack | database | requests | 503 (with Retry-After) | unexpected 5xx | events lost | duplicates | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.attack} | {r.database} | {r.requests} | {r.answered_503} | {r.unexpected_5xx} | {r.lost} | "
            f"{r.duplicates} | {r.note} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter attacks (about 5 minutes in all)")
    parser.add_argument("--postgres-url", default=os.environ.get("METERLINE_SOAK_POSTGRES_URL"))
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="meterline-soak-"))
    rows: list[Row] = []
    try:
        if not args.no_sqlite:
            print("soak: SQLite", file=sys.stderr, flush=True)
            sqlite_url = f"sqlite:///{root / 'sqlite' / 'meterline.db'}"
            rows += run_database("sqlite", sqlite_url, _mkdir(root / "sqlite"), args.quick)
            rows += attack_full_disk_sqlite(_mkdir(root / "disk"), args.quick)
        if args.postgres_url:
            print("soak: PostgreSQL", file=sys.stderr, flush=True)
            with _fresh_postgres(args.postgres_url) as url:
                rows += run_database("postgresql", url, _mkdir(root / "postgres"), args.quick)
        else:
            print("soak: PostgreSQL skipped (set METERLINE_SOAK_POSTGRES_URL)", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    failed = [r for r in rows if r.unexpected_5xx or r.lost or r.duplicates]
    return 1 if failed else 0


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _fresh_postgres(admin_url: str) -> Iterator[str]:
    name = f"meterline_soak_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
