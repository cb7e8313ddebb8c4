"""Following a task's output as it is written: `OutputStream` (chunks of
bytes) and `LineStream` (lines of text), each an async iterator
(``async for``) and a blocking one (``for``).

Each step is one native `poll_wait` from the stream's cursor: the core
answers as soon as the task writes past it or ends (woken by the task's
own progress, never by a timer). The cursor moves only once a chunk is
handed over, so a step that is cancelled (``asyncio.wait_for``, a
``break``) loses nothing: the next step reads from the same byte.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ._arguments import checked
from ._bridge import Stream, not_in_event_loop
from ._native import DEFAULT_POLL_BYTES as _DEFAULT_POLL_BYTES
from ._native import LineSplitter, NativeManager
from ._types import PollResult


@checked
class OutputStream(Stream[bytes]):
    """A task's output from byte offset `cursor` on, as chunks of `bytes`,
    until the task has ended and every byte was read. Each byte comes once,
    in order (bytes the core dropped under its disk cap are skipped, and
    counted in `omitted_bytes`). `cursor` is where the next chunk starts: a
    new stream from it picks up where this one stopped. One stream is meant
    for one consumer."""

    __slots__ = ("_native", "_id", "_cursor", "_max_bytes", "_eof", "_omitted")

    def __init__(
        self,
        native: NativeManager,
        task_id: str,
        cursor: int = 0,
        max_bytes: int = _DEFAULT_POLL_BYTES,
    ) -> None:
        self._native = native
        self._id = task_id
        self._cursor = cursor
        self._max_bytes = max_bytes
        self._eof = False
        self._omitted = 0

    def __repr__(self) -> str:
        return f"OutputStream(task={self._id!r}, cursor={self._cursor}, ended={self._eof})"

    @property
    def cursor(self) -> int:
        """The byte offset the next chunk starts at."""
        return self._cursor

    @property
    def ended(self) -> bool:
        """True once the task has ended and every byte was read."""
        return self._eof

    @property
    def omitted_bytes(self) -> int:
        """Bytes skipped so far because the core no longer had them."""
        return self._omitted

    def _take(self, page: PollResult) -> Optional[bytes]:
        self._cursor = page.next_cursor
        self._omitted += page.omitted_bytes
        self._eof = page.eof
        data = page.data
        return data if data else None

    async def next(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next chunk; ``None`` once the output has ended;
        `TimeoutError` if the task writes nothing for `timeout` seconds."""
        while not self._eof:
            page = await self._native.poll_wait(self._id, self._cursor, self._max_bytes, timeout)
            data = self._take(page)
            if data is not None:
                return data
        return None

    def next_blocking(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """Blocking form of `next` (GIL released; Ctrl+C interrupts it)."""
        not_in_event_loop("next_blocking()")
        while not self._eof:
            page = self._native.poll_wait(self._id, self._cursor, self._max_bytes, timeout).block_on()
            data = self._take(page)
            if data is not None:
                return data
        return None

    _next, _next_blocking = next, next_blocking


@checked
class LineStream(Stream[str]):
    """A task's output as lines of text (UTF-8; bytes that do not decode
    become U+FFFD), without their line ending (``\\n`` or ``\\r\\n``). A
    line split across chunks comes whole; the last line comes even without
    a final newline, once the task has ended. `cursor` is the byte offset
    just past the last line handed over. Where a line ends is the core's
    rule (`LineSplitter`)."""

    __slots__ = ("_chunks", "_splitter", "_lines", "_cursor")

    def __init__(self, chunks: OutputStream) -> None:
        self._chunks = chunks
        self._splitter = LineSplitter()
        self._lines: List[Tuple[str, int]] = []  # each line, and the offset past it
        self._cursor = chunks.cursor

    def __repr__(self) -> str:
        return f"LineStream(task={self._chunks._id!r}, cursor={self.cursor})"

    @property
    def cursor(self) -> int:
        """The byte offset just past the last line handed over."""
        return self._cursor

    def _feed(self, data: Optional[bytes]) -> None:
        end = self._chunks.cursor
        if data is None:
            last = self._splitter.finish()
            if last is not None:
                self._lines.append((last, end))
            return
        at = -1
        for line in self._splitter.push(data):
            at = data.index(b"\n", at + 1)  # the core's line ends at this newline
            self._lines.append((line, end - len(data) + at + 1))

    def _ready(self) -> bool:
        """Whether the next answer is known without reading: a line, or the end."""
        if not self._lines and self._chunks.ended:
            self._feed(None)
            return True
        return bool(self._lines)

    def _hand_over(self) -> Optional[str]:
        if not self._lines:
            return None
        line, self._cursor = self._lines.pop(0)
        return line

    async def next(self, timeout: Optional[float] = None) -> Optional[str]:
        """The next line; ``None`` once the output has ended;
        `TimeoutError` if the task writes nothing for `timeout` seconds."""
        while not self._ready():
            self._feed(await self._chunks.next(timeout))
        return self._hand_over()

    def next_blocking(self, timeout: Optional[float] = None) -> Optional[str]:
        """Blocking form of `next` (GIL released; Ctrl+C interrupts it)."""
        while not self._ready():
            self._feed(self._chunks.next_blocking(timeout))
        return self._hand_over()

    _next, _next_blocking = next, next_blocking
