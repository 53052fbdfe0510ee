"""SPEC's billing rule for a month without an edition change: "the highest level it held at any time in that month,
the state carried in at 00:00 on the 1st included"."""

from __future__ import annotations

from core.test_billing import AV, PRO, at, change, charged, month_bill, pro_app


def test_a_level_carried_into_the_month_is_charged_even_if_lowered_on_day_one() -> None:
    state = change(pro_app(), at(2019, 2, 20), user_group_limit=800, av_room_unlimited=True)
    state = change(state, at(2019, 3, 1, 1), user_group_limit=500, av_room_unlimited=False)
    march = month_bill(state, "2019-03")
    assert charged(march) == {"edition": PRO, "av_room_unlimited": AV, "user_group_limit": 3 * 5_000}
    assert [line.level for line in march.lines] == ["EDITION_PRO", "true", "800", "200"]
    assert charged(month_bill(state, "2019-04")) == {"edition": PRO}
