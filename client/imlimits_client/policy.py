"""Deadlines, retries with jittered backoff, and what a check answers when the service is unreachable."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Literal

from imlimits_client.calls import Call
from imlimits_client.errors import ImlimitsError, Unavailable
from imlimits_client.types import CheckResult, ImCode

OnUnavailable = Literal["deny", "allow", "raise"]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries only UNAVAILABLE answers of calls that are safe to repeat, within the call's deadline."""

    attempts: int = 3
    base_delay: float = 0.01
    max_delay: float = 0.2


class Attempts:
    """The budget of one call: its deadline and how many tries remain."""

    def __init__(self, policy: RetryPolicy, timeout: float, retry_safe: bool) -> None:
        self._policy = policy
        self._deadline = time.monotonic() + timeout
        self._left = policy.attempts if retry_safe else 1
        self._tried = 0

    def remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def retry_delay(self, error: ImlimitsError) -> float | None:
        """Seconds to wait before the next try, or None to give up."""
        self._tried += 1
        if not isinstance(error, Unavailable) or self._tried >= self._left:
            return None
        # Full jitter: spreads the retries of many callers after a blip.
        delay = random.uniform(0, min(self._policy.max_delay, self._policy.base_delay * 2 ** self._tried))
        return delay if delay < self.remaining() else None


def unavailable_answer(call: Call[Any], error: ImlimitsError, on_unavailable: OnUnavailable) -> CheckResult:
    """A check's answer when the service could not be reached, or the error itself."""
    if not (call.is_check and isinstance(error, Unavailable)) or on_unavailable == "raise":
        raise error
    if on_unavailable == "allow":
        return CheckResult(ImCode.OK, f"limit service unavailable, allowed by on_unavailable='allow': {error}",
                           True, degraded=True)
    return CheckResult(ImCode.SERVICE_UNAVAILABLE,
                       f"limit service unavailable, denied by on_unavailable='deny': {error}", False, degraded=True)
