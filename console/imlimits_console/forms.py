"""The 升级 and 变配 dialogs' fields, read into exactly the items the operator asks to change.

Only what the operator changed is named in the request: naming an unchanged
limit would pin it, where the service would otherwise adjust it to a new
edition (SPEC's implicit adjustment), and the preview shows the outcome either
way. The service judges every value; the bounds here are shown as hints.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData

from imlimits_client import App, Edition

# The published bounds, shown beside the fields (PRO/ULTIMATE defaults up to the
# add-on maxima). Hints only: the service validates, so a stale hint costs a
# refusal message, never a wrong plan.
HINTS: dict[str, dict[Edition, tuple[int, int]]] = {
    "user_group_limit": {Edition.PRO: (500, 5000), Edition.ULTIMATE: (1000, 5000)},
    "group_member_limit": {Edition.PRO: (200, 6000), Edition.ULTIMATE: (2000, 6000)},
}
LIMIT_ITEMS = ("user_group_limit", "group_member_limit")
_EDITIONS = {edition.name: edition for edition in Edition}
_UINT32_MAX = 2**32 - 1


class FormError(Exception):
    """A field that is not even a value (the service never sees it); `key` is a word of words.py."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class PlanChangeForm:
    """The items a request names; None means not named."""

    edition: Edition | None = None
    av_room_unlimited: bool | None = None
    user_group_limit: int | None = None
    group_member_limit: int | None = None

    def hidden_fields(self) -> list[tuple[str, str]]:
        """The request as hidden inputs of the confirm form, so what is confirmed is what was previewed."""
        fields: list[tuple[str, str]] = []
        if self.edition is not None:
            fields.append(("edition", self.edition.name))
        if self.av_room_unlimited is not None:
            fields.append(("av_room_unlimited", "true" if self.av_room_unlimited else "false"))
        for item in LIMIT_ITEMS:
            value = getattr(self, item)
            if value is not None:
                fields.append((item, str(value)))
        return fields


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _edition(form: FormData) -> Edition | None:
    return _EDITIONS.get(_text(form, "edition"))


def _number(form: FormData, item: str) -> int | None:
    text = _text(form, item)
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or int(text) > _UINT32_MAX:
        raise FormError("whole_number", item=item)
    return int(text)


def _switch(form: FormData, name: str) -> bool | None:
    return {"true": True, "false": False}.get(_text(form, name))


def upgrade(form: FormData) -> PlanChangeForm:
    """升级: the target edition, and the add-ons given (empty limits keep the edition's defaults)."""
    edition = _edition(form)
    if edition is None or edition is Edition.TRIAL:
        raise FormError("choose_edition")
    return PlanChangeForm(edition, True if _switch(form, "av_room_unlimited") else None,
                          _number(form, "user_group_limit"), _number(form, "group_member_limit"))


def change(form: FormData, current: App) -> PlanChangeForm:
    """变配: the fields start at the current values; those left as they are are not named."""
    edition = _edition(form)
    av_room_unlimited = _switch(form, "av_room_unlimited")
    limits = {item: _number(form, item) for item in LIMIT_ITEMS}
    return PlanChangeForm(
        edition if edition is not None and edition is not current.edition else None,
        av_room_unlimited if av_room_unlimited is not None and av_room_unlimited != current.av_room_unlimited
        else None,
        *(value if value is not None and value != getattr(current, item) else None for item, value in limits.items()),
    )


def confirmed(form: FormData) -> PlanChangeForm:
    """The confirm form's hidden fields: exactly the previewed request."""
    return PlanChangeForm(_edition(form), _switch(form, "av_room_unlimited"),
                          *(_number(form, item) for item in LIMIT_ITEMS))
