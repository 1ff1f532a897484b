"""The ``onnx_bert`` family: a BERT exported to ONNX, converted back into a ``BertModel``.

The ONNX file's named initializers are the BERT state dict; the attention and feed-forward
weights are unnamed ``MatMul`` inputs, which are named here by following each ``MatMul`` to
the ``Add`` of its named bias (and transposed: ONNX stores ``x @ W``, torch ``Linear`` stores
``W.T``). Loader parameters: ``onnx`` (file reference), ``tokenizer`` (folder of the same
vocabulary), ``num_heads`` (default 12; not recoverable from weight shapes),
``num_layers`` (keep only the first layers: a truncated variant; 0 keeps the embeddings
alone), ``pooling`` (default mean), ``max_tokens``.
"""

from __future__ import annotations

from typing import Any

from shift.errors import WorkerError
from shift.parameters import REQUIRED, Parameter
from shift.specs import ModelSpec
from workers.models.base import FeatureExtractor, failure_reason, model_file, register_family
from workers.models.huggingface import (
    HF_CONTRACT,
    hub_files_only,
    model_source,
    text_forward,
    tokenize,
)
from workers.quiet import quiet_third_party

PREFIXES = ("model.0.auto_model.", "bert.", "")
"""Prefixes stripped from initializer names (sentence-transformers exports use the first)."""


def onnx_state_dict(path: str) -> dict[str, Any]:
    """The BERT state dict (numpy arrays, transformers names) held by an ONNX graph.

    Raises:
        WorkerError: a weight cannot be named.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state: dict[str, Any] = {}
    for name, array in arrays.items():
        if name.endswith((".weight", ".bias")):
            state[_strip(name)] = array
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in arrays:
            continue
        weight = node.input[1]
        if weight.endswith(".weight"):
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        biases = [i for n in adds for i in n.input if i.endswith(".bias") and i in arrays]
        if len(biases) != 1:
            raise WorkerError(f"cannot name ONNX weight {weight!r}: no unique bias follows it")
        state[_strip(biases[0]).removesuffix(".bias") + ".weight"] = arrays[weight].T.copy()
    return state


def _strip(name: str) -> str:
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def bert_config(state: dict[str, Any], num_heads: int) -> Any:
    """A ``BertConfig`` matching the shapes of ``state``."""
    import transformers

    vocab, hidden = state["embeddings.word_embeddings.weight"].shape
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    return transformers.BertConfig(
        vocab_size=int(vocab),
        hidden_size=int(hidden),
        num_hidden_layers=layers,
        num_attention_heads=num_heads,
        intermediate_size=int(state["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_position_embeddings=int(state["embeddings.position_embeddings.weight"].shape[0]),
        type_vocab_size=int(state["embeddings.token_type_embeddings.weight"].shape[0]),
    )


def truncate_layers(
    spec: ModelSpec, state: dict[str, Any], layers: int, keep: Any
) -> dict[str, Any]:
    """``state`` without the encoder layers from index ``keep`` on.

    Raises:
        WorkerError: ``keep`` is not an integer between 0 and the model's ``layers``.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= layers:
        raise WorkerError(
            f"model {spec.name!r}: num_layers must be an integer from 0 to {layers} "
            f"(the layers in its ONNX file), got {keep!r}"
        )
    return {
        key: value
        for key, value in state.items()
        if not key.startswith("encoder.layer.") or int(key.split(".")[2]) < keep
    }


ONNX_PARAMS = (
    Parameter("onnx", "path", REQUIRED, "The ONNX file of a BERT encoder."),
    Parameter("tokenizer", "hub id or folder", REQUIRED, "Tokenizer of the same vocabulary."),
    Parameter("num_heads", "int", 12, "Attention heads (not recoverable from weight shapes)."),
    Parameter("num_layers", "int", None, "Keep only the first layers; 0 keeps the embeddings."),
    Parameter("pooling", "str", "mean", "mean, cls or pooler."),
    Parameter("max_tokens", "int", 128, "Text truncation, in tokens."),
)


@register_family("onnx_bert", ONNX_PARAMS, HF_CONTRACT.split(" vision:")[0])
def load_onnx_bert(spec: ModelSpec, device: str) -> FeatureExtractor:
    """BERT encoders shipped as ONNX only, converted exactly into a transformers BertModel."""
    import torch

    quiet_third_party()
    import transformers

    loader = spec.loader
    path = model_file(spec, loader.get("onnx"))
    try:
        state = onnx_state_dict(str(path))
    except WorkerError:
        raise
    except Exception as error:  # protobuf and onnx errors alike: a bad file
        raise WorkerError(
            f"model {spec.name!r}: checkpoint {path} is corrupt or not an ONNX file: "
            f"{failure_reason(error)}"
        ) from None
    config = bert_config(state, int(loader.get("num_heads", 12)))
    num_layers = loader.get("num_layers")
    if num_layers is not None:
        state = truncate_layers(spec, state, config.num_hidden_layers, num_layers)
        config.num_hidden_layers = int(num_layers)
    model = transformers.BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=False
    )
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise WorkerError(
            f"ONNX file {path.name} does not match a BertModel: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    tokenizer_source, local = model_source(spec, loader.get("tokenizer"))
    files_only = local or hub_files_only(
        spec, tokenizer_source, "the tokenizer", "tokenizer_config.json"
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        tokenizer_source, trust_remote_code=False, local_files_only=files_only
    )
    max_tokens = int(loader.get("max_tokens", 128))
    model = model.to(device)
    forward = text_forward(model, str(loader.get("pooling", "mean")))
    info = {"max_tokens": max_tokens, "model_type": "bert", "layers": config.num_hidden_layers}
    return FeatureExtractor(spec, model, tokenize(tokenizer, max_tokens), forward, device, info)
