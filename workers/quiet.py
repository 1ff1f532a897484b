"""Third-party chatter a worker keeps out of its log.

transformers prints a "LOAD REPORT" table (as a warning) for every model whose checkpoint and
architecture differ in a key, and transformers and the hub client draw tqdm bars ("Loading
weights", downloads) on stderr: in ``shift up``'s log, where every worker's stderr ends up,
they bury the lines that matter. A worker therefore runs transformers at verbosity ``error``
and without progress bars; its own warnings (a missing weight, say, which the huggingface
family reports itself) and every error still show. Set ``TRANSFORMERS_VERBOSITY`` or
``HF_HUB_DISABLE_PROGRESS_BARS`` to have them back: a value already set is kept.
"""

from __future__ import annotations

import os
import sys

DEFAULTS = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
"""Environment defaults of a worker process (read by transformers and huggingface_hub)."""


def quiet_third_party() -> None:
    """Apply :data:`DEFAULTS` (where unset) to this process, also to libraries already
    imported. Idempotent; imports nothing that is not yet imported."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    bars_off = os.environ["HF_HUB_DISABLE_PROGRESS_BARS"].strip().lower() in ("1", "true", "yes")
    if "huggingface_hub" in sys.modules and bars_off:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        level = os.environ["TRANSFORMERS_VERBOSITY"].strip().lower()
        levels = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
        if level in levels:
            hf_logging.set_verbosity(levels[level])
        if bars_off:
            hf_logging.disable_progress_bar()
