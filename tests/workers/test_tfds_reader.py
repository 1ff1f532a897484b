"""The ``tfds`` and ``vtab`` readers on TensorFlow Datasets folders written here.

Records are ``tf.train.Example`` messages serialised by the protobuf library itself (the
message types are declared here from ``example.proto``'s definition), so the reader's own
wire-format decoder is checked against the reference encoder; shards are framed as TFRecord
with the CRC-32C that is itself checked against its published test vector.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from PIL import Image

from shift.errors import CatalogError
from shift.registration import dataset_spec_from_fields
from workers.readers import Dataset, get_reader
from workers.readers.tfds import split_ranges
from workers.readers.tfrecord import crc32c, masked_crc, parse_example, read_records
from workers.readers.vtab import TASKS, VTAB_SPLITS


def _example_class() -> Any:
    """``tf.train.Example`` built from its proto definition (no TensorFlow needed)."""
    f = descriptor_pb2.FileDescriptorProto(name="example_test.proto", package="tt", syntax="proto3")
    fd = descriptor_pb2.FieldDescriptorProto
    rep, opt, msg = fd.LABEL_REPEATED, fd.LABEL_OPTIONAL, fd.TYPE_MESSAGE
    for name, kind in (("BytesList", fd.TYPE_BYTES), ("FloatList", fd.TYPE_FLOAT),
                       ("Int64List", fd.TYPE_INT64)):  # fmt: skip
        m = f.message_type.add(name=name)
        m.field.add(name="value", number=1, label=rep, type=kind)
    feature = f.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, kind) in enumerate(
        (("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")), 1
    ):
        feature.field.add(
            name=name, number=number, label=opt, type=msg, type_name=f".tt.{kind}", oneof_index=0
        )
    features = f.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=opt, type=fd.TYPE_STRING)
    entry.field.add(name="value", number=2, label=opt, type=msg, type_name=".tt.Feature")
    features.field.add(
        name="feature", number=1, label=rep, type=msg, type_name=".tt.Features.FeatureEntry"
    )
    example = f.message_type.add(name="Example")
    example.field.add(name="features", number=1, label=opt, type=msg, type_name=".tt.Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tt.Example"))


Example = _example_class()


def example(**features: Any) -> bytes:
    """A serialised Example: bytes values, lists of ints, or lists of floats."""
    message = Example()
    for key, value in features.items():
        slot = message.features.feature[key]
        if isinstance(value, bytes):
            slot.bytes_list.value.append(value)
        elif all(isinstance(v, int) for v in value):
            slot.int64_list.value.extend(value)
        else:
            slot.float_list.value.extend(value)
    return message.SerializeToString()


def tfrecord(records: list[bytes]) -> bytes:
    out = b""
    for record in records:
        head = struct.pack("<Q", len(record))
        out += head + struct.pack("<I", masked_crc(head)) + record
        out += struct.pack("<I", masked_crc(record))
    return out


def png(value: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (4, 4), value if mode == "L" else (value, value, value)).save(buffer, "PNG")
    return buffer.getvalue()


def prepare(data_dir: Path, name: str, version: str, splits: dict[str, list[list[bytes]]]) -> Path:
    """A prepared TFDS folder: ``dataset_info.json`` and the shards of each split."""
    folder = data_dir / name / version
    folder.mkdir(parents=True)
    base = name.split("/")[0]
    info = {"name": base, "version": version, "splits": []}
    for split, shards in splits.items():
        for i, shard in enumerate(shards):
            path = folder / f"{base}-{split}.tfrecord-{i:05d}-of-{len(shards):05d}"
            path.write_bytes(tfrecord(shard))
        lengths = [str(len(s)) for s in shards]
        info["splits"].append({"name": split, "shardLengths": lengths})  # type: ignore[attr-defined]
    (folder / "dataset_info.json").write_text(json.dumps(info))
    (folder / "features.json").write_text("{}")
    return folder


def read(kind: str, params: dict[str, Any], root: Path) -> Dataset:
    return get_reader(kind).read(params, (root,))


def by_source(data: Dataset) -> list[Any]:
    """Labels in source-record order (undoing the seeded row order)."""
    out: list[Any] = [None] * len(data)
    for row, j in enumerate(data.order):
        out[int(j)] = data.classes[data.labels[row]]
    return out


def test_crc32c_matches_the_published_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_examples_from_the_protobuf_library_decode() -> None:
    record = example(image=b"\x89PNG...", label=[-3], coords=[1.5, -2.0, 8.25], n=[1, 2, 300])
    decoded = parse_example(record)
    assert decoded["image"] == [b"\x89PNG..."]
    assert decoded["label"].tolist() == [-3]
    assert decoded["coords"].tolist() == [1.5, -2.0, 8.25]
    assert decoded["n"].tolist() == [1, 2, 300]


def cifar_like(tmp_path: Path) -> Path:
    data_dir = tmp_path / "tensorflow_datasets"
    train = [[example(image=png(i), label=[i % 3]) for i in range(s, s + 4)] for s in (0, 4)]
    test = [[example(image=png(100 + i), label=[i % 2]) for i in range(6)]]
    prepare(data_dir, "cifar10", "3.0.2", {"train": train, "test": test})
    return data_dir


def test_tfds_reads_splits_and_slices_across_shards(tmp_path: Path) -> None:
    cifar_like(tmp_path)
    whole = read("tfds", {"name": "cifar10", "split": "train"}, tmp_path)
    assert by_source(whole) == [i % 3 for i in range(8)]
    sliced = read("tfds", {"name": "cifar10:3.0.2", "split": "train[3:6]+test[50%:]"}, tmp_path)
    assert by_source(sliced) == [0, 1, 2, 1, 0, 1]
    first = sliced.rows(int(np.argmin(sliced.order)), int(np.argmin(sliced.order)) + 1)[0]
    assert first.mode == "RGB" and first.getpixel((0, 0)) == (3, 3, 3)


def test_tfds_without_data_dir_looks_under_each_root_and_with_one_uses_it(tmp_path: Path) -> None:
    cifar_like(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    two = [[example(image=png(1), label=[0]), example(image=png(2), label=[1])]]
    prepare(tmp_path / "elsewhere", "cifar10", "3.0.2", {"test": two})
    assert len(read("tfds", {"name": "cifar10", "split": "test"}, tmp_path)) == 6
    other = read("tfds", {"name": "cifar10", "split": "test", "data_dir": "elsewhere"}, tmp_path)
    assert len(other) == 2


@pytest.mark.parametrize(
    ("expression", "ranges"),
    [
        ("train", [("train", 0, 10)]),
        ("train[:800]", [("train", 0, 10)]),
        ("train[-3:]", [("train", 7, 10)]),
        ("test[:50%]+test[50%:]", [("test", 0, 2), ("test", 2, 5)]),
        ("train[25%:75%]", [("train", 2, 8)]),
    ],
)
def test_split_expressions_resolve_to_record_ranges(expression: str, ranges: list[Any]) -> None:
    assert split_ranges(expression, {"train": 10, "test": 5}) == ranges


@pytest.mark.parametrize(
    ("expression", "message"),
    [("validation", "has no split 'validation'"), ("train[::2]", "is not a TFDS split")],
)
def test_bad_split_expressions_are_refused(expression: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        split_ranges(expression, {"train": 10})


def test_a_corrupted_record_fails_its_checksum(tmp_path: Path) -> None:
    folder = prepare(tmp_path, "d", "1.0.0", {"train": [[example(image=png(1), label=[0])]]})
    shard = next(folder.glob("*tfrecord*"))
    data = bytearray(shard.read_bytes())
    data[20] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CatalogError, match="bad data checksum"):
        read_records(shard)


def test_a_corrupted_image_fails_at_open_or_when_its_row_is_read(tmp_path: Path) -> None:
    records = [example(image=png(i), label=[i % 2]) for i in range(3)]
    folder = prepare(tmp_path, "d", "1.0.0", {"train": [records]})
    shard = next(folder.glob("*tfrecord*"))
    data = bytearray(shard.read_bytes())
    data[len(data) - 40] ^= 0xFF  # inside the last record's image bytes
    shard.write_bytes(bytes(data))
    params = {"name": "d", "split": "train", "data_dir": "."}
    with pytest.raises(CatalogError, match="record 2: bad data checksum"):
        read("tfds", params, tmp_path)
    deferred = read("tfds", {**params, "verify_checksums": False}, tmp_path)
    last, sound = (int(np.flatnonzero(deferred.order == 2)[0]),
                   int(np.flatnonzero(deferred.order != 2)[0]))  # fmt: skip
    assert len(deferred) == 3 and deferred.rows(sound, sound + 1)[0].size == (4, 4)
    with pytest.raises(CatalogError, match="record 2: bad data checksum"):
        deferred.rows(last, last + 1)


def test_missing_data_names_the_folder_and_how_to_prepare_it(tmp_path: Path) -> None:
    (tmp_path / "tensorflow_datasets").mkdir()
    with pytest.raises(
        CatalogError, match=r"'svhn_cropped' is not prepared in .*download_and_prepare"
    ):
        read("vtab", {"task": "SVHN", "split": "train800"}, tmp_path)
    cifar_like(tmp_path)
    with pytest.raises(CatalogError, match=r"no version 9.9.9 .*\(prepared: 3.0.2\)"):
        read("tfds", {"name": "cifar10:9.9.9"}, tmp_path)
    with pytest.raises(CatalogError, match="no encoded image feature 'picture'"):
        read("tfds", {"name": "cifar10", "image_key": "picture"}, tmp_path).rows(0, 1)


def test_vtab_splits_of_smallnorb_cut_the_test_split_in_halves(tmp_path: Path) -> None:
    data_dir = tmp_path / "tensorflow_datasets"
    train = [[example(image=png(i, "L"), label_azimuth=[i], label_elevation=[i % 2])
              for i in range(6)]]  # fmt: skip
    test = [[example(image=png(50 + i, "L"), label_azimuth=[10 + i], label_elevation=[0])
             for i in range(4)]]  # fmt: skip
    prepare(data_dir, "smallnorb", "2.0.0", {"train": train, "test": test})

    def labels(split: str) -> list[Any]:
        task = {"task": "Small NORB azimuth prediction", "split": split}
        return by_source(read("vtab", task, tmp_path))

    assert labels("train800") == [0, 1, 2, 3, 4, 5]
    assert labels("val") == [10, 11] and labels("test") == [12, 13]
    assert labels("train800val200") == [0, 1, 2, 3, 4, 5, 10, 11, 12, 13]
    elevation = read(
        "vtab", {"task": "small norb ELEVATION prediction", "split": "train"}, tmp_path
    )
    assert by_source(elevation) == [0, 1, 0, 1, 0, 1]
    assert elevation.rows(0, 1)[0].mode == "RGB"


def test_vtab_derives_structured_labels_from_the_records(tmp_path: Path) -> None:
    data_dir = tmp_path / "tensorflow_datasets"
    scenes = [
        example(image=png(1), **{"objects/size": [0, 1, 1], "objects/pixel_coords":
                                 [1.0, 2.0, 9.2, 3.0, 4.0, 12.0, 0.0, 0.0, 30.0]}),
        example(image=png(2), **{"objects/size": [0] * 7, "objects/pixel_coords":
                                 [1.0, 1.0, 7.0] * 7}),
    ]  # fmt: skip
    prepare(data_dir, "clevr", "3.1.0", {"train": [scenes]})
    count = read("vtab", {"task": "CLEVR counting", "split": "train800"}, tmp_path)
    assert by_source(count) == [0, 4]
    distance = read("vtab", {"task": "CLEVR distance prediction", "split": "train"}, tmp_path)
    assert by_source(distance) == [3, 0]
    sprites = [example(image=png(1, "L"), label_x_position=[x], label_orientation=[o])
               for x, o in ((0, 0), (31, 39), (17, 20))]  # fmt: skip
    prepare(data_dir, "dsprites", "2.0.0", {"train": [sprites]})
    location = read("vtab", {"task": "dSprites location prediction", "split": "train"}, tmp_path)
    assert by_source(location) == [0, 15, 8]
    assert location.rows(0, 1)[0].getpixel((0, 0)) == (255, 255, 255)
    orientation = read("vtab", {"task": "dSprites orientation prediction", "split": "train"},
                       tmp_path)  # fmt: skip
    assert by_source(orientation) == [0, 15, 8]


def test_every_vtab_task_has_every_vtab_split() -> None:
    assert len(TASKS) == 20
    for task in TASKS.values():
        assert tuple(task.splits) == VTAB_SPLITS
    assert TASKS["CIFAR-100"].splits["val200"] == "train[45000:45200]"
    assert TASKS["EuroSAT"].splits["test"] == "train[21600:]"
    assert TASKS["EuroSAT"].splits["val"] == "train[16200:21600]"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"task": "CIFAR10", "split": "train800"}, "did you mean 'CIFAR-10'"),
        ({"task": "CIFAR-10", "split": "train1000"}, "not one of train, val"),
        ({"task": "CIFAR-10"}, "'split' is required"),
    ],
)
def test_bad_vtab_parameters_say_what_is_wrong(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        read("vtab", params, tmp_path)


def test_register_columns_map_onto_the_reader_parameters() -> None:
    vtab = dataset_spec_from_fields(
        "v", {"reader": "vtab", "vtab_task": "CIFAR-10", "split": "train800", "version": "3.0.2"}
    )
    assert vtab.params == {"task": "CIFAR-10", "split": "train800", "version": "3.0.2"}
    tfds = dataset_spec_from_fields(
        "t", {"reader": "tfds", "tfds_name": "dtd", "split": "test", "data_dir": "tfds"}
    )
    assert tfds.params == {"name": "dtd", "split": "test", "data_dir": "tfds"}
    tv = dataset_spec_from_fields(
        "c", {"reader": "torchvision", "dataset": "CIFAR10", "root": "d", "split": "test"}
    )
    assert tv.params == {"dataset": "CIFAR10", "root": "d", "split": "test"}


def test_a_dataset_folder_linked_from_outside_the_roots_is_refused(tmp_path: Path) -> None:
    prepare(tmp_path / "outside", "d", "1.0.0", {"train": [[example(image=png(1), label=[0])]]})
    root = tmp_path / "root"
    (root / "tensorflow_datasets").mkdir(parents=True)
    (root / "tensorflow_datasets" / "d").symlink_to(tmp_path / "outside" / "d")
    with pytest.raises(CatalogError, match="outside"):
        read("tfds", {"name": "d"}, root)
