"""CurveZMQ key files: where they live in the state directory and how they are read and written.

The worker link is authenticated with CurveZMQ. The broker has one key pair; every worker
has its own, and the broker accepts a worker only when that worker's public key is in its
allowed folder. Keys are Z85 text (40 characters) in ZeroMQ's certificate format, so
``zmq.auth`` and czmq tools read the same files. This module only handles files and text;
making key pairs needs ZeroMQ and lives in ``broker.curve``.

Layout under ``STATE_DIR/keys`` (folders ``0700``, secret files ``0600``)::

    broker.key, broker.key_secret     the broker's key pair
    workers/NAME.key                  public keys of the workers allowed to connect
    bundles/NAME/                     what a worker needs (copy it to the worker machine):
        worker.key_secret             the worker's key pair
        broker.key                    the broker's public key
    local/                            the bundle of ``shift up``'s own workers (new each run)
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shift.errors import SettingsError

KEYS_DIR = "keys"
"""Folder of the key files inside the state directory."""

BUNDLE_SECRET = "worker.key_secret"
"""A bundle's file with the worker's key pair."""

BUNDLE_BROKER = "broker.key"
"""A bundle's file with the broker's public key."""

LOCAL_NAME = "local"
"""The worker name (and bundle folder) of ``shift up``'s own workers."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_Z85 = re.compile(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


@dataclass(frozen=True)
class KeyPair:
    """A CurveZMQ key pair as Z85 text; ``secret`` is empty for a public key alone."""

    public: str
    secret: str = ""


@dataclass(frozen=True)
class CurveServer:
    """What the broker's ROUTER needs: its key pair and the folder of allowed worker keys."""

    keys: KeyPair
    allowed_dir: Path


@dataclass(frozen=True)
class CurveClient:
    """What a worker's DEALER needs: its key pair and the broker's public key."""

    keys: KeyPair
    server_public: str


@dataclass(frozen=True)
class KeyPaths:
    """The key files of one state directory."""

    root: Path

    @classmethod
    def of(cls, state_dir: str | Path) -> KeyPaths:
        """The layout under ``state_dir``."""
        return cls(Path(state_dir).expanduser() / KEYS_DIR)

    @property
    def broker_public(self) -> Path:
        """The broker's public key file."""
        return self.root / "broker.key"

    @property
    def broker_secret(self) -> Path:
        """The broker's key pair file."""
        return self.root / "broker.key_secret"

    @property
    def allowed_dir(self) -> Path:
        """Public keys of the workers the broker accepts."""
        return self.root / "workers"

    def bundle(self, name: str) -> Path:
        """The bundle folder of worker ``name`` (``local`` for ``shift up``'s workers)."""
        return self.root / LOCAL_NAME if name == LOCAL_NAME else self.root / "bundles" / name

    def allowed(self, name: str) -> Path:
        """The allowed public key file of worker ``name``."""
        return self.allowed_dir / f"{name}.key"


def check_name(name: str) -> str:
    """Return ``name`` if it can name a worker key file.

    Raises:
        SettingsError: it is empty, too long or has characters other than letters, digits,
            ``_``, ``.`` and ``-``.
    """
    if not _NAME.fullmatch(name):
        raise SettingsError(
            f"worker key name {name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def write_cert(path: Path, keys: KeyPair) -> None:
    """Write a certificate file atomically (``0600`` when it holds a secret key).

    Raises:
        SettingsError: a key is not 40 characters of Z85.
    """
    for key in (keys.public, keys.secret) if keys.secret else (keys.public,):
        if not _Z85.fullmatch(key):
            raise SettingsError(f"not a Z85 CurveZMQ key: {key[:50]!r}")
    kind = "Secret" if keys.secret else "Public"
    lines = [
        f"#   ****  ZeroMQ CURVE {kind} Certificate, written by shift  ****",
        "metadata",
        "curve",
        f'    public-key = "{keys.public}"',
    ]
    if keys.secret:
        lines.append(f'    secret-key = "{keys.secret}"')
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if keys.secret else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_cert(path: Path, *, secret: bool = False) -> KeyPair:
    """Read a certificate file.

    Args:
        path: The file.
        secret: True when the file must hold the secret key too.

    Raises:
        SettingsError: the file is missing, unreadable or holds no valid key.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"cannot read CurveZMQ key file {path}: {error}") from None
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() in ("public-key", "secret-key"):
            found[name.strip()] = value.strip().strip("'\"")
    public, secret_key = found.get("public-key", ""), found.get("secret-key", "")
    if not _Z85.fullmatch(public) or (secret and not _Z85.fullmatch(secret_key)):
        what = "a public and a secret key" if secret else "a public key"
        raise SettingsError(f"CurveZMQ key file {path} does not hold {what} (40 Z85 characters)")
    return KeyPair(public, secret_key if secret else "")


def read_bundle(folder: str | Path) -> CurveClient:
    """Read a worker's bundle folder (``worker_keys``).

    Raises:
        SettingsError: the folder lacks one of its two files or a file is not valid.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise SettingsError(
            f"worker keys folder {root} does not exist; make one on the broker's machine with "
            "`shift keys add-worker NAME` and copy it here"
        )
    keys = read_cert(root / BUNDLE_SECRET, secret=True)
    return CurveClient(keys, read_cert(root / BUNDLE_BROKER).public)


def read_allowed(folder: Path) -> dict[str, str]:
    """The allowed worker keys in ``folder``: public key -> worker name (bad files skipped)."""
    allowed: dict[str, str] = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.key")):
            try:
                allowed[read_cert(path).public] = path.stem
            except SettingsError:
                continue
    return allowed
