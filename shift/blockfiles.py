"""Feature blocks as files: read a block's bytes, store a received one, name the store.

The layout is the feature store's (:meth:`shift.blocks.BlockRef.files`), so a block the
broker keeps is a block any worker sharing the broker's folder reads as its own, and the
reverse. Used by the broker's block store and the workers' feature store alike.

Every path is confined: the reference's names are checked hex (:class:`BlockRef`), and the
resolved path must still lie under the store's root (a link planted inside the store cannot
lead out of it). A received block is checked (:func:`shift.blocks.check_block`) before any
byte is written; each file goes to a temporary name, is synced and renamed, labels and meta
first, features last (a block counts as present once its features file exists).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from shift.blocks import STORE_ID_FILE, BlockData, BlockRef, check_block
from shift.errors import ProtocolError


def block_paths(root: Path, ref: BlockRef, block_rows: int) -> tuple[Path, Path, Path]:
    """Features, labels and meta files of a block, confined to ``root``.

    Raises:
        ProtocolError: a resolved path leaves the root (a link inside the store).
    """
    base = root.resolve()
    paths = tuple((root / name).resolve() for name in ref.files(block_rows))
    for path in paths:
        if not path.is_relative_to(base):
            raise ProtocolError(f"block {ref} resolves outside the feature store {root}; refused")
    return paths  # type: ignore[return-value]


def read_block(root: Path, ref: BlockRef, block_rows: int) -> BlockData | None:
    """A stored block's bytes and digest; ``None`` when it is not (completely) stored.

    Raises:
        ProtocolError: the block's paths leave the root.
    """
    features, labels, meta = block_paths(root, ref, block_rows)
    try:
        body = features.read_bytes()
        return BlockData.of(ref, body, labels.read_bytes(), meta.read_bytes())
    except FileNotFoundError:
        return None


def write_received(root: Path, data: BlockData, block_rows: int) -> bool:
    """Store a received block once it checks out; a block already stored is kept.

    Returns:
        True when the block was written, False when it was already there.

    Raises:
        ProtocolError: the bytes do not match the digest, are not a valid block, or the
            paths leave the root. Nothing is written then.
    """
    check_block(data, block_rows)
    features, labels, meta = block_paths(root, data.ref, block_rows)
    if features.exists():
        return False
    _atomic(labels, data.labels)
    if not meta.exists():
        _atomic(meta, data.meta)
    _atomic(features, data.features)
    return True


def read_store_id(root: Path) -> str:
    """The id in ``root/.store-id``, made on first use (every process sharing the folder
    reads the same id; the first to create it wins)."""
    path = root.expanduser() / STORE_ID_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".store-id.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(16))
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, path)  # atomic and refuses to replace: the first writer wins
        except FileExistsError:
            pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path.read_text().strip()


def _atomic(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
