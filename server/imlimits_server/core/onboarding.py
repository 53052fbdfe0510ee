"""The vocabulary of onboarding: group records imported or exported, and what an import reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from imlimits_server.core.checks import GroupType

# SPEC section 4: a record carries at most this many members; a larger group continues in further records.
MAX_MEMBERS_PER_RECORD = 10_000
# Entries of the over-limit report an import answers; the total is always counted in full.
MAX_OVER_LIMIT_ENTRIES = 1000


@dataclass(frozen=True)
class GroupRecord:
    """A group as it exists on the platform (or a slice of its members)."""

    group_id: str
    group_type: GroupType
    owner: str
    members: list[str]
    max_members: int


@dataclass(frozen=True)
class OverLimit:
    """Something that now exceeds the plan and so refuses newcomers. `kind`: av_rooms, group_members, user_groups."""

    kind: str
    subject: str
    limit: int
    current: int


@dataclass
class ImportReport:
    groups_created: int = 0
    groups_updated: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0
    over_limit: list[OverLimit] = field(default_factory=list)
    over_limit_total: int = 0

    def note_over_limit(self, entry: OverLimit) -> None:
        self.over_limit_total += 1
        if len(self.over_limit) < MAX_OVER_LIMIT_ENTRIES:
            self.over_limit.append(entry)
