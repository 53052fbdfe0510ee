"""Every Redis key name imlimits uses.

All keys of one app share the hash tag `{im:APP}` so that every script
touches one slot: the same scripts run on one Redis and on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Deployment-wide settings whose change would alter the meaning of stored history.
META_KEY = "imlimits:meta"
# Sorted set (all scores 0) of every app id, zero-padded to APP_INDEX_WIDTH
# digits so lexical order is numeric order: ListApps pages through it with
# ZRANGE BYLEX. It is one key outside every app's hash tag, so on Redis Cluster
# it lives in its own slot; an app is indexed before its first commit, so the
# index never misses an app (it may name one whose creation failed, which a
# listing skips).
APP_INDEX_KEY = "imlimits:apps"
APP_INDEX_WIDTH = 20  # digits of the largest uint64

# The release queue: hash app id -> the sequence number of its latest queueing,
# read by every server's release worker. An app's own keys live in its app's
# slot, so no script can write them and a global key together; both queue keys
# share the tag `{imlimits}` (one slot), and the protocol described in
# release_worker.py keeps the two right without a cross-slot transaction.
RELEASE_QUEUE_KEY = "{imlimits}:release"
RELEASE_SEQUENCE_KEY = "{imlimits}:release-seq"
# Sorted set app id -> when (Redis milliseconds) a worker should look at the
# app next: 0 for a destroy's release (at once), a hold's expiry when all an
# app has left is holds that have not ended yet. Same slot as the queue.
RELEASE_DUE_KEY = "{imlimits}:release-due"


@dataclass(frozen=True)
class AppKeys:
    app_id: int
    # Spelled once per AppKeys: every check names four or more keys of its app.
    tag: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", f"{{im:{self.app_id}}}")

    @property
    def limits(self) -> str:
        """Hash: st (0 active, 1 deactivated), ug, gm, av (-1 unlimited), cm, ver."""
        return f"{self.tag}:lim"

    @property
    def plan(self) -> str:
        """String: the app's plan history as JSON (see store.codec)."""
        return f"{self.tag}:plan"

    @property
    def counts(self) -> str:
        """Hash: rooms (AV chat rooms that exist), groups (groups that exist), and of those still held
        (docs/holds.md): hgroups, hrooms, hmembers (held memberships)."""
        return f"{self.tag}:cnt"

    @property
    def user_counts(self) -> str:
        """Hash: user id -> groups the user is a member of."""
        return f"{self.tag}:uc"

    @property
    def group_index(self) -> str:
        """Set: ids of the groups that exist, so verification enumerates them without scanning Redis."""
        return f"{self.tag}:gi"

    @property
    def draining(self) -> str:
        """Set: tombstones of destroyed groups whose memberships are not yet all released."""
        return f"{self.tag}:drain"

    @property
    def release_lease(self) -> str:
        """String with a TTL: the release worker now releasing this app's tombstones."""
        return f"{self.tag}:rl"

    @property
    def release_cursors(self) -> str:
        """Hash: tombstone -> the SSCAN cursor its release has reached."""
        return f"{self.tag}:rc"

    @property
    def release_sealed(self) -> str:
        """String: the highest queue sequence number for which a worker found nothing left to release."""
        return f"{self.tag}:rs"

    @property
    def release_schedule(self) -> str:
        """Hash: q (the queue number a worker read) and due (Redis ms): that worker saw only holds not yet
        ended and set the app's look-again time to `due` under `q` (see release_worker.py)."""
        return f"{self.tag}:rsch"

    @property
    def hold_expiries(self) -> str:
        """Sorted set: open holds (neither confirmed, cancelled nor expired), scored by their end (Redis ms)."""
        return f"{self.tag}:hx"

    def hold(self, nonce: str) -> str:
        """Hash: st (h held, c confirmed, x cancelled, e expired), exp (Redis ms), g (group id), gh ('1' when
        the hold covers the group itself), gt (its type), u (the users it admitted, one per line), fp (the
        request's fingerprint when it had a request_id)."""
        return f"{self.tag}:h:{nonce}"

    def held_members(self, group_id: str) -> str:
        """Hash: user -> the hold that admitted the user's membership of the group, while it is held."""
        return f"{self.tag}:mh:{group_id}"

    def request(self, request_id: str) -> str:
        """String: the stored answer of a plan request, for idempotent retries."""
        return f"{self.tag}:req:{request_id}"

    def group(self, group_id: str) -> str:
        """Hash: t (type), o (owner), mx (the group's own max_members, 0 follows the plan), h (the hold that
        created it, while it is held)."""
        return f"{self.tag}:g:{group_id}"

    def members(self, group_id: str) -> str:
        """Set: the group's members."""
        return f"{self.tag}:m:{group_id}"

    def tombstone(self, token: str) -> str:
        """Set: members of a destroyed group, released in batches."""
        return f"{self.tag}:dm:{token}"

    def import_seen(self, stream: str) -> str:
        """Hash: group id -> c (created), u (updated), s (named, unchanged) by one import stream."""
        return f"{self.tag}:imp:{stream}"

    def import_stage(self, stream: str, group_id: str) -> str:
        """Set: the members one replacing import stream named so far for a group."""
        return f"{self.tag}:imp:{stream}:s:{group_id}"
