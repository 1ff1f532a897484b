"""Reader kinds over user files: image folders, CSV files, NumPy ``.npz`` and saved
Hugging Face datasets. Every path is confined to the data roots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError
from shift.parameters import REQUIRED, Parameter
from shift.paths import confine
from workers.readers.base import Dataset, param, register_reader, seeded_order

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
"""File endings an image folder reads (case-insensitive)."""


def _path(what: str) -> Parameter:
    return Parameter(
        "path",
        "path",
        REQUIRED,
        f"{what}; a relative path resolves against each data root in turn.",
    )


def open_image(path: Path) -> Any:
    """Open an image file as an RGB ``PIL.Image``.

    Raises:
        CatalogError: the file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise CatalogError(f"cannot read image {str(path)!r}: {error}") from None


def array_image(array: np.ndarray) -> Any:
    """An image array (H x W, H x W x 1/3/4; integers 0..255 or floats 0..1) as RGB PIL."""
    from PIL import Image

    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        scale = 255.0 if float(array.max(initial=0.0)) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array, "L").convert("RGB")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array[:, :, :3]), "RGB")
    raise CatalogError(f"an image array must be H x W or H x W x C, got shape {array.shape}")


@register_reader(
    "image_folder",
    (
        _path("Folder with one subfolder of images per class"),
        Parameter(
            "seed",
            "int",
            0,
            "Seed of the fixed row order (a permutation of the sorted source rows).",
        ),
    ),
)
def image_folder(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """A folder with one subfolder of images per class (the subfolder name is the label)."""
    folder = confine(param(params, "path", str), roots)
    if not folder.is_dir():
        raise CatalogError(f"image folder {str(folder)!r} is not a directory")
    files: list[Path] = []
    labels: list[str] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                files.append(confine(file, roots))
                labels.append(class_dir.name)
    if not files:
        raise CatalogError(f"image folder {str(folder)!r} has no class subfolders with images")
    order = seeded_order(len(files), param(params, "seed", int, 0))
    return Dataset("vision", lambda j: open_image(files[j]), labels, order)


@register_reader(
    "csv",
    (
        _path("The CSV file (a header row names the columns)"),
        Parameter("label_column", "str", "label", "Column holding each row's label."),
        Parameter("text_column", "str", None, "Column of text rows (give this or image_column)."),
        Parameter(
            "image_column",
            "str",
            None,
            "Column of image file paths, relative to the CSV's folder (give this or text_column).",
        ),
        Parameter(
            "seed",
            "int",
            0,
            "Seed of the fixed row order (a permutation of the sorted source rows).",
        ),
    ),
)
def csv(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """A CSV file with a label column and a text column or an image-path column."""
    import pandas as pd

    path = confine(param(params, "path", str), roots)
    label_column = param(params, "label_column", str, "label")
    text_column = param(params, "text_column", str, None)
    image_column = param(params, "image_column", str, None)
    if (text_column is None) == (image_column is None):
        raise CatalogError("a CSV dataset needs exactly one of text_column and image_column")
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as error:
        raise CatalogError(f"cannot read CSV {str(path)!r}: {error}") from None
    column = text_column or image_column
    for name in (label_column, column):
        if name not in frame.columns:
            raise CatalogError(
                f"CSV {str(path)!r} has no column {name!r}; columns: {', '.join(frame.columns)}"
            )
    labels = frame[label_column].tolist()
    order = seeded_order(len(frame), param(params, "seed", int, 0))
    if text_column is not None:
        texts = ["" if v != v else str(v) for v in frame[text_column].tolist()]
        return Dataset("text", lambda j: texts[j], labels, order)
    images = [confine(str(v), roots, base=path.parent) for v in frame[column].tolist()]
    return Dataset("vision", lambda j: open_image(images[j]), labels, order)


@register_reader(
    "npz",
    (
        _path("The .npz file (read without pickle)"),
        Parameter(
            "x_key",
            "str",
            "x",
            "Array of rows: images N x H x W[ x C] (uint8 0..255 or float 0..1) or strings.",
        ),
        Parameter("y_key", "str", "y", "Array of labels, one per row."),
        Parameter(
            "image_shape",
            "list of int",
            None,
            "Shape of one image when the rows are flat, e.g. [28, 28].",
        ),
        Parameter(
            "seed",
            "int",
            0,
            "Seed of the fixed row order (a permutation of the sorted source rows).",
        ),
    ),
)
def npz(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """A NumPy ``.npz`` with images (N x H x W[ x C]) or strings under ``x_key``, labels under
    ``y_key``; flat rows take ``image_shape``."""
    path = confine(param(params, "path", str), roots)
    x_key = param(params, "x_key", str, "x")
    y_key = param(params, "y_key", str, "y")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in (x_key, y_key) if k not in archive.files]
            if missing:
                raise CatalogError(
                    f"{str(path)!r} has no array {missing[0]!r}; arrays: {', '.join(archive.files)}"
                )
            x, y = archive[x_key], archive[y_key]
    except (OSError, ValueError) as error:
        raise CatalogError(f"cannot read {str(path)!r}: {error}") from None
    if len(x) != len(y):
        raise CatalogError(f"{str(path)!r}: {x_key} has {len(x)} rows but {y_key} has {len(y)}")
    order = seeded_order(len(x), param(params, "seed", int, 0))
    if x.dtype.kind in "US":
        texts = [str(v) for v in x]
        return Dataset("text", lambda j: texts[j], list(y), order)
    shape = param(params, "image_shape", list, None)
    if shape is not None:
        x = x.reshape(len(x), *shape)
    if x.ndim not in (3, 4):
        raise CatalogError(
            f"{str(path)!r}: {x_key} has shape {x.shape}; give image_shape for flat rows"
        )
    return Dataset("vision", lambda j: array_image(x[j]), list(y), order)


@register_reader(
    "hf_disk",
    (
        _path("Folder written by datasets' save_to_disk"),
        Parameter("split", "str", None, "The split to read when the folder holds a DatasetDict."),
        Parameter("label_column", "str", "label", "Column holding each row's label."),
        Parameter("text_column", "str", None, "Column of text rows (give this or image_column)."),
        Parameter("image_column", "str", None, "Column of images (give this or text_column)."),
        Parameter(
            "seed",
            "int",
            0,
            "Seed of the fixed row order (a permutation of the sorted source rows).",
        ),
    ),
)
def hf_disk(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """A Hugging Face dataset saved with ``save_to_disk`` (needs the ``datasets`` package)."""
    try:
        import datasets
    except ImportError:
        raise CatalogError(
            "reading a saved Hugging Face dataset needs the 'datasets' package; "
            "install it with `pip install datasets`"
        ) from None
    path = confine(param(params, "path", str), roots)
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        split = param(params, "split", str, None)
        if split not in loaded:
            raise CatalogError(f"{str(path)!r} has splits {', '.join(loaded)}; name one as 'split'")
        loaded = loaded[split]
    label_column = param(params, "label_column", str, "label")
    text_column = param(params, "text_column", str, None)
    image_column = param(params, "image_column", str, None)
    if (text_column is None) == (image_column is None):
        raise CatalogError("a Hugging Face dataset needs exactly one of text_column, image_column")
    column = text_column or image_column
    for name in (label_column, column):
        if name not in loaded.column_names:
            raise CatalogError(
                f"{str(path)!r} has no column {name!r}; columns: {', '.join(loaded.column_names)}"
            )
    labels = loaded[label_column]
    order = seeded_order(len(loaded), param(params, "seed", int, 0))
    if text_column is not None:
        return Dataset("text", lambda j: str(loaded[j][column]), labels, order)

    def load_image(j: int) -> Any:
        value = loaded[j][column]
        return value.convert("RGB") if hasattr(value, "convert") else array_image(np.asarray(value))

    return Dataset("vision", load_image, labels, order)
