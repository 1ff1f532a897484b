"""The layer rules: which top-level package may import which, checked on the source.

Every module of ``shift/``, ``broker/``, ``workers/``, ``repl/`` and ``simulator/`` is parsed
with :mod:`ast`; its imports are the static ``import``/``from`` statements (type-checking
blocks included: a type is a dependency too), the string arguments of
``importlib.import_module``, ``__import__``, ``find_spec``, ``pkgutil.resolve_name`` and
``EntryPoint(...)``, and any other string literal that spells a module of a guarded package
(``"broker.store"``, ``"workers.embed:run"``). A crossing fails with the file, the line and
the rule it breaks. Known crossings that another change removes are listed, with the reason,
in :data:`KNOWN_CROSSINGS`; an entry whose crossing no longer exists fails too, so the list
cannot rot.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("shift", "broker", "workers", "repl", "simulator")
HEAVY = frozenset({"torch", "torchvision", "timm", "transformers"})
"""Model libraries: imported only inside ``workers/``, and there only lazily."""


@dataclass(frozen=True)
class Rule:
    """Packages one layer must not import, and why."""

    layer: str
    forbidden: frozenset[str]
    reason: str


RULES = {
    rule.layer: rule
    for rule in (
        Rule(
            "shift",
            frozenset({"broker", "workers", "repl", "simulator", "zmq", "aiohttp", *HEAVY}),
            "shift/ is the pure core: no outer package, no zmq, aiohttp or torch",
        ),
        Rule(
            "broker",
            frozenset({"workers", *HEAVY}),
            "the broker reaches workers over ZeroMQ only and never loads a model",
        ),
        Rule(
            "workers",
            frozenset({"broker", "repl"}),
            "workers reach the broker over ZeroMQ only",
        ),
        Rule(
            "repl",
            frozenset({"broker", "workers", *HEAVY}),
            "the client reaches the broker over HTTP only",
        ),
        Rule(
            "simulator",
            frozenset({"workers", *HEAVY}),
            "the simulator models workers from their records; it never runs a model",
        ),
    )
}
LAZY_REASON = "torch, timm and transformers load only inside a function of workers/ (lazily)"

KNOWN_CROSSINGS: dict[tuple[str, str], str] = {}
"""``(file, module) -> why``: crossings allowed until the named change lands."""

IMPORTERS = {"import_module": 0, "__import__": 0, "find_spec": 0, "resolve_name": 0}
"""Callables whose string argument (at this position) names a module to import."""

MODULE_STRING = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?::[A-Za-z_][\w.]*)?")
"""``package.module`` or ``package.module:attribute``."""


@dataclass(frozen=True)
class Import:
    """One module a source file imports."""

    path: str
    line: int
    module: str
    how: str
    lazy: bool

    @property
    def top(self) -> str:
        """The top-level package imported."""
        return self.module.split(".", 1)[0]


class _Imports(ast.NodeVisitor):
    """Collects the imports of one module, with whether each runs only inside a function."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.found: list[Import] = []
        self._functions = 0
        self._type_checking = 0
        self._consumed: set[int] = set()

    def _add(self, node: ast.AST, module: str, how: str) -> None:
        lazy = self._functions > 0 or self._type_checking > 0
        self.found.append(Import(self.path, getattr(node, "lineno", 0), module, how, lazy))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        checking = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        self._type_checking += checking
        for child in node.body:
            self.visit(child)
        self._type_checking -= checking
        self.visit(node.test)
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name, "import")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            return  # relative: the same package
        self._add(node, node.module or "", "from")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        args = list(node.args)
        if name == "EntryPoint":
            values = [k.value for k in node.keywords if k.arg == "value"] + args[1:2]
            self._string_args(node, values, "EntryPoint")
        elif name in IMPORTERS:
            position = IMPORTERS[name]
            names = [k.value for k in node.keywords if k.arg in ("name", "module")]
            self._string_args(node, args[position : position + 1] + names, name)
        self.generic_visit(node)

    def _string_args(self, node: ast.Call, values: list[ast.expr], how: str) -> None:
        for value in values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                self._consumed.add(id(value))
                self._add(node, value.value.partition(":")[0], how)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant):
            return  # a docstring or a bare string: documentation, not a reference
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        text = node.value
        if id(node) in self._consumed or not isinstance(text, str):
            return
        if MODULE_STRING.fullmatch(text) and ("." in text or ":" in text):
            module = text.partition(":")[0]
            if _is_module(module):
                self._add(node, module, "module string")


def _is_module(module: str) -> bool:
    """Whether ``module`` names a module of a guarded package (a file here, or a library)."""
    top, _, rest = module.partition(".")
    if top in LAYERS:
        base = ROOT.joinpath(top, *rest.split(".")) if rest else ROOT / top
        return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()
    return top in HEAVY or top in ("zmq", "aiohttp")


def imports_of(path: str, source: str) -> list[Import]:
    """Every import of one source file (``path`` relative to the repository root)."""
    collector = _Imports(path)
    collector.visit(ast.parse(source, filename=path))
    return collector.found


def crossings(path: str, source: str) -> Iterator[tuple[Import, str]]:
    """``(import, broken rule)`` for every import of ``path`` that crosses a layer."""
    layer = path.split("/", 1)[0]
    rule = RULES.get(layer)
    for found in imports_of(path, source):
        if rule is not None and found.top in rule.forbidden:
            yield found, f"{layer}/ must not import {found.top}: {rule.reason}"
        elif layer == "workers" and found.top in HEAVY and not found.lazy:
            yield found, LAZY_REASON


def _sources() -> Iterator[tuple[str, str]]:
    for layer in LAYERS:
        for file in sorted((ROOT / layer).rglob("*.py")):
            if "__pycache__" not in file.parts:
                yield file.relative_to(ROOT).as_posix(), file.read_text(encoding="utf-8")


def _report(found: Import, rule: str) -> str:
    return f"{found.path}:{found.line}: imports {found.module!r} ({found.how}); rule: {rule}"


def _all_crossings() -> list[tuple[Import, str]]:
    return [c for path, source in _sources() for c in crossings(path, source)]


TYPING = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"


def test_every_layer_is_scanned() -> None:
    scanned = {path.split("/", 1)[0] for path, _ in _sources()}
    assert scanned == set(LAYERS)
    assert sum(1 for _ in _sources()) > 100


def test_no_module_crosses_a_layer() -> None:
    broken = [
        _report(found, rule)
        for found, rule in _all_crossings()
        if (found.path, found.module) not in KNOWN_CROSSINGS
    ]
    assert not broken, "layer rules broken:\n" + "\n".join(broken)


def test_every_known_crossing_still_exists() -> None:
    present = {(found.path, found.module) for found, _ in _all_crossings()}
    stale = [f"{path} -> {module} ({why})" for (path, module), why in KNOWN_CROSSINGS.items()
             if (path, module) not in present]  # fmt: skip
    assert not stale, "remove these KNOWN_CROSSINGS entries, the crossing is gone:\n" + "\n".join(
        stale
    )


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("shift/x.py", "import zmq\n", "shift/x.py:1: imports 'zmq' (import)"),
        (
            "shift/x.py",
            "\nfrom broker.store import Store\n",
            "shift/x.py:2: imports 'broker.store'",
        ),
        (
            "shift/x.py",
            "import importlib as il\nm = il.import_module('repl.client')\n",
            "shift/x.py:2: imports 'repl.client' (import_module)",
        ),
        (
            "shift/x.py",
            "from importlib import import_module\ndef f():\n    import_module(name='torch')\n",
            "shift/x.py:3: imports 'torch' (import_module)",
        ),
        ("shift/x.py", "m = __import__('aiohttp.web')\n", "imports 'aiohttp.web' (__import__)"),
        (
            "shift/x.py",
            "from importlib.metadata import EntryPoint\n"
            "e = EntryPoint('up', 'broker.up', 'shift.commands')\n",
            "shift/x.py:2: imports 'broker.up' (EntryPoint)",
        ),
        (
            "shift/x.py",
            "COMMANDS = {'worker': 'workers.worker_command:run'}\n",
            "imports 'workers.worker_command' (module string)",
        ),
        (
            "shift/x.py",
            f"{TYPING}    from simulator import costs\n",
            "shift/x.py:3: imports 'simulator' (from); rule: shift/ must not import simulator",
        ),
        ("broker/x.py", "from workers.embed import run\n", "broker/ must not import workers"),
        ("broker/x.py", "def f():\n    import torch\n", "broker/ must not import torch"),
        ("workers/x.py", "import broker.store\n", "workers/ must not import broker"),
        ("workers/x.py", "from repl.client import BrokerClient\n", "must not import repl"),
        ("workers/x.py", "import timm\n", "workers/x.py:1: imports 'timm' (import); rule: torch"),
        ("repl/x.py", "from broker import up\n", "repl/ must not import broker"),
        ("simulator/x.py", "import transformers\n", "simulator/ must not import transformers"),
    ],
)
def test_a_crossing_names_the_file_the_line_and_the_rule(
    path: str, source: str, expected: str
) -> None:
    reports = [_report(found, rule) for found, rule in crossings(path, source)]
    assert any(expected in r for r in reports), reports


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("workers/x.py", "def load():\n    import torch\n    from timm import create_model\n"),
        ("workers/x.py", f"{TYPING}    import torch\n"),
        ("shift/x.py", "'''See :mod:`broker.store` and ``workers.embed``.'''\n"),
        ("shift/x.py", "KEY = 'workers'\nPATH = '/v1/workers'\nFILE = 'broker.log'\n"),
        ("shift/x.py", "from . import errors\nfrom .ql import parse\n"),
        ("shift/x.py", "import importlib\nm = importlib.import_module(name)\n"),
        ("broker/x.py", "from shift.tasks import TaskSpec\nimport zmq\nimport aiohttp\n"),
        (
            "simulator/x.py",
            "from broker.store import Store\nfrom repl.client import BrokerClient\n",
        ),
    ],
)
def test_allowed_imports_are_not_crossings(path: str, source: str) -> None:
    assert [_report(f, r) for f, r in crossings(path, source)] == []
