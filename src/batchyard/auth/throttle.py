"""Per-principal request rates: a token bucket per caller (an access key's user, or a client
address for requests that fail to authenticate). A request takes a token; an empty bucket
answers ``TooManyRequestsException`` (429), which AWS SDKs retry with backoff."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from batchyard.errors import Throttled

MAX_BUCKETS = 100_000


class Throttle:
    def __init__(self, rate: float, burst: int, clock: object = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, who: str) -> None:
        """Spend one token of ``who``'s bucket, or raise :class:`Throttled`."""
        now = self._clock()  # type: ignore[operator]
        with self._lock:
            tokens, last = self._buckets.pop(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise Throttled(
                    f"Rate exceeded: {who} may make {self.rate:g} requests per second (bursts of "
                    f"{self.burst}); retry in {wait:.2f} s (AWS SDKs retry this by themselves)"
                )
            self._buckets[who] = (tokens - 1.0, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
