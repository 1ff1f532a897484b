"""Rate limits for warnings about what peers send: pure bookkeeping over supplied times.

A hostile or broken peer can send thousands of bad frames a second; logging each one would
fill the disk. :class:`WarningLimit` lets one warning per key (a peer and what it did)
through every ``interval_s`` and counts the ones it held back, so the next warning can say
how many were suppressed.
"""

from __future__ import annotations

from shift.errors import SettingsError

MAX_KEYS = 10000
"""Most keys remembered; past it the oldest are forgotten (peers can make up identities)."""


class WarningLimit:
    """Allows one warning per key per interval and counts the rest.

    Args:
        interval_s: Seconds between two warnings with the same key.
        max_keys: Most keys remembered at once.
    """

    def __init__(self, interval_s: float, max_keys: int = MAX_KEYS) -> None:
        if interval_s <= 0 or max_keys < 1:
            raise SettingsError(
                f"a warning limit needs a positive interval and key count, "
                f"got {interval_s} s and {max_keys}"
            )
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[object, float] = {}
        self._held: dict[object, int] = {}

    def allow(self, key: object, now: float) -> int | None:
        """Whether to log a warning for ``key`` at ``now``.

        Returns:
            ``None`` when the warning should be held back (it is counted), else how many
            warnings with this key were held back since the last one let through.
        """
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if last is None and len(self._last) >= self.max_keys:
            oldest = next(iter(self._last))
            del self._last[oldest]
            self._held.pop(oldest, None)
        self._last.pop(key, None)
        self._last[key] = now
        return self._held.pop(key, 0)

    def prune(self, now: float) -> None:
        """Forget keys whose interval is over and that held nothing back."""
        for key in [k for k, t in self._last.items() if now - t >= self.interval_s]:
            if key not in self._held:
                del self._last[key]
