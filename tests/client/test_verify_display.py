"""`imlimits admin verify` shows memberships pending release apart from drift."""

from __future__ import annotations

from imlimits_client import display
from imlimits_client.types import Drift, Verification


def test_pending_releases_are_shown_and_are_not_drift() -> None:
    lines = display.verification(7, Verification(2, 3, (), False, pending_groups=1, pending_releases=98_400))
    assert lines.splitlines() == [
        "app 7: 2 groups, 3 users with memberships",
        "98400 memberships of 1 destroyed groups pending release (counted until released, not drift)",
        "no drift: every count matches the membership sets"]


def test_nothing_pending_adds_no_line() -> None:
    lines = display.verification(7, Verification(2, 3, (Drift("groups", 3, 2),), False)).splitlines()
    assert lines[:2] == ["app 7: 2 groups, 3 users with memberships",
                         "1 counts drifted (run again with --repair to fix)"]
