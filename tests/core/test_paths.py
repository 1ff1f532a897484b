"""Local paths in specs: confinement to the data roots and the hub-id-or-folder rule.

Pure core (:mod:`shift.paths`, :mod:`shift.registration`) on real temporary folders: the broker
and the workers apply these same functions, so what registers is what a worker reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shift.errors import CatalogError
from shift.paths import confine, data_roots, hub_or_path
from shift.registration import dataset_problem, local_paths, source_values


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "x").mkdir(parents=True)
    (second / "y").mkdir(parents=True)
    (second / "y" / "f.pth").write_bytes(b"")
    (tmp_path / "outside").mkdir()
    return first, second


def test_relative_paths_resolve_under_each_root_in_order(roots: tuple[Path, Path]) -> None:
    assert confine("x", roots) == roots[0].resolve() / "x"
    assert confine("y/f.pth", roots) == roots[1].resolve() / "y" / "f.pth"
    assert confine(str(roots[1] / "y"), roots) == roots[1].resolve() / "y"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside", "may not climb"),
        ("x/../../outside", "may not climb"),
        ("missing", "does not exist under the data roots"),
    ],
)
def test_bad_relative_paths(roots: tuple[Path, Path], path: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        confine(path, roots)


def test_absolute_paths_and_symlinks_out_are_refused(roots: tuple[Path, Path]) -> None:
    outside = roots[0].parent / "outside"
    with pytest.raises(CatalogError, match="outside the data roots"):
        confine(str(outside), roots)
    (roots[0] / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CatalogError, match="outside the data roots"):
        confine("link", roots)


def test_folders_shift_writes_admit_absolute_paths_only(roots: tuple[Path, Path]) -> None:
    own = roots[0].parent / "outside"
    (own / "w.pt").write_bytes(b"")
    assert confine(str(own / "w.pt"), roots, also=(own,)) == own.resolve() / "w.pt"
    assert confine(str(own / "w.pt"), (), also=(own,)) == own.resolve() / "w.pt"
    with pytest.raises(CatalogError, match="does not exist"):
        confine("w.pt", roots, also=(own,))  # relative paths look only under the roots
    with pytest.raises(CatalogError, match="no data roots are configured"):
        confine(str(roots[0] / "x"), (), also=(own,))


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("bert-base-uncased", None),
        ("sentence-transformers/all-MiniLM-L6-v2", None),
        ("x", "a/x"),
        ("y", "b/y"),
    ],
)
def test_hub_ids_and_folders(roots: tuple[Path, Path], value: str, want: str | None) -> None:
    got = hub_or_path(value, roots)
    assert got == (None if want is None else roots[0].parent.resolve() / want)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/etc", "outside the data roots"),
        ("~", "outside the data roots"),
        ("./nothing", "does not exist"),
        ("../outside", "may not climb"),
        ("a/b/c", "neither a folder under the data roots nor a hub id"),
    ],
)
def test_paths_that_are_no_hub_ids_are_confined(
    roots: tuple[Path, Path], value: str, message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        hub_or_path(value, roots)


def test_local_paths_find_every_file_key() -> None:
    loader = {
        "arch": "resnet18",
        "checkpoint": "c.pth",
        "weights": {"path": "/w.pt"},
        "onnx": {"distribution": "pkg", "path": "m.onnx"},
        "nested": [{"path": "n.csv"}],
        "model": "org/name",
    }
    assert local_paths(loader) == ["c.pth", "/w.pt", "n.csv"]
    assert source_values(loader) == ["org/name"]
    assert source_values({"model": {"path": "/x"}, "tokenizer": "/t"}) == ["/t"]
    assert local_paths({"model": {"path": "/x"}}) == ["/x"]


def test_data_roots_split_on_the_path_separator(tmp_path: Path) -> None:
    assert data_roots(f"{tmp_path}/a: :{tmp_path}/b") == (tmp_path / "a", tmp_path / "b")
    assert data_roots("") == ()


@pytest.mark.parametrize(
    ("size", "classes", "message"),
    [
        (0, 0, "has no rows"),
        (None, None, "has no rows"),
        (5, 1, "has 1 class(es) in its 5 row(s)"),
        (5, 2, None),
    ],
)
def test_dataset_problem(size: object, classes: object, message: str | None) -> None:
    problem = dataset_problem("d", size, classes)
    assert (problem is None) if message is None else (message in str(problem))
