"""Feature blocks on the wire: names, digests, ``.npy`` checks and confined files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from shift.blockfiles import block_paths, read_block, read_store_id, write_received
from shift.blocks import BlockData, BlockRef, check_block, npy_shape
from shift.errors import ProtocolError

MODEL, DATA = "ab" * 16, "cd" * 16


def npy(array: np.ndarray, **kw: object) -> bytes:
    out = io.BytesIO()
    np.save(out, array, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def object_npy() -> bytes:
    """A ``.npy`` whose header says object dtype (its body would be a pickle)."""
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x80\x04N."


def block(rows: int = 4, dim: int = 3, ref: BlockRef | None = None, **meta: object) -> BlockData:
    features = npy(np.arange(rows * dim, dtype=np.float32).reshape(rows, dim))
    labels = npy(np.zeros(rows, dtype=np.int64))
    body = {"num_rows": rows, "classes": ["x"], "feature_dim": dim, **meta}
    return BlockData.of(
        ref or BlockRef(MODEL, DATA, 0), features, labels, json.dumps(body).encode()
    )


@pytest.mark.parametrize(
    ("model", "dataset", "index"),
    [
        ("../../etc", DATA, 0),
        (MODEL, "..", 0),
        ("/etc/passwd", DATA, 0),
        (MODEL.upper(), DATA, 0),
        (MODEL + "/x", DATA, 0),
        ("", DATA, 0),
        (MODEL, DATA, -1),
        (MODEL, DATA, 10**12),
        (MODEL, DATA, True),
    ],
)
def test_a_ref_naming_a_path_or_a_bad_index_is_refused(model, dataset, index):
    with pytest.raises(ProtocolError, match="block"):
        BlockRef(model, dataset, index)


def test_a_valid_block_checks_and_names_the_feature_store_files():
    data = block()
    assert check_block(data, 256)["feature_dim"] == 3
    assert data.ref.files(256)[0] == f"{MODEL}/{DATA}/b256/block-000000.npy"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: BlockData(d.ref, d.features + b"\0", d.labels, d.meta, d.digest), "hash"),
        (lambda d: BlockData(d.ref, d.features, d.labels, d.meta, "0" * 64), "hash"),
        (  # the same bytes under another block's name
            lambda d: BlockData(BlockRef(MODEL, DATA, 1), d.features, d.labels, d.meta, d.digest),
            "hash",
        ),
        (
            lambda d: BlockData.of(d.ref, object_npy(), d.labels, d.meta),
            "<f4",
        ),
        (
            lambda d: BlockData.of(
                d.ref, npy(np.asfortranarray(np.ones((4, 3), np.float32))), d.labels, d.meta
            ),
            "C order",
        ),
        (lambda d: BlockData.of(d.ref, d.features[:-4], d.labels, d.meta), "does not hold"),
        (lambda d: BlockData.of(d.ref, b"PK\x03\x04zip", d.labels, d.meta), "magic"),
        (
            lambda d: BlockData.of(d.ref, d.features, npy(np.zeros(5, np.int64)), d.meta),
            "one block",
        ),
        (lambda d: BlockData.of(d.ref, d.features, d.labels, b"[1, 2]"), "object"),
        (lambda d: BlockData.of(d.ref, d.features, d.labels, b"{bad"), "JSON"),
    ],
)
def test_a_block_that_does_not_check_out_is_refused(change, message):
    with pytest.raises(ProtocolError, match=message):
        check_block(change(block()), 256)


def test_rows_past_the_block_size_or_the_dataset_are_refused():
    with pytest.raises(ProtocolError, match="1 to 2 rows"):
        check_block(block(rows=4), 2)
    with pytest.raises(ProtocolError, match="rows past"):
        check_block(block(ref=BlockRef(MODEL, DATA, 3)), 256)
    with pytest.raises(ProtocolError, match="3-d"):
        check_block(block(feature_dim=7), 256)


def test_a_huge_npy_header_is_refused_before_it_is_parsed():
    data = b"\x93NUMPY\x01\x00" + (60000).to_bytes(2, "little") + b"{" * 60000
    with pytest.raises(ProtocolError, match="header"):
        npy_shape(data, "<f4")


def test_a_refused_block_writes_nothing_and_a_good_one_round_trips(tmp_path):
    bad = block()
    bad = BlockData(bad.ref, bad.features, bad.labels, bad.meta, "f" * 64)
    with pytest.raises(ProtocolError):
        write_received(tmp_path, bad, 256)
    assert not any(tmp_path.rglob("*"))
    good = block()
    assert write_received(tmp_path, good, 256) is True
    assert write_received(tmp_path, good, 256) is False  # already there: kept
    assert read_block(tmp_path, good.ref, 256) == good
    assert read_block(tmp_path, BlockRef(MODEL, DATA, 1), 256) is None
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_a_link_inside_the_store_cannot_lead_out_of_it(tmp_path):
    outside = tmp_path / "outside"
    write_received(outside, block(), 256)
    store = tmp_path / "store"
    (store / MODEL).mkdir(parents=True)
    (store / MODEL / DATA).symlink_to(outside / MODEL / DATA)
    with pytest.raises(ProtocolError, match="outside the feature store"):
        read_block(store, BlockRef(MODEL, DATA, 0), 256)
    with pytest.raises(ProtocolError, match="outside the feature store"):
        block_paths(store, BlockRef(MODEL, DATA, 0), 256)


def test_processes_sharing_a_folder_read_one_store_id(tmp_path: Path):
    first = read_store_id(tmp_path / "features")
    assert len(first) == 32 and read_store_id(tmp_path / "features") == first
    assert read_store_id(tmp_path / "other") != first


def test_block_messages_round_trip_and_a_path_in_a_body_is_refused():
    from shift.codec import decode, encode, pack
    from shift.protocol import Block, Command, Fetch, Upload, Welcome

    data = block()
    for message in (
        Welcome("ab12"),
        Fetch(7, data.ref),
        Block(7, data.ref, data),
        Block(8, data.ref, None, "the broker does not have this block"),
        Upload("t1", 2, data),
    ):
        assert decode(*encode(message)) == message
    body = {"v": 1, "request": 1, "model_key": "../../etc", "dataset_key": DATA, "block": 0}
    with pytest.raises(ProtocolError, match="model_key"):
        decode(Command.FETCH, pack(body))
    with pytest.raises(ProtocolError, match="request"):
        decode(Command.FETCH, pack({**body, "model_key": MODEL, "request": -1}))
