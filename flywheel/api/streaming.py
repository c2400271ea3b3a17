"""Reading a streamed request body from sync route handlers (which FastAPI runs in a worker thread)."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
from fastapi import Request


def body_chunks(request: Request) -> Iterator[bytes]:
    """The request body as a blocking iterator, for a worker thread; the event loop reads the socket."""
    stream = request.stream()

    async def next_chunk() -> bytes | None:
        try:
            return await anext(stream)
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk
