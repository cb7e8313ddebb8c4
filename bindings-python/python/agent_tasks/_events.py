"""`EventStream`: a live subscription to a manager's lifecycle events, as an
async iterator (``async for``) and a blocking one (``for``).

The native side receives each item into a stash and Python takes it from
there, so a wait that is cancelled (``asyncio.wait_for``) or times out never
loses an item: the next wait returns it.
"""

from __future__ import annotations

from typing import Optional, Union

from ._arguments import checked
from ._bridge import Stream, not_in_event_loop
from ._native import NativeEvents
from ._types import Event, Lagged

EventItem = Union[Event, Lagged]
"""What a stream yields: the next `Event`, or `Lagged` when the subscriber
fell behind the bus (it holds 4096 events) and `missed` events were skipped."""


@checked
class EventStream(Stream[Union[Event, Lagged]]):
    """The manager's events from the moment `TaskManager.events()` was
    called, in `seq` order. Iterate with ``async for`` on an event loop or
    ``for`` on a thread. Iteration ends only once the manager and its tasks
    are all gone (a manager that is only shut down goes on existing): break
    out of it on the event you wait for, or use `recv` with a timeout. One
    stream is meant for one consumer."""

    __slots__ = ("_native",)

    def __init__(self, native: NativeEvents) -> None:
        self._native = native

    def __repr__(self) -> str:
        return f"EventStream(closed={self.closed})"

    @property
    def closed(self) -> bool:
        """True once the manager and its tasks are gone and every item was
        taken."""
        return self._native.closed

    def try_recv(self) -> Optional[EventItem]:
        """The next item if one is ready, without waiting."""
        return self._native.try_recv()

    async def recv(self, timeout: Optional[float] = None) -> Optional[EventItem]:
        """The next item; ``None`` once the stream is `closed`;
        `TimeoutError` if `timeout` seconds pass first."""
        item = self._native.take()
        if item is None:
            await self._native.wait(timeout)
            item = self._native.take()
        return item

    def recv_blocking(self, timeout: Optional[float] = None) -> Optional[EventItem]:
        """Blocking form of `recv` (GIL released; Ctrl+C interrupts it)."""
        not_in_event_loop("recv_blocking()")
        item = self._native.take()
        if item is None:
            self._native.wait(timeout).block_on()
            item = self._native.take()
        return item

    async def _next(self) -> Optional[EventItem]:
        item = await self.recv()
        while item is None and not self._native.closed:
            item = await self.recv()
        return item

    def _next_blocking(self) -> Optional[EventItem]:
        item = self.recv_blocking()
        while item is None and not self._native.closed:
            item = self.recv_blocking()
        return item
