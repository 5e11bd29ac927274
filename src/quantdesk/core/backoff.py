"""Retry back-off: the one formula every retry loop in quantdesk waits by.

Live feeds reconnecting, webhooks re-sending, pipeline steps retried and connections to
a busy store file all wait ``min(cap, base * factor**attempt)`` seconds before retry
``attempt`` (0-based), drawn uniformly below that ceiling when ``jitter`` is on (full
jitter: many clients retrying at once spread out instead of colliding again).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with optional full jitter.

    Retry ``n`` waits a time uniform on ``[0, min(cap, base * factor**n)]``, or the
    ceiling itself with ``jitter=False`` (reproducible: tests, and retries whose spacing
    a user configured).

    Examples
    --------
    >>> [Backoff(base=0.5, cap=3.0, jitter=False).delay(n) for n in range(4)]
    [0.5, 1.0, 2.0, 3.0]
    >>> 0.0 <= Backoff(base=1.0).delay(2, random.Random(7)) <= 4.0
    True
    """

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError(f"back-off needs base >= 0, cap >= 0 and factor >= 1, got {self!r}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the wait in seconds before retry number ``attempt`` (0-based)."""
        ceiling = min(self.cap, self.base * self.factor ** max(attempt, 0))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0.0, ceiling)
