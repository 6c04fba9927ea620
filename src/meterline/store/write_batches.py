"""Requests that share one durable commit: the queue and writer thread behind ingest's group
commit and the reservations' batches.

A request hands its item to the writer thread and waits. The thread takes every item waiting (up
to a weight), and the subclass commits them as one group and answers each waiter, so one disk
flush is paid per group rather than per request, and an answer still means "committed".
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from meterline.domain.errors import Unavailable

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class Pending(Generic[T, R]):
    item: T
    done: Future[R]
    queued_at: float = field(default_factory=time.perf_counter)  # when handed to the writer


class BatchingWriter(ABC, Generic[T, R]):
    def __init__(self, thread_name: str, max_weight: int, weight: Callable[[T], int] = lambda _: 1) -> None:
        self.max_weight = max_weight
        self._weight = weight
        self._queue: queue.Queue[Pending[T, R] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._running = False
        # Observable effect of grouping: requests answered per durable commit.
        self.commits = 0
        self.requests_committed = 0

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._queue.put(None)
            self._thread.join(10)

    async def _submit(self, item: T, shutting_down: str) -> R:
        """What the group holding `item` answered for it, once committed."""
        if not self._running:
            raise Unavailable(shutting_down)
        pending: Pending[T, R] = Pending(item, Future())
        self._queue.put(pending)
        return await asyncio.wrap_future(pending.done)

    @abstractmethod
    def _commit(self, group: list[Pending[T, R]]) -> None:
        """Commit the group as one transaction and answer each of its waiters."""

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            weight = self._weight(first.item)
            while weight < self.max_weight:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                group.append(item)
                weight += self._weight(item.item)
            self._commit(group)
