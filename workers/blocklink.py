"""The worker's side of moving feature blocks over the broker link.

A worker whose feature store is not the broker's (the broker's WELCOME names another store
id) attaches a :class:`BlockLink` to its store (:func:`workers.features.attach_remote`).
Tasks run on the device thread; when one lacks blocks, the store calls :meth:`fetch`, which
sends one FETCH per block through the event loop and waits for the answers (all requests in
flight at once). The answers' bytes are verified and written by the store on the device
thread, so hashing never holds up heartbeats. A block the store writes is sent to the
broker as UPLOAD, naming the running task (the broker keeps it only from that task's
worker). A block the broker does not have, a silent broker or an answer that does not fit
is not an error: the task computes the block itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence

from shift.blocks import BlockData, BlockRef
from shift.codec import encode
from shift.errors import ProtocolError
from shift.protocol import Block, Fetch, Message, Upload, join_frames

log = logging.getLogger(__name__)


class BlockLink:
    """Fetches and uploads blocks through a worker's socket.

    Args:
        loop: The worker's event loop (which owns the socket).
        send: Sends a message on the loop; False when it could not be queued.
        send_frames: Sends already encoded frames on the loop.
        running: The running task's ``(id, attempt)``, or ``None``.
        timeout_s: How long a fetch waits for the broker's answer.
        max_frame_bytes: Largest frame sent; a larger upload stays local (logged).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[Message], bool],
        send_frames: Callable[[list[bytes], str], bool],
        running: Callable[[], tuple[str, int] | None],
        timeout_s: float,
        max_frame_bytes: int,
    ) -> None:
        self._loop = loop
        self._send = send
        self._send_frames = send_frames
        self._running = running
        self._timeout_s = timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._waiting: dict[int, asyncio.Future[Block]] = {}
        self._next = 0
        self.fetched = 0
        self.uploaded = 0

    # ---- device thread -------------------------------------------------------------------

    def fetch(self, refs: Sequence[BlockRef]) -> list[BlockData]:
        """The blocks the broker sends back, of those asked for (waits off the loop)."""
        futures = [asyncio.run_coroutine_threadsafe(self._ask(ref), self._loop) for ref in refs]
        found: list[BlockData] = []
        for future in futures:
            try:
                data = future.result(self._timeout_s + 1.0)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                continue
            if data is not None:
                found.append(data)
        self.fetched += len(found)
        return found

    def wrote(self, data: BlockData) -> None:
        """Upload a block the running task wrote (skipped when it does not fit a frame)."""
        running = self._running()
        if running is None:
            return
        try:
            command, body = encode(Upload(running[0], running[1], data))
        except ProtocolError as error:
            log.warning("could not encode block %s for upload: %s", data.ref, error)
            return
        if len(body) > self._max_frame_bytes:
            log.warning(
                "block %s is %d bytes, more than max_frame_bytes=%d: kept on this worker only",
                data.ref,
                len(body),
                self._max_frame_bytes,
            )
            return
        self.uploaded += 1
        self._loop.call_soon_threadsafe(self._send_frames, join_frames(command, body), "UPLOAD")

    # ---- event loop ----------------------------------------------------------------------

    def answered(self, block: Block) -> None:
        """Hand the broker's BLOCK answer to the fetch waiting for it."""
        future = self._waiting.get(block.request)
        if future is not None and not future.done():
            future.set_result(block)

    async def _ask(self, ref: BlockRef) -> BlockData | None:
        self._next += 1
        request = self._next
        future: asyncio.Future[Block] = self._loop.create_future()
        self._waiting[request] = future
        try:
            if not self._send(Fetch(request, ref)):
                return None
            answer = await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            log.info("broker sent no answer for block %s in %.1f s", ref, self._timeout_s)
            return None
        finally:
            self._waiting.pop(request, None)
        if answer.ref != ref or answer.data is None or answer.data.ref != ref:
            log.info("broker has no block %s: %s", ref, answer.error or "another block came")
            return None
        return answer.data
