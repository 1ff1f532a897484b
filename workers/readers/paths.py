"""Confinement of dataset paths to the configured data roots.

A path from a dataset spec is refused when it has ``..`` components, or when, after every
symlink is resolved, it lies outside all data roots (a symlink inside a root that points out
of it is refused too).
"""

from __future__ import annotations

import os
from pathlib import Path

from shift.errors import CatalogError


def data_roots(value: str | None = None) -> tuple[Path, ...]:
    """The data roots: a colon-separated list (the ``data_roots`` setting by default)."""
    if value is None:
        from shift.settings import load_settings

        value = str(load_settings()["data_roots"])
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


def confine(path: str | Path, roots: tuple[Path, ...], base: Path | None = None) -> Path:
    """Resolve ``path`` (relative to ``base``, else to the first root) inside the data roots.

    Raises:
        CatalogError: no roots are configured, the path has ``..`` components, it does not
            exist, or it resolves outside every root.
    """
    raw = Path(path).expanduser()
    if ".." in raw.parts:
        raise CatalogError(f"path {str(path)!r} contains '..'; dataset paths may not climb")
    if not roots:
        raise CatalogError(
            f"cannot read {str(path)!r}: no data roots are configured; "
            "set SHIFT_DATA_ROOTS (colon-separated directories)"
        )
    candidates = [raw] if raw.is_absolute() else [r / raw for r in ((base,) if base else roots)]
    for candidate in candidates:
        if not os.path.lexists(candidate):
            continue
        resolved = candidate.resolve()
        for root in roots:
            if resolved.is_relative_to(root.resolve()):
                return resolved
        allowed = ", ".join(str(r) for r in roots)
        raise CatalogError(
            f"path {str(path)!r} resolves to {str(resolved)!r}, outside the data roots "
            f"({allowed}); symlinks out of a root are refused too"
        )
    raise CatalogError(f"path {str(path)!r} does not exist under the data roots")
