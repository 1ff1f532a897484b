"""The ``model_registry`` task kind: list timm's registry or search the Hugging Face Hub.

TASK body: :class:`shift.model_registry.RegistryPayload` (a browse ``SELECT`` or a
``REGISTER MODELS`` statement). RESULT: ``{"rows", "listed", "measured",
"measured_rows"}``: the answer, the registry's size, the architectures built for this task
and the rows given measurements (built now or found in the cache).

timm's registry ships inside the package, so names, tags, input size, normalisation and
licence are known offline. ``num_params`` and ``feature_dim`` are measured by building the
headless architecture on torch's ``meta`` device (no memory, no weights; a model that
cannot be built there is built on the CPU, still without weights) and counting its
parameters; the feature width is what timm states for the pooled features (or one forward
pass on a meta tensor when it states none). Measurements are cached per (timm version,
architecture, input size when it changes the parameters) in memory and in a JSON file
under the state directory, so a second import measures nothing. No weights are read
here: an imported model fetches its weights when it is first embedded.

The Hub search needs the network; offline (``HF_HUB_OFFLINE=1``, or huggingface.co not
reachable within :data:`REACH_TIMEOUT_S`) it fails at once with what to do instead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shift import model_registry as mr
from shift.errors import WorkerError
from shift.ql import nodes as n
from workers.atomic import atomic_write
from workers.kinds import TaskContext, task_kind

log = logging.getLogger(__name__)

REACH_TIMEOUT_S = 1.5
"""How long the Hub search waits to reach huggingface.co before it says it is offline."""

HUB_HOST = ("huggingface.co", 443)
HUB_DEFAULT_LIMIT = 100
"""Most Hub models one statement lists when it gives no LIMIT."""
HUB_MAX_LIMIT = 1000

_MEASURED: dict[str, dict[str, Any]] = {}
"""This process's timm measurements by ``<timm version>/<measure key>``."""
_LOCK = threading.Lock()


# ---- timm --------------------------------------------------------------------------------


def _config(name: str) -> dict[str, Any] | None:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name, allow_unregistered=False)
    return None if cfg is None else cfg.to_dict()


def timm_listing() -> list[dict[str, Any]]:
    """Every row of the installed timm's registry (pretrained tags and bare architectures)."""
    import timm

    return mr.timm_rows(timm.list_models(pretrained=True), timm.list_models(), _config)


def _cache_file(version: str) -> Path:
    from shift.settings import load_settings

    state = Path(load_settings()["state_dir"]).expanduser()
    return state / "registry" / f"timm-{version}-measurements.json"


def _load_cache(version: str) -> None:
    path = _cache_file(version)
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        log.warning("ignoring the unreadable measurement cache %s: %s", path, error)
        return
    if isinstance(stored, dict):
        for key, value in stored.items():
            if isinstance(value, dict):
                _MEASURED.setdefault(f"{version}/{key}", value)


def _save_cache(version: str) -> None:
    prefix = f"{version}/"
    mine = {k[len(prefix) :]: v for k, v in _MEASURED.items() if k.startswith(prefix)}
    body = json.dumps(mine, sort_keys=True).encode()
    try:
        atomic_write(_cache_file(version), lambda handle: handle.write(body))
    except OSError as error:
        log.warning("could not save timm measurements: %s", error)


def _feature_dim(model: Any, size: int, device: str) -> int:
    """Width of the pooled features a headless timm model returns.

    timm states it as ``head_hidden_size`` (a pre-logits MLP) or ``num_features``; a model
    that states neither runs one forward pass on a meta tensor (shapes only, no compute).
    """
    import torch

    for attribute in ("head_hidden_size", "num_features"):
        value = getattr(model, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    with torch.inference_mode():
        out = model(torch.empty(1, 3, size, size, device=device))
    return int(out[0].numel())


def _build_and_measure(name: str, size: int) -> dict[str, Any]:
    """num_params and feature_dim of ``name`` built without weights (meta device first)."""
    import timm
    import torch

    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                model = timm.create_model(name, pretrained=False, num_classes=0)
            params = int(sum(p.numel() for p in model.parameters()))
            return {
                "num_params": params,
                "feature_dim": _feature_dim(model, size, device),
                "built_on": device,
            }
        except (RuntimeError, NotImplementedError, ValueError, TypeError) as error:
            log.info("building %s on %s failed: %s", name, device, error)
    raise WorkerError(f"timm could not build {name!r} to measure it")


class TimmMeasurer:
    """Measures timm rows for one task and counts the architectures it had to build."""

    def __init__(self, ctx: TaskContext | None = None) -> None:
        self.ctx = ctx
        self.built = 0

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``{name: {"num_params", "feature_dim"}}`` of the rows."""
        out, built = measure_timm(rows, self.ctx)
        self.built += built
        return out


def measure_timm(
    rows: Sequence[Mapping[str, Any]], ctx: TaskContext | None
) -> tuple[dict[str, Any], int]:
    """Measure timm rows (cached, see the module docstring).

    Returns:
        ``{name: {"num_params", "feature_dim"}}`` and how many architectures were built.
    """
    import timm
    from timm.models import get_pretrained_cfg

    version = timm.__version__
    with _LOCK:
        if not any(k.startswith(f"{version}/") for k in _MEASURED):
            _load_cache(version)
        keys: dict[str, str] = {}
        for row in rows:
            cfg = get_pretrained_cfg(str(row["name"]))
            fixed = bool(cfg is not None and cfg.fixed_input_size)
            keys[str(row["name"])] = f"{version}/{mr.measure_key(row, fixed)}"
        todo = {key: name for name, key in keys.items() if key not in _MEASURED}
        sizes = {str(r["name"]): int(r["input_size"]) for r in rows}
        for done, (key, name) in enumerate(sorted(todo.items())):
            if ctx is not None:
                ctx.check_cancelled()
                ctx.progress(done, len(todo), f"measuring {name}")
            time.sleep(0.005)  # let the event loop take the GIL: heartbeats keep flowing
            try:
                _MEASURED[key] = _build_and_measure(name, sizes[name])
            except WorkerError as error:
                log.warning("%s", error)
                _MEASURED[key] = {"num_params": None, "feature_dim": None, "error": str(error)}
        if todo:
            _save_cache(version)
        return {name: _MEASURED[key] for name, key in keys.items()}, len(todo)


# ---- the Hugging Face Hub ------------------------------------------------------------------


def _reachable(address: tuple[str, int], timeout_s: float) -> bool:
    """Whether a TCP connection to ``address`` opens within ``timeout_s`` (DNS included)."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(address, timeout=timeout_s):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True, name="hub-probe")
    thread.start()
    thread.join(timeout_s)
    return bool(answer and answer[0])


OFFLINE_HELP = (
    "the Hugging Face Hub search needs the network, and this worker is offline ({why}). "
    "Browse timm's registry instead (it ships with timm: SELECT name FROM timm_registry), "
    "or register a model you have on disk with REGISTER MODEL ... (source, path)"
)


def hub_offline_reason() -> str | None:
    """Why the Hub cannot be searched now, or ``None`` when it can."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    if not _reachable(HUB_HOST, REACH_TIMEOUT_S):
        return f"huggingface.co:443 is not reachable within {REACH_TIMEOUT_S:g} s"
    return None


def _pushdown(cond: n.Condition | None) -> dict[str, Any]:
    """Hub search filters implied by the top-level AND of a condition (the rest is local)."""
    parts = cond.operands if isinstance(cond, n.And) else (cond,) if cond is not None else ()
    out: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, n.Compare) and part.op is n.CmpOp.EQ:
            key = {"library": "library", "pipeline_tag": "pipeline_tag", "author": "author"}.get(
                part.column.value
            )
            if key and isinstance(part.value.value, str):
                out[key] = part.value.value
        elif isinstance(part, n.Like) and part.column.value == "name" and not part.negated:
            text = str(part.pattern.value).strip("%")
            if text and "%" not in text and "_" not in text:
                out["search"] = text
    return out


def hub_rows(statement: mr.Query) -> list[dict[str, Any]]:
    """Hub models matching the statement's pushed-down filters, as registry rows.

    Raises:
        WorkerError: offline (at once, with what to do) or the Hub answered with an error.
    """
    why = hub_offline_reason()
    if why is not None:
        raise WorkerError(OFFLINE_HELP.format(why=why))
    from huggingface_hub import HfApi

    filters = _pushdown(statement.where)
    limit = statement.limit if statement.limit is not None else HUB_DEFAULT_LIMIT
    if statement.where is not None:  # conditions the Hub cannot apply are checked here
        limit = min(HUB_MAX_LIMIT, max(limit * 5, limit))
    try:
        found = HfApi().list_models(
            **filters,
            sort="downloads",
            limit=limit,
            expand=["downloads", "likes", "library_name", "pipeline_tag", "tags", "safetensors"],
        )
        models = list(found)
    except Exception as error:  # the edge of the world: any HTTP or hub error
        raise WorkerError(
            f"the Hugging Face Hub search failed: {type(error).__name__}: {error}"
        ) from None
    rows = []
    for model in models:
        tags = list(getattr(model, "tags", None) or [])
        licence = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
        safetensors = getattr(model, "safetensors", None)
        rows.append(
            {
                "name": model.id,
                "architecture": model.id.split("/", 1)[-1],
                "library": getattr(model, "library_name", None),
                "pipeline_tag": getattr(model, "pipeline_tag", None),
                "pretrained": True,
                "license": licence,
                "downloads": getattr(model, "downloads", None),
                "likes": getattr(model, "likes", None),
                "author": model.id.split("/", 1)[0] if "/" in model.id else None,
                "num_params": getattr(safetensors, "total", None),
                "feature_dim": None,
            }
        )
    return rows


# ---- the kind ----------------------------------------------------------------------------


def registry_answer(payload: dict[str, Any], ctx: TaskContext | None = None) -> dict[str, Any]:
    """Run the ``model_registry`` kind (see the module docstring).

    Raises:
        WorkerError: a bad payload, the Hub offline, or a timm model that cannot be built.
    """
    task = mr.RegistryPayload.from_json(payload)
    registry = mr.registry_of(task.statement)
    measurer = TimmMeasurer(ctx)
    if registry == "timm":
        rows = timm_listing()
        rows_out, measured = mr.answer(task.statement, rows, measurer)
    else:
        rows = hub_rows(task.statement)
        # Hub figures come with the listing (num_params from the safetensors index); the
        # feature size is known once a worker loads the model.
        rows_out, measured = mr.answer(task.statement, rows, lambda r: {})
    return {
        "rows": rows_out,
        "listed": len(rows),
        "measured": measurer.built,
        "measured_rows": measured,
    }


@task_kind("model_registry")
def model_registry(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """List timm's registry or search the Hugging Face Hub for a browse or an import."""
    return registry_answer(payload, ctx)
