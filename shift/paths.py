"""Confinement of local paths (dataset files, model files) to the configured data roots.

The broker checks every path of a spec when it is registered and the workers check it again
when they read it, with the same rules, so a path the catalog accepts is the path a worker
reads:

- a path with ``..`` components is refused;
- a relative path is looked up under each data root in order (the first that has it wins);
- after every symlink is resolved the path must lie inside a data root (a symlink inside a
  root that points out of it is refused too), or inside one of the folders shift writes
  itself (``also``: fine-tuned weights) when it is absolute.

A loader value that may be a hub id or a local folder (:func:`hub_or_path`) is a path when
it is absolute, starts with ``~`` or ``.``, or names an entry under a data root; otherwise it
must look like a hub id (``NAME`` or ``ORG/NAME``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from shift.errors import CatalogError

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
"""The shape of a hub id: ``NAME`` or ``ORG/NAME``."""


def data_roots(value: str | None = None) -> tuple[Path, ...]:
    """The data roots: a colon-separated list (the ``data_roots`` setting by default)."""
    if value is None:
        from shift.settings import load_settings

        value = str(load_settings()["data_roots"])
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


def inside(path: Path, folders: Iterable[Path]) -> bool:
    """Whether the resolved ``path`` lies in one of the resolved ``folders``."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(folder.resolve()) for folder in folders)


def confine(
    path: str | Path,
    roots: tuple[Path, ...],
    base: Path | None = None,
    also: tuple[Path, ...] = (),
) -> Path:
    """Resolve ``path`` (relative to ``base``, else to the roots in order) inside the roots.

    Args:
        path: The path a spec names.
        roots: The data roots.
        base: Folder a relative path is relative to (a CSV's image column); must itself be
            inside the roots.
        also: Folders shift writes itself; an existing absolute path inside one is accepted.

    Raises:
        CatalogError: the path has ``..`` components, no roots are configured, it does not
            exist, or it resolves outside every root.
    """
    raw = Path(path).expanduser()
    if ".." in raw.parts:
        raise CatalogError(f"path {str(path)!r} contains '..'; local paths may not climb")
    if raw.is_absolute() and also and os.path.lexists(raw) and inside(raw, also):
        return raw.resolve()
    if not roots:
        raise CatalogError(
            f"cannot read {str(path)!r}: no data roots are configured; "
            "set SHIFT_DATA_ROOTS (colon-separated directories)"
        )
    candidates = [raw] if raw.is_absolute() else [r / raw for r in ((base,) if base else roots)]
    for candidate in candidates:
        if not os.path.lexists(candidate):
            continue
        if inside(candidate, roots):
            return candidate.resolve()
        allowed = ", ".join(str(r) for r in roots)
        raise CatalogError(
            f"path {str(path)!r} resolves to {str(candidate.resolve())!r}, outside the data "
            f"roots ({allowed}); symlinks out of a root are refused too"
        )
    raise CatalogError(f"path {str(path)!r} does not exist under the data roots")


def looks_like_path(value: str) -> bool:
    """Whether a string is a path by its shape: absolute, ``~``, ``.`` or with ``..``."""
    raw = Path(value)
    return raw.is_absolute() or value.startswith(("~", ".")) or ".." in raw.parts


def hub_or_path(value: str, roots: tuple[Path, ...], also: tuple[Path, ...] = ()) -> Path | None:
    """The confined local path a hub-or-folder value names, or ``None`` for a hub id.

    Raises:
        CatalogError: the value is a path outside the roots, or neither a path under the
            roots nor a hub id.
    """
    if looks_like_path(value):
        return confine(value, roots, also=also)
    if any(os.path.lexists(root / value) for root in roots):
        return confine(value, roots)
    if HUB_ID.fullmatch(value):
        return None
    raise CatalogError(
        f"{value!r} is neither a folder under the data roots nor a hub id (NAME or ORG/NAME)"
    )
