"""Running a broker: store, ROUTER and REST together, with one lifecycle.

:func:`serve` opens the store under the state directory, starts the broker and the HTTP
site, reports where it listens, waits for the stop event, then closes everything in
reverse order (HTTP first so no request sees a closed store; final writes shielded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from broker.api import ApiRunner, check_bind, create_app
from broker.catalog import Catalog
from broker.curve import curve_server
from broker.queries import QueryService
from broker.rank_plan import default_strategy
from broker.search_api import Search
from broker.service import Broker, BrokerConfig
from broker.store import Store
from shift.finetuning import checkpoint_root
from shift.payloads import FEATURES_DIR
from shift.protocol import Timing
from shift.settings import halving_rule
from shift.strategies import DEFAULT_STRATEGY

log = logging.getLogger(__name__)

DB_NAME = "shift.sqlite"
"""Name of the SQLite file inside the state directory."""


def zmq_endpoint(settings: dict[str, Any]) -> str:
    """The ROUTER endpoint from ``zmq_host`` and ``zmq_port``."""
    return f"tcp://{settings['zmq_host']}:{settings['zmq_port']}"


def broker_config(settings: dict[str, Any], *, create_keys: bool = False) -> BrokerConfig:
    """The ROUTER's configuration from settings, CurveZMQ keys included.

    Args:
        settings: Resolved settings.
        create_keys: Make the broker key pair when missing (``shift up``).

    Raises:
        SettingsError: a value is out of range, or the link needs keys that are missing.
    """
    from shift.errors import SettingsError

    for name in ("prefetch_max", "max_frame_bytes", "max_attempts"):
        if int(settings[name]) < 1:
            raise SettingsError(f"setting {name} must be at least 1, got {settings[name]}")
    return BrokerConfig(
        endpoint=zmq_endpoint(settings),
        timing=Timing.from_settings(settings),
        max_attempts=int(settings["max_attempts"]),
        prefetch_max=int(settings["prefetch_max"]),
        max_frame_bytes=int(settings["max_frame_bytes"]),
        curve=curve_server(settings, create=create_keys),
        blocks_dir=Path(settings["state_dir"]).expanduser() / FEATURES_DIR,
    )


async def serve(
    settings: dict[str, Any],
    stop: asyncio.Event,
    on_listening: Callable[[dict[str, str]], None] | None = None,
    *,
    create_keys: bool = False,
) -> None:
    """Run a broker until ``stop`` is set.

    Args:
        settings: Resolved settings (``load_settings``).
        stop: Set it to shut down.
        on_listening: Called with ``{"http": url, "zmq": endpoint}`` once both listen.
        create_keys: Make the CurveZMQ broker key pair when missing (``shift up``).

    Raises:
        SettingsError: the worker link's settings or keys are not usable.
    """
    warning = check_bind(settings["http_host"], settings["token"])
    if warning:
        log.warning(warning)
    config = broker_config(settings, create_keys=create_keys)
    store = Store(Path(settings["state_dir"]) / DB_NAME)
    await store.open()
    broker = Broker(config, store)
    runner: web.AppRunner | None = None
    search: Search | None = None
    try:
        await broker.start()
        search = await open_search(broker, settings)
        app = create_app(broker, token=settings["token"], search=search, settings=settings)
        runner = ApiRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings["http_host"], int(settings["http_port"]))
        await site.start()
        host, port = runner.addresses[0][:2]
        where = {"http": f"http://{host}:{port}", "zmq": broker.bound_endpoint}
        log.info("REST API on %s", where["http"])
        if on_listening is not None:
            on_listening(where)
        await stop.wait()
        log.info("broker stopping")
    finally:
        if runner is not None:
            await runner.cleanup()
        if search is not None:
            await search.queries.close()
            await search.catalog.close()
        await broker.close()


async def open_search(broker: Broker, settings: dict[str, Any]) -> Search:
    """Open the catalog and the query service over a started broker.

    Workers keep features and fine-tune checkpoints in their own ``STATE_DIR/features`` and
    ``STATE_DIR/finetune`` (payloads name no path); local workers share the broker's state
    directory, so the catalog accepts fine-tuned weights from its ``finetune`` folder.
    """
    from shift.paths import data_roots

    finetune = checkpoint_root(settings["state_dir"])
    catalog = Catalog(broker, data_roots(str(settings["data_roots"])), own=(finetune,))
    await catalog.open()
    queries = QueryService(
        broker,
        catalog,
        racing=halving_rule(settings) == "racing",
        rank_strategy=str(settings.get("rank_strategy", DEFAULT_STRATEGY)),
    )
    await queries.open()
    return Search(catalog, queries)


def print_listening(where: dict[str, str]) -> None:
    """Print one JSON line saying where the broker listens (scripts and tests read it)."""
    print(json.dumps({"event": "listening", **where}), flush=True)


def install_stop_signals(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGINT and SIGTERM (the running loop's handlers)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_command(main: Callable[[], Coroutine[Any, Any, None]], command: str) -> int:
    """Run a long-running command's ``main`` to its end; the exit code: 0 done, 1 it could
    not listen (a port in use), 2 its settings or keys are not usable (said on stderr)."""
    from shift.errors import ShiftError

    try:
        asyncio.run(main())
    except OSError as error:
        print(f"shift {command}: cannot listen: {error}", file=sys.stderr)
        return 1
    except ShiftError as error:
        print(f"shift {command}: {error}", file=sys.stderr)
        return 2
    return 0


def command_settings(args: Any, flags: Any, command: str) -> dict[str, Any] | None:
    """Set up logging and resolve a command's settings; ``None`` after printing why not."""
    from shift.cliflags import setting_overrides
    from shift.errors import ShiftError
    from shift.settings import load_settings

    configure_logging(args.log_level)
    try:
        settings = load_settings(setting_overrides(args, flags))
        check_bind(settings["http_host"], settings["token"])  # refuse before starting
        halving_rule(settings)
        default_strategy(str(settings.get("rank_strategy", DEFAULT_STRATEGY)))
        return settings
    except ShiftError as error:
        print(f"shift {command}: {error}", file=sys.stderr)
        return None
