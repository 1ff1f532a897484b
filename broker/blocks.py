"""The broker's block store: every feature block a worker without the broker's disk wrote.

The broker's feature folder (``STATE_DIR/features``) is the hub. Workers that share it
(same folder, or a shared mount: they read the same ``.store-id``) write blocks there as
they always did. Workers that do not share it upload each block they write (UPLOAD); the
broker keeps it when the sender holds a running task for that model and the bytes match
their digest, and answers any worker's FETCH from here. So blocks outlive the worker that
wrote them, and a worker that joins late, or takes over from a dead one, never recomputes
what another has embedded.

File work runs in a thread (``asyncio.to_thread``), never on the event loop. A fetch for a
block whose upload is still being written waits for that write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from shift.blockfiles import read_block, read_store_id, write_received
from shift.blocks import BlockData, BlockRef
from shift.errors import ProtocolError
from shift.payloads import BLOCK_ROWS

log = logging.getLogger(__name__)


class BlockStore:
    """Blocks on the broker's disk, served and received off the event loop.

    Args:
        root: The broker's feature folder.
        block_rows: Rows per block (the feature store's layout).
    """

    def __init__(self, root: Path, block_rows: int = BLOCK_ROWS) -> None:
        self.root = root.expanduser()
        self.block_rows = block_rows
        self.store_id = read_store_id(self.root)
        self._writing: dict[BlockRef, asyncio.Future[None]] = {}

    def current_id(self) -> str:
        """The store's id, read again (``PURGE FEATURES`` on a worker sharing this folder
        deletes it; the next process to look makes a new one)."""
        self.store_id = read_store_id(self.root)
        return self.store_id

    async def get(self, ref: BlockRef) -> BlockData | None:
        """The block's bytes and digest, or ``None`` when the broker does not have it.

        Raises:
            ProtocolError: the block's paths leave the store (a link inside it).
        """
        writing = self._writing.get(ref)
        if writing is not None:
            await asyncio.shield(writing)
        return await asyncio.to_thread(read_block, self.root, ref, self.block_rows)

    def keep(
        self, data: BlockData, on_refused: Callable[[ProtocolError], None]
    ) -> asyncio.Future[None]:
        """Verify and store an uploaded block in a thread, after any write of the same block
        still under way; the future ends when it is done. A block that does not check out
        is not stored and is handed to ``on_refused`` (the caller's rate-limited warning)."""
        previous = self._writing.get(data.ref)
        future = asyncio.ensure_future(self._write(data, previous, on_refused))
        self._writing[data.ref] = future

        def done(_: object) -> None:
            if self._writing.get(data.ref) is future:
                del self._writing[data.ref]

        future.add_done_callback(done)
        return future

    async def _write(
        self,
        data: BlockData,
        previous: asyncio.Future[None] | None,
        on_refused: Callable[[ProtocolError], None],
    ) -> None:
        if previous is not None:
            await asyncio.shield(previous)
        try:
            await asyncio.to_thread(write_received, self.root, data, self.block_rows)
        except ProtocolError as error:
            on_refused(error)
        except OSError as error:
            log.error("could not store block %s in %s: %s", data.ref, self.root, error)
