"""Awaiting a native `Pending` from asyncio: the Rust side finishes the wait
on a runtime thread and calls back; the callback hands the wake-up to the
event loop with `call_soon_threadsafe`. Cancelling the awaiting coroutine
stops the Rust wait. And the rules of the blocking forms: never on an event
loop's thread; a stream is iterated with ``async for`` or ``for``."""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, Generic, Optional, TypeVar

_T = TypeVar("_T")


def not_in_event_loop(what: str) -> None:
    """A blocking wait on an event loop's thread would stall the loop (and
    any coroutine task on it, possibly the one waited for): refused."""
    if asyncio._get_running_loop() is not None:
        raise RuntimeError(f"{what} would block the running event loop; use `await` or `async for`")


class Stream(Generic[_T]):
    """``async for`` and ``for`` over `_next` and `_next_blocking`, which
    give ``None`` at the end."""

    __slots__ = ()

    async def _next(self) -> Optional[_T]:
        raise NotImplementedError

    def _next_blocking(self) -> Optional[_T]:
        raise NotImplementedError

    def __aiter__(self) -> "Stream[_T]":
        return self

    async def __anext__(self) -> _T:
        item = await self._next()
        if item is None:
            raise StopAsyncIteration
        return item

    def __iter__(self) -> "Stream[_T]":
        return self

    def __next__(self) -> _T:
        not_in_event_loop("iterating with `for`")
        item = self._next_blocking()
        if item is None:
            raise StopIteration
        return item


def _settle(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


async def _wait(pending: Any) -> Any:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(_settle, future)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    pending.add_done_callback(wake)
    try:
        await future
    except BaseException:
        pending.cancel()
        raise
    return pending.result()


def await_pending(pending: Any) -> Coroutine[Any, Any, Any]:
    """The coroutine behind `Pending.__await__`."""
    return _wait(pending)
