"""Hold, act, confirm (docs/holds.md), as a `with` block around the act.

    result = client.check.join_group(app_id, room, [user], hold_seconds=30)
    if result.allowed:
        with client.check.held(app_id, result):
            database.add_member(room, user)   # raises: the hold is cancelled, the place is free again
        # here the membership is confirmed; HoldLost if the hold had expired meanwhile (undo the act)

A check answered by the client's on_unavailable="allow" policy holds nothing (it has no hold_id): the
block runs and there is nothing to confirm.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from imlimits_client.errors import HoldLost, ImlimitsError
from imlimits_client.types import CheckResult, HoldResult


def _admitted(result: CheckResult) -> str:
    if not result.allowed:
        raise ValueError(f"the check was refused ({result.code}: {result.info}): there is nothing to act on")
    return result.hold_id


def _confirmed(hold_id: str, answer: HoldResult) -> None:
    if not answer.confirmed:
        raise HoldLost(hold_id, answer.info)


class HoldBlock:
    """Confirms the hold when the block succeeds, cancels it when the block raises."""

    def __init__(self, run_confirm: Callable[[str], HoldResult], run_cancel: Callable[[str], Any],
                 result: CheckResult) -> None:
        self._confirm, self._cancel = run_confirm, run_cancel
        self.result = result
        self._hold_id = _admitted(result)

    def __enter__(self) -> CheckResult:
        return self.result

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if not self._hold_id:
            return
        if kind is None:
            _confirmed(self._hold_id, self._confirm(self._hold_id))
            return
        # The block's own error matters more; an unconfirmed hold releases itself when it ends.
        with contextlib.suppress(ImlimitsError):
            self._cancel(self._hold_id)


class AsyncHoldBlock:
    """`async with`: confirms the hold when the block succeeds, cancels it when the block raises."""

    def __init__(self, run_confirm: Callable[[str], Awaitable[HoldResult]], run_cancel: Callable[[str], Awaitable[Any]],
                 result: CheckResult) -> None:
        self._confirm, self._cancel = run_confirm, run_cancel
        self.result = result
        self._hold_id = _admitted(result)

    async def __aenter__(self) -> CheckResult:
        return self.result

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if not self._hold_id:
            return
        if kind is None:
            _confirmed(self._hold_id, await self._confirm(self._hold_id))
            return
        # The block's own error matters more; an unconfirmed hold releases itself when it ends.
        with contextlib.suppress(ImlimitsError):
            await self._cancel(self._hold_id)
