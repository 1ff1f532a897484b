"""CurveZMQ keys of the worker link: making them, choosing whether the broker needs them,
and the check of a connecting worker's key.

The file layout is :class:`shift.keys.KeyPaths`. The broker uses CurveZMQ when
``zmq_auth`` is ``curve``; with ``auto`` (the default) it does so for ``shift up``, for a
``zmq_host`` that is not loopback and whenever the state directory holds a broker key pair.
``off`` is refused unless the ROUTER binds a loopback address: on any other address every
process that can reach the port could take tasks and send results.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from shift.errors import SettingsError
from shift.keys import (
    BUNDLE_BROKER,
    BUNDLE_SECRET,
    LOCAL_NAME,
    CurveServer,
    KeyPair,
    KeyPaths,
    check_name,
    read_allowed,
    read_cert,
    write_cert,
)
from shift.netaddr import is_loopback
from shift.settings import ZMQ_AUTH_MODES

log = logging.getLogger(__name__)


def new_pair() -> KeyPair:
    """A fresh CurveZMQ key pair."""
    public, secret = zmq.curve_keypair()
    return KeyPair(public.decode("ascii"), secret.decode("ascii"))


def init_broker(paths: KeyPaths, *, force: bool = False) -> tuple[KeyPair, bool]:
    """Make the broker's key pair unless it exists.

    Args:
        paths: The state directory's key layout.
        force: Replace an existing pair (every worker bundle made before stops working).

    Returns:
        The pair and whether it was made now.
    """
    if paths.broker_secret.exists() and not force:
        return read_cert(paths.broker_secret, secret=True), False
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.allowed_dir.mkdir(mode=0o700, exist_ok=True)
    pair = new_pair()
    write_cert(paths.broker_secret, pair)
    write_cert(paths.broker_public, KeyPair(pair.public))
    return pair, True


def add_worker(paths: KeyPaths, name: str, out: Path | None = None, *, force: bool = False) -> Path:
    """Make a worker's key pair, allow its public key and write its bundle folder.

    Args:
        paths: The state directory's key layout (the broker pair is made if missing).
        name: The worker's key name.
        out: Where to write the bundle (default ``STATE_DIR/keys/bundles/NAME``).
        force: Replace a worker key of that name.

    Returns:
        The bundle folder.

    Raises:
        SettingsError: the name is not valid, or taken and ``force`` is not set.
    """
    check_name(name)
    if paths.allowed(name).exists() and not force:
        raise SettingsError(
            f"a worker key named {name!r} exists ({paths.allowed(name)}); "
            "pick another name, or pass --force to replace it"
        )
    broker, _ = init_broker(paths)
    pair = new_pair()
    bundle = out if out is not None else paths.bundle(name)
    bundle.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_cert(bundle / BUNDLE_SECRET, pair)
    write_cert(bundle / BUNDLE_BROKER, KeyPair(broker.public))
    write_cert(paths.allowed(name), KeyPair(pair.public))
    return bundle


def remove_worker(paths: KeyPaths, name: str) -> bool:
    """Stop accepting worker ``name`` (its allowed key and bundle are deleted).

    Returns:
        Whether there was such a worker key.
    """
    check_name(name)
    allowed = paths.allowed(name)
    found = allowed.exists()
    allowed.unlink(missing_ok=True)
    if paths.bundle(name).is_dir():
        shutil.rmtree(paths.bundle(name))
    return found


def local_bundle(paths: KeyPaths) -> Path:
    """A new key pair for ``shift up``'s own workers, replacing the previous run's.

    Workers left over from an earlier run hold the old key, so this broker refuses them.
    """
    return add_worker(paths, LOCAL_NAME, paths.bundle(LOCAL_NAME), force=True)


def curve_server(settings: dict[str, Any], *, create: bool) -> CurveServer | None:
    """Decide whether the broker uses CurveZMQ, and load (or make) its keys.

    Args:
        settings: Resolved settings (``zmq_auth``, ``zmq_host``, ``state_dir``).
        create: Make the broker key pair when missing (``shift up``, which also turns
            ``auto`` into ``curve``).

    Returns:
        The server keys, or ``None`` for a plain link.

    Raises:
        SettingsError: ``zmq_auth`` is unknown, ``off`` on a non-loopback address, or keys
            are needed but missing.
    """
    mode = str(settings["zmq_auth"]).strip().lower()
    if mode not in ZMQ_AUTH_MODES:
        raise SettingsError(f"zmq_auth must be one of {', '.join(ZMQ_AUTH_MODES)}, got {mode!r}")
    host = str(settings["zmq_host"])
    loopback = is_loopback(host)
    paths = KeyPaths.of(settings["state_dir"])
    if mode == "off":
        if not loopback:
            raise SettingsError(
                f"zmq_auth=off is refused with zmq_host {host!r}: that address is reachable from "
                "other machines, and any process there could take tasks and forge results; "
                "bind 127.0.0.1 or use CurveZMQ keys (shift keys init)"
            )
        return None
    have = paths.broker_secret.exists()
    if not (mode == "curve" or create or not loopback or have):
        return None
    if not have:
        if not create:
            why = "zmq_auth=curve" if mode == "curve" else f"zmq_host {host!r} is not loopback"
            raise SettingsError(
                f"{why}, so the worker link needs CurveZMQ keys, and {paths.root} has none; "
                f"run `shift keys init --state-dir {Path(settings['state_dir'])}` and "
                "`shift keys add-worker NAME` for each worker"
            )
        init_broker(paths)
    return CurveServer(read_cert(paths.broker_secret, secret=True), paths.allowed_dir)


class AllowedKeys:
    """The ZAP check of a connecting worker's public key against the allowed folder.

    The folder is read again whenever it changes, so ``shift keys add-worker`` and
    ``remove-worker`` take effect without restarting the broker.

    Args:
        folder: The allowed folder (``STATE_DIR/keys/workers``).
        on_denied: Called with the refused key (Z85 text).
    """

    def __init__(self, folder: Path, on_denied: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self.on_denied = on_denied
        self._stamp: int | None = None
        self._allowed: dict[str, str] = {}

    def names(self) -> dict[str, str]:
        """Allowed public keys and their worker names (re-read if the folder changed)."""
        try:
            stamp = self.folder.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            self._stamp = stamp
            self._allowed = read_allowed(self.folder)
        return self._allowed

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP callback: True when ``key`` (Z85) is allowed."""
        text = key.decode("ascii", "replace")
        if text in self.names():
            return True
        if self.on_denied is not None:
            self.on_denied(text)
        return False
