"""TFRecord files and ``tf.train.Example`` messages, read without TensorFlow.

A TFRecord file is a sequence of records: an 8-byte little-endian length, a 4-byte masked
CRC-32C of the length, the data, and a 4-byte masked CRC-32C of the data. Each record of a
TensorFlow Datasets shard is a serialised ``tf.train.Example``: a map from feature name to a
list of bytes, floats or int64s. Both are decoded here in plain Python (the protobuf wire
format is varints and length-prefixed fields), so reading prepared datasets needs neither
TensorFlow nor the protobuf package. Both checksums of a record are verified before it is
used; pure-Python CRC-32C runs at a few MB/s, so callers may defer the data checksum of a
record to when they use it (:func:`read_framed`, :func:`check_record`).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from shift.errors import CatalogError

Feature = list[bytes] | np.ndarray
"""A decoded feature: a list of byte strings, or a float32 / int64 array."""


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """The CRC-32C (Castagnoli) of ``data``."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """The masked CRC-32C that TFRecord stores."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_framed(path: Path, limit: int | None = None) -> list[tuple[bytes, int]]:
    """The records of a TFRecord file (the first ``limit`` when given), each with its stored
    data checksum, unverified; the length checksums are verified.

    Raises:
        CatalogError: the file is truncated or a length checksum does not match.
    """
    data = path.read_bytes()
    records: list[tuple[bytes, int]] = []
    at = 0
    while at < len(data) and (limit is None or len(records) < limit):
        if at + 12 > len(data):
            raise CatalogError(f"TFRecord {str(path)!r} is truncated at byte {at}")
        head = data[at : at + 8]
        (length,) = struct.unpack("<Q", head)
        (head_crc,) = struct.unpack("<I", data[at + 8 : at + 12])
        if head_crc != masked_crc(head):
            raise CatalogError(f"TFRecord {str(path)!r}: bad length checksum at byte {at}")
        end = at + 12 + length
        if end + 4 > len(data):
            raise CatalogError(f"TFRecord {str(path)!r} is truncated at byte {at}")
        (body_crc,) = struct.unpack("<I", data[end : end + 4])
        records.append((data[at + 12 : end], body_crc))
        at = end + 4
    return records


def check_record(body: bytes, crc: int, where: str) -> bytes:
    """``body`` if it matches its stored masked CRC-32C ``crc``.

    Raises:
        CatalogError: the checksum does not match (names ``where``).
    """
    if masked_crc(body) != crc:
        raise CatalogError(f"TFRecord {where}: bad data checksum (the file is corrupt)")
    return body


def read_records(path: Path, limit: int | None = None) -> list[bytes]:
    """The records of a TFRecord file (the first ``limit`` when given), checksums verified.

    Raises:
        CatalogError: the file is truncated or a checksum does not match.
    """
    return [
        check_record(body, crc, f"{str(path)!r} record {i}")
        for i, (body, crc) in enumerate(read_framed(path, limit))
    ]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise CatalogError("a tf.train.Example has a truncated or overlong varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """The ``(field number, wire type, value)`` triples of one protobuf message."""
    out: list[tuple[int, int, bytes | int]] = []
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        value: bytes | int
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise CatalogError(f"a tf.train.Example uses protobuf wire type {wire}")
        if at > len(data):
            raise CatalogError("a tf.train.Example is truncated")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature(data: bytes) -> Feature:
    for kind, _, body in _fields(data):
        if not isinstance(body, bytes):
            continue
        items = [(w, v) for n, w, v in _fields(body) if n == 1]
        if kind == 1:
            return [v for _, v in items if isinstance(v, bytes)]
        if kind == 2:
            raw = b"".join(v for _, v in items if isinstance(v, bytes))
            return np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if kind == 3:
            values: list[int] = []
            for wire, v in items:
                if wire == 0 and isinstance(v, int):
                    values.append(_signed(v))
                elif isinstance(v, bytes):
                    at = 0
                    while at < len(v):
                        number, at = _varint(v, at)
                        values.append(_signed(number))
            return np.array(values, dtype=np.int64)
    return []


def parse_example(record: bytes) -> dict[str, Feature]:
    """A serialised ``tf.train.Example`` as ``{feature name: values}``.

    Raises:
        CatalogError: the record is not a well-formed Example.
    """
    features: dict[str, Feature] = {}
    for number, _, body in _fields(record):
        if number != 1 or not isinstance(body, bytes):
            continue
        for entry_number, _, entry in _fields(body):
            if entry_number != 1 or not isinstance(entry, bytes):
                continue
            key, value = "", b""
            for n, _, v in _fields(entry):
                if n == 1 and isinstance(v, bytes):
                    key = v.decode("utf-8", "replace")
                elif n == 2 and isinstance(v, bytes):
                    value = v
            features[key] = _feature(value)
    return features
