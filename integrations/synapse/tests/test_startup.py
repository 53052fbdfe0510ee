"""What an operator sees at start-up: a bad config stops Synapse with the key and the rule; either reactor works."""

from __future__ import annotations

import pytest

from harness import temp_dir
from homeserver import HomeserverProcess
from sites import Site, eventually


def test_a_bad_module_config_stops_synapse_naming_the_key() -> None:
    homeserver = HomeserverProcess(temp_dir("imlimits-test-synapse-"),
                                   {"target": "127.0.0.1:1", "app_id": 1400000009, "hold_second": 5})
    with pytest.raises(RuntimeError) as failed:
        homeserver.start()
    assert "hold_second: unknown key; the keys are target, app_id, token_file" in str(failed.value)


def test_the_module_runs_on_either_reactor(deny: Site, allow: Site) -> None:
    assert "on EPollReactor" in deny.homeserver.log()
    assert "on AsyncioSelectorReactor" in allow.homeserver.log()
    for site in (deny, allow):
        owner = site.user("owner")
        room_id = owner.create_room().expect(200)["room_id"]
        assert site.client.check.usage(site.app_id, user=owner.user_id).user_groups == 1, room_id


def test_an_app_imlimits_does_not_have_is_logged_and_refused_like_an_outage(deny: Site) -> None:
    homeserver = HomeserverProcess(temp_dir("imlimits-test-synapse-"),
                                   {"target": deny.limits.target, "app_id": 1400000099})
    homeserver.start()
    try:
        eventually(lambda: "imlimits has no app 1400000099: create it" in homeserver.log(), 10, "the start-up line")
        refused = homeserver.register("nobody").create_room()
        assert refused.status == 403 and refused.json()["limit_type"] == "service_unavailable"
        assert "imlimits: checking a new room of @nobody:localhost: " in homeserver.log()
    finally:
        homeserver.stop()
