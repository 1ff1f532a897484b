"""``shift keys``: create and hand out the CurveZMQ keys of the worker link.

::

    shift keys init [--state-dir D] [--force]       the broker's key pair
    shift keys add-worker NAME [--out DIR] [--force] a worker's key pair and bundle folder
    shift keys remove-worker NAME                   stop accepting that worker
    shift keys show                                 the broker key and the allowed workers

A bundle folder holds what one worker needs (its key pair and the broker's public key);
copy it to the worker's machine and start ``shift worker --broker tcp://HOST:5555
--worker-keys DIR``. A running broker picks up added and removed workers at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shift.cliflags import Flag, add_setting_flags

HELP = "Create and hand out the CurveZMQ keys of the worker link."
"""One line of ``shift --help``."""

KEYS_FLAGS: tuple[Flag, ...] = (("--state-dir", "state_dir", str),)
"""Flags that override settings of the same name."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift keys`` sub-commands."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="Make the broker's key pair.")
    init.add_argument("--force", action="store_true", help="Replace it (old bundles stop working).")
    add = actions.add_parser("add-worker", help="Make a worker's keys and its bundle folder.")
    add.add_argument("name", help="The worker's key name (letters, digits, '_', '.', '-').")
    add.add_argument("--out", type=Path, default=None, help="Bundle folder (default in keys/).")
    add.add_argument("--force", action="store_true", help="Replace a worker key of that name.")
    remove = actions.add_parser("remove-worker", help="Stop accepting a worker's key.")
    remove.add_argument("name", help="The worker's key name.")
    actions.add_parser("show", help="Print the broker's public key and the allowed workers.")
    for sub in (init, add, remove, actions.choices["show"]):
        add_setting_flags(sub, KEYS_FLAGS)


def run(args: argparse.Namespace) -> int:
    """Carry out one ``shift keys`` action; returns the exit code."""
    from broker.curve import add_worker, init_broker, remove_worker
    from shift.cliflags import setting_overrides
    from shift.errors import ShiftError
    from shift.keys import KeyPaths, read_allowed, read_cert
    from shift.settings import load_settings

    try:
        settings = load_settings(setting_overrides(args, KEYS_FLAGS))
        paths = KeyPaths.of(settings["state_dir"])
        if args.action == "init":
            pair, made = init_broker(paths, force=args.force)
            print(("made" if made else "kept") + f" the broker key pair in {paths.root}")
            print(f"broker public key: {pair.public}")
        elif args.action == "add-worker":
            bundle = add_worker(paths, args.name, args.out, force=args.force)
            print(f"worker {args.name!r} allowed; its keys are in {bundle}")
            print("copy that folder to the worker's machine and run:")
            print(f"  shift worker --broker tcp://BROKER_HOST:5555 --worker-keys {bundle}")
        elif args.action == "remove-worker":
            if not remove_worker(paths, args.name):
                print(f"shift keys: no worker key named {args.name!r}", file=sys.stderr)
                return 1
            print(f"worker {args.name!r} is no longer accepted")
        else:
            if not paths.broker_secret.exists():
                print(f"no broker key pair in {paths.root}; run `shift keys init`")
                return 1
            print(f"broker public key: {read_cert(paths.broker_public).public}")
            allowed = read_allowed(paths.allowed_dir)
            print(f"allowed workers ({len(allowed)}, in {paths.allowed_dir}):")
            for public, name in sorted(allowed.items(), key=lambda item: item[1]):
                print(f"  {name}  {public}")
    except ShiftError as error:
        print(f"shift keys: {error}", file=sys.stderr)
        return 2
    return 0
