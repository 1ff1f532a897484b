"""Feature blocks on the wire: their names, their layout on disk, their digest and checks.

A block is the features of one model on one block of a dataset's rows. It travels as three
byte strings, exactly the files of the feature store: ``features`` (a ``.npy`` of float32,
rows x feature_dim), ``labels`` (a ``.npy`` of int64 label ids) and ``meta`` (the pair's
``meta.json``). Its digest is the SHA-256 of its name and the three, each preceded by its
length, so a receiver can tell the bytes it got from the bytes that were sent (and a block
sent under another block's name), and refuses any block that does not match (nothing is
written).

Names are checked before they touch a path: model and dataset keys are lowercase hex (what
:func:`shift.hashing.content_hash` makes) and the block index a bounded integer, so no
request can name a file outside the store. The ``.npy`` headers are parsed here without
numpy (a literal dict, never pickle): only little-endian float32 features and int64 labels
in C order, of the right sizes, are accepted.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from shift.errors import ProtocolError

MAX_BLOCK_INDEX = 10_000_000
"""Largest block index a reference may name (10^7 blocks of 256 rows: 2.5 billion rows)."""

STORE_ID_FILE = ".store-id"
"""File at the root of a feature store naming it; two processes reading the same id share
the store (the same disk, or a shared mount)."""

_KEY = re.compile(r"[0-9a-f]{8,64}")
_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class BlockRef:
    """Which block: a model key, a dataset key and the block's index.

    Raises:
        ProtocolError: a key is not lowercase hex of 8 to 64 characters, or the index is
            not an integer in ``[0, MAX_BLOCK_INDEX]``.
    """

    model_key: str
    dataset_key: str
    block: int

    def __post_init__(self) -> None:
        for name in ("model_key", "dataset_key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _KEY.fullmatch(value):
                raise ProtocolError(
                    f"block {name} must be 8 to 64 lowercase hex characters, "
                    f"got {str(value)[:80]!r}"
                )
        block = self.block
        if isinstance(block, bool) or not isinstance(block, int):
            raise ProtocolError(f"block index must be an integer, got {type(block).__name__}")
        if not 0 <= block <= MAX_BLOCK_INDEX:
            raise ProtocolError(f"block index {block} is outside [0, {MAX_BLOCK_INDEX}]")

    def folder(self, block_rows: int) -> str:
        """The pair's folder relative to the store root (the feature store's layout)."""
        return f"{self.model_key}/{self.dataset_key}/b{block_rows}"

    def files(self, block_rows: int) -> tuple[str, str, str]:
        """Features, labels and meta files relative to the store root."""
        folder = self.folder(block_rows)
        return (
            f"{folder}/block-{self.block:06d}.npy",
            f"{folder}/labels-{self.block:06d}.npy",
            f"{folder}/meta.json",
        )

    def __str__(self) -> str:
        return f"{self.model_key}/{self.dataset_key}#{self.block}"


@dataclass(frozen=True)
class BlockData:
    """A block's bytes and the digest its sender claims for them."""

    ref: BlockRef
    features: bytes
    labels: bytes
    meta: bytes
    digest: str

    @classmethod
    def of(cls, ref: BlockRef, features: bytes, labels: bytes, meta: bytes) -> BlockData:
        """A block with the digest of its bytes."""
        return cls(ref, features, labels, meta, digest(ref, features, labels, meta))

    @property
    def size(self) -> int:
        """Bytes of the three files together."""
        return len(self.features) + len(self.labels) + len(self.meta)


def digest(ref: BlockRef, features: bytes, labels: bytes, meta: bytes) -> str:
    """SHA-256 (hex) of the block's name and its three files, each preceded by its 8-byte
    length."""
    h = hashlib.sha256()
    for part in (str(ref).encode("ascii"), features, labels, meta):
        h.update(struct.pack("<Q", len(part)))
        h.update(part)
    return h.hexdigest()


def npy_shape(data: bytes, dtype: str) -> tuple[int, ...]:
    """The shape of a ``.npy`` file's array, checking its dtype and size.

    Args:
        data: The file's bytes.
        dtype: The only accepted ``descr`` (``<f4``, ``<i8``).

    Raises:
        ProtocolError: not a ``.npy`` file of that dtype in C order with as many bytes as
            its shape says.
    """
    if not data.startswith(_NPY_MAGIC) or len(data) < 10:
        raise ProtocolError("not a .npy file (bad magic)")
    major = data[6]
    if major == 1:
        (length,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3) and len(data) >= 12:
        (length,), start = struct.unpack("<I", data[8:12]), 12
    else:
        raise ProtocolError(f"unsupported .npy version {major}")
    if length > 4096 or start + length > len(data):
        raise ProtocolError(f".npy header of {length} bytes does not fit the file")
    try:
        header = ast.literal_eval(data[start : start + length].decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ProtocolError(".npy header is not a literal dict") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ProtocolError(".npy header must hold exactly descr, fortran_order and shape")
    shape = header["shape"]
    if header["descr"] != dtype or header["fortran_order"] is not False:
        raise ProtocolError(f".npy array must be {dtype} in C order, got {header['descr']!r}")
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in shape
    ):
        raise ProtocolError(f".npy shape {shape!r} is not a tuple of sizes")
    count = 1
    for n in shape:
        count *= n
    if len(data) - start - length != count * int(dtype[-1]):
        raise ProtocolError(f".npy data does not hold {shape} items of {dtype}")
    return shape


def check_block(data: BlockData, block_rows: int) -> dict[str, Any]:
    """Verify a received block before anything is written; returns its parsed meta.

    Raises:
        ProtocolError: the bytes do not match the digest, or the files are not a block of
            at most ``block_rows`` rows that agrees with its meta.
    """
    actual = digest(data.ref, data.features, data.labels, data.meta)
    if actual != data.digest:
        raise ProtocolError(
            f"block {data.ref}: its bytes hash to {actual[:16]}..., not the digest "
            f"{data.digest[:16]}... it came with; refused"
        )
    shape = npy_shape(data.features, "<f4")
    labels = npy_shape(data.labels, "<i8")
    if len(shape) != 2 or labels != shape[:1] or not 0 < shape[0] <= block_rows:
        raise ProtocolError(
            f"block {data.ref}: features {shape} and labels {labels} are not one block of "
            f"1 to {block_rows} rows"
        )
    try:
        meta = json.loads(data.meta)
    except (ValueError, RecursionError):
        raise ProtocolError(f"block {data.ref}: meta is not JSON") from None
    if not isinstance(meta, dict):
        raise ProtocolError(f"block {data.ref}: meta must be a JSON object")
    num_rows, dim = meta.get("num_rows"), meta.get("feature_dim")
    if dim != shape[1] or not isinstance(num_rows, int) or isinstance(num_rows, bool):
        raise ProtocolError(f"block {data.ref}: meta does not describe {shape[1]}-d features")
    if data.ref.block * block_rows + shape[0] > num_rows or not isinstance(
        meta.get("classes"), list
    ):
        raise ProtocolError(f"block {data.ref}: rows past the dataset's {num_rows}, or no classes")
    return meta
