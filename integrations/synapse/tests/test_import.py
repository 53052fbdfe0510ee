"""`imlimits-synapse import` on a homeserver whose rooms imlimits does not know, or knows wrongly; run twice."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import temp_dir
from homeserver import SYNAPSE_PYTHON
from imlimits_client import GroupType
from imlimits_synapse.ids import group_key, user_key
from sites import Site, group_type, imlimits_down, members, rooms_of


def run_import(site: Site, admin_token: str) -> str:
    token_file = temp_dir("imlimits-test-import-") / "admin-token"
    token_file.write_text(admin_token + "\n")
    command = Path(SYNAPSE_PYTHON).parent / "imlimits-synapse"
    done = subprocess.run([str(command), "import", "--homeserver", site.homeserver.url,
                           "--admin-token-file", str(token_file), "--target", site.limits.target,
                           "--app-id", str(site.app_id)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def summary(output: str) -> dict[str, int]:
    rows = {}
    for line in output.splitlines():
        name, _, value = line.rpartition("  ")
        if value.strip().replace(",", "").isdigit():
            rows[name.strip()] = int(value.strip().replace(",", ""))
    return rows


def test_import_makes_counts_exact_and_a_second_run_changes_nothing(allow: Site) -> None:
    alice, bob, carol, dave, erin = allow.users(5, "onboard")
    counted = alice.create_room(preset="public_chat").expect(200)["room_id"]
    bob.join(counted).expect(200)
    # What the homeserver has and imlimits does not: made while imlimits was down (on_unavailable: allow).
    with imlimits_down(allow, "stopped"):
        uncounted = carol.create_room().expect(200)["room_id"]
        carol.invite(uncounted, dave.user_id).expect(200)
        dave.join(uncounted).expect(200)
        dave.join(counted).expect(200)
        space = erin.create_room(creation_content={"type": "m.space"}, preset="public_chat").expect(200)["room_id"]
        direct = erin.create_room(is_direct=True, invite=[alice.user_id]).expect(200)["room_id"]
        alice.join(direct).expect(200)
    # And what imlimits counts that the homeserver does not have: a member who never joined.
    allow.client.check.join_group(allow.app_id, group_key(counted), [user_key("@ghost:localhost")])
    assert members(allow, counted) == 3

    first = summary(run_import(allow, allow.user("importer", admin=True).token))
    assert members(allow, counted) == 3  # alice, bob, dave; the ghost released
    assert members(allow, uncounted) == 2
    assert members(allow, space) == 1
    assert group_type(allow, uncounted) is GroupType.WORK
    assert group_type(allow, counted) is GroupType.PUBLIC
    assert group_type(allow, space) is GroupType.COMMUNITY
    assert rooms_of(allow, dave) == 2 and rooms_of(allow, alice) == 1  # the direct chat is not counted
    assert first["memberships removed"] >= 1 and first["groups created"] >= 2

    second = summary(run_import(allow, allow.user("importer", admin=True).token))
    assert second["memberships added"] == 0 and second["memberships removed"] == 0
    assert second["groups created"] == 0
    assert members(allow, counted) == 3 and members(allow, uncounted) == 2
