"""No module of shift unpickles: a static check of every Python file in the repository.

Each file is parsed with :mod:`ast` and refused, with file and line, when it

- imports ``pickle``, ``cPickle``, ``_pickle``, ``cloudpickle``, ``dill``, ``shelve``,
  ``marshal`` or ``joblib`` (by statement or by an ``import_module``/``__import__`` string);
- calls ``torch.load`` without ``weights_only=True`` (torch's default has changed before);
- passes ``weights_only=False``, ``allow_pickle=True``, ``trust_remote_code=True`` or a
  ``pickle_module``;
- calls ``read_pickle`` or ``joblib.load``;
- loads a model *program* (``torch.export.load``, ``torch.jit.load``, ``torch.package``)
  anywhere but in :data:`PROGRAM_LOADERS`, the one module that checks such files first.

The table tests show each rule catching what it is for, so the repository scan cannot pass
by matching nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {".venv", ".git", "build", "dist", "node_modules", "__pycache__"}

PICKLERS = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "shelve", "marshal", "joblib"}
"""Modules that (un)pickle, or load code objects."""

PROGRAM_CALLS = {"torch.export.load", "torch.jit.load", "export.load", "jit.load"}
"""Loaders of model programs (code and pickles inside): allowed in one checked place."""

PROGRAM_LOADERS = {"workers/models/local.py"}
"""Modules that may load a model program, after confining and checking the file."""


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for an attribute chain (empty for anything else)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _constant(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else ...
    return None


def find_unsafe(source: str, relative: str) -> list[str]:
    """Every unsafe load in ``source`` as ``file:line: what``."""
    problems: list[str] = []

    def say(node: ast.AST, what: str) -> None:
        problems.append(f"{relative}:{getattr(node, 'lineno', 0)}: {what}")

    torch_load_names = {"torch.load"}
    for node in ast.walk(ast.parse(source, relative)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PICKLERS:
                    say(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in PICKLERS:
                say(node, f"imports from {module}")
            if module == "torch":
                for alias in node.names:
                    if alias.name == "load":
                        torch_load_names.add(alias.asname or "load")
            if module in ("torch", "torch.export", "torch.jit") and relative not in PROGRAM_LOADERS:
                for alias in node.names:
                    if alias.name == "package" or (module != "torch" and alias.name == "load"):
                        say(node, f"imports {module}.{alias.name} (a model-program loader)")
    for node in ast.walk(ast.parse(source, relative)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name in torch_load_names and _constant(node, "weights_only") is not True:
            say(node, f"{name}() without weights_only=True")
        if _constant(node, "weights_only") is False:
            say(node, "weights_only=False")
        if _constant(node, "allow_pickle") not in (None, False):
            say(node, "allow_pickle is not False")
        if _constant(node, "trust_remote_code") not in (None, False):
            say(node, "trust_remote_code is not False")
        if any(k.arg == "pickle_module" for k in node.keywords):
            say(node, "passes a pickle_module")
        if name.endswith("read_pickle") or name == "joblib.load":
            say(node, f"calls {name}()")
        if relative not in PROGRAM_LOADERS and (
            name in PROGRAM_CALLS or name.startswith("torch.package.")
        ):
            say(node, f"calls {name}() (a model-program loader) outside {sorted(PROGRAM_LOADERS)}")
        if name.split(".")[-1] in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and str(first.value).split(".")[0] in PICKLERS:
                say(node, f"imports {first.value!r} by name")
    return problems


def python_files() -> list[Path]:
    """Every ``.py`` file of the repository (virtual environments and builds excluded)."""
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not SKIPPED.intersection(path.relative_to(ROOT).parts)
    )


def test_no_module_loads_unsafely() -> None:
    files = python_files()
    assert len(files) > 100, "the scan found too few files to mean anything"
    problems = [
        problem
        for path in files
        for problem in find_unsafe(path.read_text(), path.relative_to(ROOT).as_posix())
    ]
    assert not problems, "unsafe loads (load weights-only, never unpickle):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import pickle", "imports pickle"),
        ("import cloudpickle as cp", "imports cloudpickle"),
        ("from dill import loads", "imports from dill"),
        ("import joblib", "imports joblib"),
        ("import importlib\nimportlib.import_module('pickle')", "imports 'pickle' by name"),
        ("__import__('shelve')", "imports 'shelve' by name"),
        ("import torch\ntorch.load('x')", "torch.load() without weights_only=True"),
        ("import torch\ntorch.load('x', weights_only=False)", "weights_only=False"),
        ("import torch\ntorch.load('x', weights_only=flag)", "without weights_only=True"),
        ("from torch import load\nload('x')", "load() without weights_only=True"),
        ("from torch import load as tl\ntl('x')", "tl() without weights_only=True"),
        ("import numpy as np\nnp.load('x.npy', allow_pickle=True)", "allow_pickle is not False"),
        ("import pandas as pd\npd.read_pickle('x')", "calls pd.read_pickle()"),
        ("torch.save(x, f, pickle_module=dill)", "passes a pickle_module"),
        ("AutoModel.from_pretrained(p, trust_remote_code=True)", "trust_remote_code"),
        ("import torch\ntorch.jit.load('m.pt')", "calls torch.jit.load()"),
        ("import torch\ntorch.export.load('m.pt2')", "calls torch.export.load()"),
        ("from torch import package", "imports torch.package"),
        ("from torch.export import load", "imports torch.export.load"),
    ],
)
def test_each_unsafe_load_is_found(source: str, found: str) -> None:
    problems = find_unsafe(source, "pkg/mod.py")
    assert problems and all(p.startswith("pkg/mod.py:") for p in problems), problems
    assert any(found in p for p in problems), problems


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load('x', map_location='cpu', weights_only=True)",
        "import numpy as np\nnp.load('x.npz', allow_pickle=False)",
        "import numpy as np\nnp.load('x.npz')",
        "import torch\ntorch.save({'a': 1}, 'x')",
        "AutoModel.from_pretrained(p, trust_remote_code=False)",
        "import json\njson.load(f)",
    ],
)
def test_safe_loads_pass(source: str) -> None:
    assert find_unsafe(source, "pkg/mod.py") == []


def test_program_loaders_are_allowed_only_where_files_are_checked() -> None:
    source = "import torch\ntorch.export.load('m.pt2')\ntorch.jit.load('m.pt')"
    assert find_unsafe(source, "workers/models/local.py") == []
    assert len(find_unsafe(source, "workers/other.py")) == 2
