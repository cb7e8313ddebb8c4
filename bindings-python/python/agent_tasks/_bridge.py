"""Awaiting a native `Pending` from asyncio. The Rust side finishes the wait
on a runtime thread and calls back; the callback hands the wake-up to the
event loop with `call_soon_threadsafe`. Cancelling the awaiting coroutine
stops the Rust wait."""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine


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
