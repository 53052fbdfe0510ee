"""The service's answers in the page's words, made from their structure, never by reading the English text.

Bills carry their rule and the values it names (Bill.rule, created_on, ...,
each limit line's default and steps); refusals carry a google.rpc.ErrorInfo
reason with its values (ImlimitsError.reason/params). The words for each are
in words.py, in both languages. What the service answers without structure
(a server older than these fields, a reason this console does not know) is
shown as the service wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from imlimits_client import Bill, BillLine, BillRule, ImlimitsError, PlanRuleViolation
from imlimits_console.words import Translator as Say

# Fields an input error may name, in the console's words (words.py keys).
_FIELDS = {"user": "user", "group_id": "group", "month": "month", "app_id": "app_id",
           "edition": "edition", "av_room_unlimited": "av_room_unlimited", "user_group_limit": "user_group_limit",
           "group_member_limit": "group_member_limit", "request_id": "request_id"}


@dataclass(frozen=True)
class Refusal:
    """A refusal as a dialog shows it: the heading, the sentence, and the English original where no words exist."""

    kind: str  # "refused" or "invalid"
    message: str
    original: str = ""  # the service's text, shown only when `message` could not be made from its structure
    item: str | None = None  # the item a monthly-rule refusal names (for the page's lock)
    reopens: str | None = None


def value(say: Say, text: str) -> str:
    """An item's value as the service spells it ("EDITION_PRO", "true", "700") in the page's words."""
    if text.startswith("EDITION_"):
        return say(text)
    if text in ("true", "false"):
        return say(text)
    return text


def refusal(say: Say, error: ImlimitsError) -> Refusal:
    kind = "refused" if isinstance(error, PlanRuleViolation) else "invalid"
    params = {name: value(say, text) for name, text in error.params.items()}
    for name in ("field", "item"):
        if name in params:
            params[name] = say(_FIELDS.get(error.params[name], error.params[name]))
    key = f"reason.{error.reason}"
    if error.reason == "MONTHLY_CHANGE_USED":
        key += ".revert" if "revert_to" in params else ""
        return Refusal(kind, say(key, **params), item=error.params.get("item"), reopens=error.params.get("again"))
    if error.reason == "WRONG_OPERATION":
        key += f".{error.params.get('use', '')}"
    if error.reason and say.has(key):
        message = say(key, **params)
        # A malformed field's rule is the service's own sentence: name the field, keep the rule beside it.
        return Refusal(kind, message, error.message if error.reason == "FIELD_INVALID" else "")
    return Refusal(kind, say("refused.generic" if kind == "refused" else "invalid.generic"), error.message)


def bill_rule(say: Say, bill: Bill) -> str:
    """The one sentence that decided all four lines of `bill`; empty from a server that does not say."""
    ended = say("why.deactivated_in_month", day=bill.deactivated_on) if bill.deactivated_on else ""
    match bill.rule:
        case BillRule.EDITION_CHANGED:
            started = (say("why.started_with", day=bill.created_on) if bill.created_on.startswith(bill.month)
                       else say("why.month_start", day=f"{bill.month}-01"))
            return say("why.EDITION_CHANGED", changed_on=bill.edition_changed_on, charged_as=started,
                       next_first=bill.issued_on) + ended
        case BillRule.HIGHEST_LEVEL:
            return say("why.HIGHEST_LEVEL", month=bill.month) + ended
        case BillRule.NOT_CREATED:
            return say("why.NOT_CREATED", day=bill.created_on)
        case BillRule.DEACTIVATED:
            return say("why.DEACTIVATED", day=bill.deactivated_on)
    return ""


def bill_line(say: Say, bill: Bill, line: BillLine) -> str:
    """A line's own detail after its bill's rule; the service's whole reason from a server that does not say."""
    if bill.rule is BillRule.UNSPECIFIED:
        return line.reason
    if bill.rule in (BillRule.NOT_CREATED, BillRule.DEACTIVATED):
        return "—"
    if line.item == "edition":
        return say("line.edition.charged" if line.charged else "line.edition.free", edition=value(say, line.level))
    if line.item == "av_room_unlimited":
        return ""  # its level (on, off) says it all
    charged_edition = next((each.level for each in bill.lines if each.item == "edition"), "")
    values = {"edition": value(say, charged_edition), "default": line.edition_default}
    if not line.charged:
        return say("line.limit.included", **values)
    return say("line.limit.above", above=int(line.level) - line.edition_default, steps=line.steps, step=line.step,
               **values)
