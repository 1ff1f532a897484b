"""Hub access of the model families: where hub weights are cached, whether the hub answers,
and the error that says what to do when a hub model is neither cached nor reachable.

A hub model loads from this worker's cache when it is there (no network at all), else from
the hub when the hub answers, else it fails at once with :func:`not_cached` (instead of the
hub client's minute of retries). The hub is offline when ``HF_HUB_OFFLINE`` (or
``TRANSFORMERS_OFFLINE``) is set, or when its endpoint (``HF_ENDPOINT``, through the
``HTTPS_PROXY`` when one is set) gives no HTTP answer within :data:`PROBE_TIMEOUT_S`; the
verdict is kept for :data:`VERDICT_TTL_S`, so a batch of registrations probes once.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from shift.errors import WorkerError

PROBE_TIMEOUT_S = 1.0
"""How long the reachability probe waits for the hub's endpoint to answer."""

VERDICT_TTL_S = 30.0
"""How long one probe's verdict (reachable or not) is reused."""


@dataclass(frozen=True)
class CacheDirs:
    """Where this worker keeps downloaded weights.

    Attributes:
        hf_hub: The Hugging Face hub cache (``HF_HUB_CACHE``, default ``$HF_HOME/hub``):
            transformers models and most timm weights (``models--ORG--NAME`` folders).
        torch_hub: torch's hub folder (``$TORCH_HOME/hub``); timm weights published only
            as a URL land in its ``checkpoints`` folder.
    """

    hf_hub: Path
    torch_hub: Path


def cache_dirs() -> CacheDirs:
    """This process's weight caches, as the hub client and torch resolve them."""
    import torch
    from huggingface_hub import constants

    return CacheDirs(Path(constants.HF_HUB_CACHE), Path(torch.hub.get_dir()))


def cached_file(repo_id: str, filenames: Iterable[str]) -> Path | None:
    """The first of ``filenames`` in the hub cache for ``repo_id`` (``ORG/NAME[@REV]``), or
    ``None``; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = repo_id.partition("@")
    for filename in filenames:
        try:
            found = try_to_load_from_cache(repo, filename, revision=revision or None)
        except ValueError:  # not a valid repo id (HFValidationError): nothing is cached
            return None
        if isinstance(found, str):
            return Path(found)
    return None


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _answers(url: str, timeout_s: float) -> bool:
    """Whether ``url`` gives any HTTP answer (an error status counts) within ``timeout_s``;
    the name lookup is bounded too (it runs on a thread that is not waited for longer)."""
    outcome: list[bool] = []

    def probe() -> None:
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s):
                outcome.append(True)
        except urllib.error.HTTPError:
            outcome.append(True)
        except (OSError, ValueError):  # URLError, timeouts, refused, a malformed endpoint
            outcome.append(False)

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.1)
    return bool(outcome and outcome[0])


class HubStatus:
    """Whether the hub can be used now, probed at most once per :data:`VERDICT_TTL_S`.

    Args:
        answers: ``answers(url, timeout_s) -> bool``, the probe.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        answers: Callable[[str, float], bool] = _answers,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._answers = answers
        self._clock = clock
        self._lock = threading.Lock()
        self._verdict: tuple[float, str | None] | None = None

    def offline_reason(self) -> str | None:
        """Why the hub cannot be used now (one phrase), or ``None`` when it answers."""
        from huggingface_hub import constants

        if constants.is_offline_mode():
            return "HF_HUB_OFFLINE is set"
        with self._lock:
            now = self._clock()
            if self._verdict is not None and now - self._verdict[0] < VERDICT_TTL_S:
                return self._verdict[1]
            endpoint = _endpoint()
            reason = (
                None
                if self._answers(endpoint, PROBE_TIMEOUT_S)
                else f"{endpoint} did not answer within {PROBE_TIMEOUT_S:g} s"
            )
            self._verdict = (now, reason)
            return reason


HUB = HubStatus()
"""This process's view of the hub."""


def not_cached(
    model: str, what: str, repo_id: str, reason: str, fix: str, url_file: str | None = None
) -> WorkerError:
    """The error of a hub model that is neither in this worker's cache nor downloadable.

    Args:
        model: The model's catalog name.
        what: What is missing, e.g. ``"the timm weights of 'resnet18'"``.
        repo_id: The hub repository holding it.
        reason: Why the hub cannot be used (:meth:`HubStatus.offline_reason`).
        fix: The family's third way out (a local checkpoint or folder, random init).
        url_file: The file name of weights also published at a URL (timm), which torch's
            ``hub/checkpoints`` folder may hold instead.
    """
    dirs = cache_dirs()
    folder = "models--" + repo_id.partition("@")[0].replace("/", "--")
    url = (
        ""
        if url_file is None
        else f", or put {url_file} into {dirs.torch_hub / 'checkpoints'} ($TORCH_HOME/hub)"
    )
    return WorkerError(
        f"model {model!r}: {what} (hub repository {repo_id}): not in this worker's cache, "
        f"and the hub cannot be reached ({reason}). Do one of: (1) run this worker once "
        f"with network access, so the files download into its cache; (2) pre-seed the cache "
        f"on this worker: copy the folder {folder} from an online machine's hub cache into "
        f"{dirs.hf_hub} (HF_HUB_CACHE, default $HF_HOME/hub; `hf download {repo_id}` there "
        f"fills it){url}; (3) {fix}"
    )
