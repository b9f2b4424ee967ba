"""One worker thread for every model call, so the event loop keeps streaming while a model runs.

Calls run in arrival order, one at a time: no batching across requests (a continuous-batching
engine would overlap them; this server measures a strictly serial one). A streaming call hands
each item (a token id, a PCM chunk) back to the event loop as it is made; when the client goes
away the item callback returns False and the model stops at the next item.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_ITEM, _END, _ERROR = range(3)


class ServerClosing(RuntimeError):
    """The server stopped (SIGINT, SIGTERM) before a streaming call finished: its answer is cut short and
    must not end as a complete one (a stream's [DONE], a WAV's end), or a client records it as served."""

    def __init__(self) -> None:
        super().__init__("the server is shutting down; this request was not finished")


class Worker:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infra-bench-model")
        self.closing = False
        self.queued = 0

    async def call(self, fn: Callable[..., Any], *args) -> Any:
        """`fn(*args)` on the worker thread, after every call submitted before it."""
        self.queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.queued -= 1

    async def stream(self, job: Callable[[Callable[[Any], bool]], None]) -> AsyncIterator[Any]:
        """Run `job(emit)` on the worker thread and yield each item it emits, as it emits it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        open_ = [True]
        cut = [False]  # the shutdown stopped the job, or it never ran

        def post(kind: int, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the event loop is gone (shutdown): nobody is listening
                open_[0] = False

        def emit(item: Any) -> bool:
            if self.closing:
                cut[0] = True
            if not open_[0] or self.closing:
                return False
            post(_ITEM, item)
            return True

        def run() -> None:
            try:
                if self.closing:
                    cut[0] = True
                elif open_[0]:
                    job(emit)
            except Exception as e:  # reaches the handler, which turns it into an error answer
                post(_ERROR, e)
                return
            post(*((_ERROR, ServerClosing()) if cut[0] else (_END, None)))

        self.queued += 1
        job_future = loop.run_in_executor(self._pool, run)
        # close() cancels jobs still queued: they never run, so nothing would end their stream
        job_future.add_done_callback(lambda f: queue.put_nowait((_ERROR, ServerClosing())) if f.cancelled() else None)
        try:
            while True:
                kind, value = await queue.get()
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise value
                yield value
        finally:
            open_[0] = False
            self.queued -= 1

    def close(self) -> None:
        """Stop streaming jobs at their next item and end their streams, and those of jobs still queued,
        with ServerClosing; do not wait for a running model call."""
        self.closing = True
        self._pool.shutdown(wait=False, cancel_futures=True)
