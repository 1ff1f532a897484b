"""Third-party rankers through a real ``shift.rankers`` entry point on ``sys.path``.

The plugin is the example of docs/rankers.md, installed as a dist-info directory in a
temporary folder, so the documented example is the one that is tested.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from shift import plugins
from shift.errors import QueryError, WorkerError
from shift.methods import RANKERS
from shift.ql import parse, render
from workers import rankers as R

DOC = (Path(__file__).resolve().parents[2] / "docs" / "rankers.md").read_text(encoding="utf-8")


def install(root: Path, name: str, modules: dict[str, str], entry_points: dict[str, str]):
    """Write modules and a dist-info directory with ``entry_points.txt`` under ``root``."""
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text, encoding="utf-8")
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = [f"{key} = {value}" for key, value in entry_points.items()]
    (info / "entry_points.txt").write_text("[shift.rankers]\n" + "\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for fake distributions; every registry is restored afterwards."""
    specs, functions = dict(RANKERS), dict(R.RANKER_FUNCTIONS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    RANKERS.clear()
    RANKERS.update(specs)
    R.RANKER_FUNCTIONS.clear()
    R.RANKER_FUNCTIONS.update(functions)
    plugins._ADDED.clear()
    plugins._LOADED.clear()
    for module in ("variance_ranker", "broken_ranker", "clash_ranker"):
        sys.modules.pop(module, None)


def documented_plugin() -> tuple[str, dict[str, str]]:
    code = re.search(r"```python\n# variance_ranker.py\n(.*?)```", DOC, re.S).group(1)
    toml = re.search(r"```toml\n(.*?)```", DOC, re.S).group(1)
    return code, tomllib.loads(toml)["project"]["entry-points"]["shift.rankers"]


def test_the_documented_plugin_ranks_like_a_builtin(site):
    code, entry_points = documented_plugin()
    install(site, "variance-ranker", {"variance_ranker": code}, entry_points)
    assert "variance_ratio" not in RANKERS
    found = plugins.load_plugins(refresh=True)
    assert list(found.rankers) == ["variance_ratio"] and not found.failures
    spec = RANKERS["variance_ratio"]
    assert [(p.name, p.kind, p.default) for p in spec.params] == [("floor", float, 1e-12)]
    assert spec.needs == ("features", "labels")
    assert spec.help == "Share of the feature variance that lies between the class means."
    assert (
        "variance-ranker 0.1: variance_ranker:variance_ratio"
        in found.rankers["variance_ratio"].source
    )

    tree = parse('RANK * FROM models TRAINED ON a TESTED ON b BY "variance_ratio(floor=1e-9)"')
    assert tree.rankers[0].name == "variance_ratio"
    assert [(p.name, p.value.value) for p in tree.rankers[0].params] == [("floor", 1e-9)]
    assert parse(render(tree)) == tree
    with pytest.raises(QueryError, match="floor must be a number"):
        parse("RANK * FROM models TRAINED ON a TESTED ON b BY \"variance_ratio(floor='x')\"")
    # one feature, classes at 0,1 and 3,4: between-class share 9 / 10 (the H-score toy case)
    features, labels = np.array([[0.0], [1.0], [3.0], [4.0]]), np.array([5, 5, 9, 9])
    assert R.rank_score("variance_ratio", features, labels) == pytest.approx(0.9)
    assert R.get_ranker("variance_ratio").source.startswith("variance-ranker 0.1")
    with pytest.raises(WorkerError, match="floor must be a number"):
        R.rank_score("variance_ratio", features, labels, params={"floor": "tiny"})


def test_a_worker_discovers_plugins_on_the_first_unknown_name(site):
    code, entry_points = documented_plugin()
    install(site, "variance-ranker", {"variance_ranker": code}, entry_points)
    plugins._LOADED.clear()  # as in a fresh worker: nothing scanned yet
    features, labels = np.array([[0.0], [0.0], [2.0], [2.0]]), np.array([0, 0, 1, 1])
    assert R.rank_score("variance_ratio", features, labels, model="m") == pytest.approx(1.0)


def test_broken_and_clashing_plugins_are_skipped_with_their_reason(site):
    install(
        site,
        "bad-rankers",
        {
            "broken_ranker": "raise ImportError('needs a GPU library')\n",
            "clash_ranker": "def logme(features, labels, *, logits=None):\n    return 1.0\n",
        },
        {"broken": "broken_ranker:score", "logme": "clash_ranker:logme"},
    )
    found = plugins.load_plugins(refresh=True)
    assert found.failures["broken"].error == "ImportError: needs a GPU library"
    assert "already taken" in found.failures["logme"].error
    assert R.RANKER_FUNCTIONS["logme"].source == "builtin"
    with pytest.raises(WorkerError, match=r"ranker 'broken' from bad-rankers 0\.1.*needs a GPU"):
        R.get_ranker("broken")


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda features, labels, *, logits=None, flag=True: 0.0, "int, float or str default"),
        (lambda features, labels, *, logits=None, k=None: 0.0, "int, float or str default"),
    ],
)
def test_plugin_signatures_that_cannot_be_parameters_are_refused(function, message):
    with pytest.raises(ValueError, match=message):
        plugins.spec_from_function("odd", function)


def test_plugin_needs_and_names_are_checked():
    def score(features, labels, *, logits=None):
        return 0.0

    score.needs = ("pixels",)
    with pytest.raises(ValueError, match="subset of"):
        plugins.spec_from_function("odd", score)
    with pytest.raises(ValueError, match="lower-case"):
        plugins.spec_from_function("Odd-Name", lambda features, labels, *, logits=None: 0.0)
