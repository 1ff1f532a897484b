"""Checks a ``torch.export`` archive (``.pt2``) before ``torch.export.load`` reads it.

``torch.export.load`` unpickles some members (tensor subclasses, custom and opaque objects,
the legacy formats, sample inputs it cannot read weights-only), loads compiled AOTInductor
libraries, and resolves each graph node's target as an attribute path from the ``torch``
module (``torch.os.system`` is one). A local model is named by a user, so the archive must
hold only what a plain exported graph needs: the current zip format, tensors as raw bytes
described by JSON, weights-only sample inputs, and nodes that call ``torch.ops`` operators,
Python's ``operator`` functions or ``math``. Anything else is refused with its name.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shift.errors import WorkerError

_PART = r"(?!__)\w+"
SAFE_TARGET = re.compile(
    rf"torch\.ops\.{_PART}\.{_PART}(\.{_PART})?|_operator\.{_PART}|math\.{_PART}"
)
"""Node targets a plain exported graph calls (no dunder step: no climbing out of them)."""

REFUSED_FOLDERS = ("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/")
"""Archive folders of compiled code or formats shift does not load."""


def check_program_archive(path: Path) -> None:
    """Refuse a ``.pt2`` archive that would unpickle, load native code or call non-operators.

    Raises:
        WorkerError: the file is not a current ``torch.export`` archive, or names the member
            or node target that is refused.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            _check(path, archive)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as error:
        raise WorkerError(
            f"checkpoint {path} is corrupt or not a torch.export (.pt2) file: {error}"
        ) from None


def _refuse(path: Path, why: str) -> WorkerError:
    return WorkerError(
        f"checkpoint {path} is unsafe to load as a torch.export program: {why}; export the "
        "model again with torch.export.save (plain tensors, aten operators only)"
    )


def _check(path: Path, archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    roots = {name.split("/", 1)[0] for name in names}
    if len(roots) != 1:
        raise WorkerError(f"checkpoint {path} is corrupt or not a torch.export (.pt2) file")
    (root,) = roots
    members = {name[len(root) + 1 :]: name for name in names if "/" in name}
    if archive.read(members.get("archive_format", root)).decode().strip() != "pt2":
        raise WorkerError(f"checkpoint {path} is not a torch.export (.pt2) file of today's format")
    for inner in members:
        if inner.startswith(REFUSED_FOLDERS):
            raise _refuse(path, f"it holds {inner!r} (compiled code or an unsupported format)")
        if inner.startswith(("data/weights/", "data/constants/")) and inner.endswith(".pt"):
            raise _refuse(path, f"it holds {inner!r}, a pickled legacy payload")
        if inner.endswith(("_weights_config.json", "_constants_config.json")):
            _check_payload_config(path, inner, json.loads(archive.read(members[inner])))
        elif inner.startswith("data/sample_inputs/"):
            _check_weights_only(path, inner, archive.read(members[inner]))
        elif inner.startswith("models/") and inner.endswith(".json"):
            for target in _targets(json.loads(archive.read(members[inner]))):
                if not SAFE_TARGET.fullmatch(target):
                    raise _refuse(path, f"a graph node calls {target!r}, not an operator")


def _check_payload_config(path: Path, inner: str, config: Any) -> None:
    entries = config.get("config", {}) if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise WorkerError(f"checkpoint {path} is corrupt: {inner} is not a payload config")
    for name, meta in entries.items():
        if not isinstance(meta, dict):
            raise WorkerError(f"checkpoint {path} is corrupt: {inner} entry {name!r}")
        if meta.get("use_pickle"):
            raise _refuse(path, f"{name!r} is stored as a pickle")
        if str(meta.get("path_name", "")).startswith(("custom_obj_", "opaque_obj_")):
            raise _refuse(path, f"{name!r} is a pickled object")


def _check_weights_only(path: Path, inner: str, data: bytes) -> None:
    import torch

    if not data:
        return
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler refused a global, or the bytes are torn
        raise _refuse(
            path, f"{inner} does not load weights-only ({type(error).__name__})"
        ) from None


def _targets(value: Any) -> Iterator[str]:
    """Every node ``target`` in a serialized graph (nested graphs included)."""
    if isinstance(value, dict):
        target = value.get("target")
        if isinstance(target, str) and "inputs" in value:
            yield target
        for item in value.values():
            yield from _targets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _targets(item)
