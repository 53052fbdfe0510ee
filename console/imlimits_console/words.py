"""The console's words, in Chinese (the IM console's own: 升级, 变配, 停用, 业务版本) and English.

The language comes from the `lang` cookie the switch sets, else from
Accept-Language. The service's answers are worded here from their structure
(wording.py): a bill's rule and values, a refusal's reason and values. Only
what carries no structure is shown as the service wrote it, in English.
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")

_WORDS: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "console": ("即时通信 IM 套餐控制台", "IM plan console"),
    "apps": ("应用列表", "Apps"),
    "app": ("应用", "App"),
    "basic": ("基础配置", "Basic configuration"),
    "usage": ("用量", "Usage"),
    "history": ("变更记录与账单", "History and bills"),
    "edition": ("业务版本", "Edition"),
    "status": ("状态", "Status"),
    "EDITION_TRIAL": ("体验版", "Trial"),
    "EDITION_PRO": ("专业版", "Pro"),
    "EDITION_ULTIMATE": ("旗舰版", "Ultimate"),
    "EDITION_TRIAL.full": ("体验版（IM）", "Trial (IM)"),
    "EDITION_PRO.full": ("专业版-后付费", "Pro, postpaid"),
    "EDITION_ULTIMATE.full": ("旗舰版-后付费", "Ultimate, postpaid"),
    "ACTIVE": ("使用中", "Active"),
    "DEACTIVATED": ("已停用", "Deactivated"),
    "av_room_unlimited": ("音视频聊天室创建数量无上限", "Unlimited audio/video chat rooms"),
    "user_group_limit": ("扩展单人可加入群组数上限", "Groups one user may create and join"),
    "group_member_limit": ("扩展单个群群人数上限", "Members per group"),
    "status.item": ("应用状态", "App status"),
    "on": ("开通", "On"),
    "off": ("不开通", "Off"),
    "true": ("开通", "On"),
    "false": ("不开通", "Off"),
    "not_applicable": ("不涉及（仅专业版）", "Not applicable (Pro only)"),
    "upgrade": ("升级", "Upgrade"),
    "change": ("变配", "Change configuration"),
    "deactivate": ("停用", "Deactivate"),
    "upgrade.title": ("升级提醒", "Upgrade reminder"),
    "change.title": ("变配提醒", "Change reminder"),
    "deactivate.title": ("停用提醒", "Deactivation reminder"),
    "preview": ("预览费用", "Preview the cost"),
    "confirm": ("确认", "Confirm"),
    "cancel": ("取消", "Cancel"),
    "back": ("返回修改", "Back to the form"),
    "av_rooms": ("音视频聊天室", "Audio/video chat rooms"),
    "groups": ("群组", "Groups"),
    "held": ("其中保留中、待确认（已计入上方用量）：{holds} 个保留，{groups} 个群组（含 {rooms} 个音视频聊天室），"
             "{memberships} 个群成员关系",
             "Of these, held and not yet confirmed (counted above): {holds} holds, {groups} groups "
             "({rooms} audio/video chat rooms), {memberships} memberships"),
    "held_members": ("其中 {count} 个保留中、待确认", "{count} of them held, not yet confirmed"),
    "unlimited": ("无上限", "unlimited"),
    "no_limit": ("不限", "no limit"),
    "limits": ("当前生效的限制", "Limits enforced now"),
    "community": ("社群（Community）", "Community groups"),
    "allowed": ("允许", "allowed"),
    "not_allowed": ("不允许", "not allowed"),
    "per_user": ("每个用户", "per user"),
    "per_group": ("每个群（工作群/公开群/会议群）", "per Work/Public/Meeting group"),
    "locked": ("本月已变配", "Changed this month"),
    "opens_on": ("{day} 起可再次变配", "may change again from {day}"),
    "changeable": ("本月可变配", "May change this month"),
    "create_app": ("创建应用", "Create app"),
    "app_id": ("SDKAppID", "SDKAppID"),
    "create": ("创建", "Create"),
    "no_apps": ("还没有应用。", "No apps yet."),
    "next_page": ("下一页", "Next page"),
    "first_page": ("第一页", "First page"),
    "read_only": ("该应用已停用，不可恢复：本页只读。", "This app is deactivated, which cannot be undone: read only."),
    "current": ("当前", "Now"),
    "after": ("变更后", "After"),
    "item": ("项目", "Item"),
    "newly_locked": ("本次变更后本月锁定的项目", "Items this change locks for the month"),
    "none": ("无", "none"),
    "bill_this": ("本月账单（{month}，{issued} 出账）", "This month's bill ({month}, issued {issued})"),
    "bill_next": ("次月账单（{month}，{issued} 出账，如无其他变更）",
                  "Next month's bill ({month}, issued {issued}, if nothing else changes)"),
    "total": ("合计", "Total"),
    "level": ("计费档位", "Level"),
    "charged": ("计费", "Charged"),
    "amount": ("金额", "Amount"),
    "reason": ("原因", "Reason"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "rule.once": (
        "一个自然月内，业务版本仅允许进行一次变配操作，每个增值功能包也仅允许进行一次变配操作；改回月初的值随时可以。",
        "In one calendar month the edition may be changed once, and each add-on once; going back to the "
        "month's starting value is always allowed."),
    "rule.billing": (
        "调整业务版本当月，变配立即生效但当月不收取调整后的费用，次月1号开始收取；其他月份立即生效并按当月最高档位收取。",
        "In a month whose edition changed, changes take effect at once and are charged from the 1st of the next "
        "month; in any other month they take effect at once and the month is charged at the highest level held."),
    "rule.upgrade": ("仅体验版可升级。升级后立即生效，采用月结后付费方式计费。",
                     "Only a Trial app can be upgraded. It takes effect at once and is billed monthly, postpaid."),
    "rule.deactivate": ("停用后，该应用下的服务会立刻停用且不可恢复，请谨慎操作。",
                        "Deactivation stops the app's service at once and cannot be undone."),
    "type_app_id": ("请输入应用的 SDKAppID {app} 以确认停用", "Type the app's SDKAppID {app} to confirm"),
    "typed_wrong": ("输入的 SDKAppID 与该应用不符，未作任何变更。",
                    "The typed SDKAppID does not match this app: nothing changed."),
    "refused": ("变更被拒绝", "Refused"),
    "invalid": ("输入有误", "Invalid input"),
    "bounds": ("取值范围", "Allowed values"),
    "bounds.value": ("{low}–{high}（{edition}）", "{low}–{high} ({edition})"),
    "keep_default": ("留空：使用该版本默认值", "Leave empty for the edition's default"),
    "whole_number": ("{item} 须为整数", "{item} must be a whole number"),
    "choose_edition": ("请选择升级后的业务版本", "Choose the edition to upgrade to"),
    "done.created": ("应用已创建。", "App created."),
    "done.upgraded": ("升级成功。", "Upgraded."),
    "done.changed": ("变配成功。", "Configuration changed."),
    "done.deactivated": ("应用已停用。", "App deactivated."),
    "unreachable": ("无法连接 imlimits 服务（{target}）：显示的内容可能不完整，请稍后刷新。",
                    "Cannot reach the imlimits service at {target}: this page may be incomplete; refresh later."),
    "server_refused_token": ("imlimits 服务拒绝了控制台的令牌：{message}",
                             "The imlimits service refused the console's token: {message}"),
    "not_found": ("未找到该应用。", "App not found."),
    "error": ("出错了", "Something went wrong"),
    "error.text": ("请求未能完成，未作任何变更。", "The request could not be completed; nothing changed."),
    "lookup": ("查询", "Look up"),
    "lookup_user": ("用户已加入的群组数", "Groups of a user"),
    "lookup_group": ("群成员数", "Members of a group"),
    "user": ("用户 ID", "User ID"),
    "group": ("群组 ID", "Group ID"),
    "user_groups_of": ("用户 {user} 已创建及加入的群组", "Groups user {user} created and joined"),
    "group_members_of": ("群 {group} 的成员", "Members of group {group}"),
    "used_of": ("{used} / {limit}", "{used} of {limit}"),
    "changes": ("变更记录", "Plan changes"),
    "at": ("时间", "When"),
    "operation": ("操作", "Operation"),
    "from_to": ("变更", "Change"),
    "implicit": ("随版本自动调整", "follows the edition"),
    "no_changes": ("暂无变更记录。", "No changes yet."),
    "bills": ("账单", "Bills"),
    "month": ("月份", "Month"),
    "show": ("查看", "Show"),
    "no_charges": ("这些月份均无费用", "Nothing charged in these months"),
    "ugl.short": ("单人群组上限", "groups per user"),
    "gml.short": ("单群人数上限", "members per group"),
    "last_12": ("各月账单合计（近 12 个月，自应用创建起）",
                "Monthly totals (the last 12 months, since the app was created)"),
    "bill_of": ("{month} 账单，{issued} 出账", "Bill of {month}, issued {issued}"),
    "month_unavailable": ("该月份尚未开始。", "That month has not begun."),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "token": ("管理令牌", "Admin token"),
    "sign_in.text": ("请使用 imlimits 管理令牌（admin token）登录。"
                     "令牌只保存在控制台服务器内存中，不会显示或写入浏览器。",
                     "Sign in with an imlimits admin token. The console keeps it in its own memory only; it is "
                     "never shown or stored in the browser."),
    "sign_in.refused": ("令牌无效，或不是管理令牌。", "The token is not valid, or is not an admin token."),
    "csrf": ("表单已过期或来源不明，请刷新页面后重试。未作任何变更。",
             "The form expired or did not come from this console; reload the page and retry. Nothing changed."),
    "language": ("English", "中文"),
    "CreateApp": ("创建", "Create"),
    "Upgrade": ("升级", "Upgrade"),
    "ChangePlan": ("变配", "Change"),
    "Deactivate": ("停用", "Deactivate"),
    "APP_STATUS_ACTIVE": ("使用中", "Active"),
    "APP_STATUS_DEACTIVATED": ("已停用", "Deactivated"),
    "av_used": ("音视频聊天室 {used}/{limit}", "AV rooms {used}/{limit}"),
    "groups_count": ("群组 {count} 个", "groups: {count}"),
    "open": ("进入", "Open"),
    "no_change_deactivated": ("不可变配：已停用", "No: deactivated"),
    "av_hint.pro_only": ("仅专业版可开通；旗舰版本身不限音视频聊天室数量",
                         "Pro only; Ultimate has no limit on audio/video chat rooms anyway"),
    "av_hint.not_applicable_now": ("当前为旗舰版：不涉及（仅专业版可开通）",
                                   "Not applicable on Ultimate (Pro only)"),
    "group_not_found": ("未找到群组 {group}。", "Group {group} not found."),
    "origin": ("请求不是来自本控制台的页面（Origin 不符），未作任何变更。",
               "The request did not come from a page of this console (its Origin differs); nothing changed."),
    "app_id.invalid": ("SDKAppID 须为大于 0 的整数", "The SDKAppID must be a whole number greater than 0"),
    "app_exists": ("应用 {app} 已存在", "App {app} already exists"),
    "month.invalid": ("月份须为 YYYY-MM 格式，收到“{month}”", "A month is written YYYY-MM, got “{month}”"),
    "request_id": ("请求 ID", "Request id"),
    "zone_note": ("时间与日期均为服务时区 {zone}（变配按该时区的自然月计）",
                  "Times and days are in the service's time zone, {zone} (months of the monthly rule and of bills "
                  "are its calendar months)"),
    "at_zone": ("时间（{zone}）", "When ({zone})"),
    "rule_of": ("计费规则：{rule}", "Rule: {rule}"),
    "group_type.WORK": ("工作群", "Work group"),
    "group_type.PUBLIC": ("公开群", "Public group"),
    "group_type.MEETING": ("会议群", "Meeting group"),
    "group_type.AVCHATROOM": ("音视频聊天室", "AVChatRoom"),
    "group_type.COMMUNITY": ("社群", "Community group"),
    "group_cap.own": ("{type}，群自身上限 {cap}（max_members，低于套餐上限）",
                      "{type}, its own cap of {cap} (max_members, below the plan's limit)"),
    "group_cap.plan": ("{type}，按套餐上限", "{type}, the plan's limit"),
    "group_cap.plan_below_own": ("{type}，按套餐上限（群自身上限 {cap} 更高）",
                                 "{type}, the plan's limit (its own cap of {cap} is higher)"),
    "group_cap.community": ("社群上限 100000", "Community groups: at most 100000"),
    "group_cap.none": ("音视频聊天室不限人数", "AVChatRooms have no member limit"),
    # Refusals, from google.rpc.ErrorInfo's reason and values (plan.proto lists them).
    "refused.generic": ("服务拒绝了该请求，未作任何变更。", "The service refused the request; nothing changed."),
    "invalid.generic": ("输入有误，未作任何变更。", "Invalid input; nothing changed."),
    "reason.FIELD_INVALID": ("{field}格式不正确", "{field} is not valid"),
    "reason.UPGRADE_TARGET": ("升级的目标版本须为专业版或旗舰版", "An upgrade goes to Pro or Ultimate"),
    "reason.ADD_ON_ON_TRIAL": ("体验版不能设置增值功能（{field}）",
                               "Add-ons ({field}) are set on Pro or Ultimate only"),
    "reason.AV_ADD_ON_PRO_ONLY": ("{field}仅适用于专业版，不适用于{edition}",
                                  "{field} applies to Pro only, not to {edition}"),
    "reason.LIMIT_OUT_OF_BOUNDS": ("{field}须在 {low}–{high} 之间（{edition}默认值为 {low}），输入为 {value}",
                                   "{field} must be from {low} (the {edition} default) to {high}, got {value}"),
    "reason.APP_DEACTIVATED": ("应用 {app_id} 已停用，不可恢复", "App {app_id} is deactivated, which cannot be undone"),
    "reason.WRONG_OPERATION.ChangePlan": ("该应用为{edition}，请使用变配",
                                          "The app is on {edition}: use Change configuration"),
    "reason.WRONG_OPERATION.Upgrade": ("体验版应用请使用升级", "A Trial app changes by Upgrade"),
    "reason.TIME_WENT_BACK": ("变更时间 {at} 早于该应用上次变更 {last_at}，变更不可回溯",
                              "{at} is before the app's last change at {last_at}: changes cannot go back in time"),
    "reason.MONTHLY_CHANGE_USED": ("{item}：本月已变配，{again} 起可再次变配",
                                   "{item}: already changed this month; it may change again from {again}"),
    "reason.MONTHLY_CHANGE_USED.revert": ("{item}：本月已变配，{again} 起可再次变配（可随时改回月初的{revert_to}）",
                                          "{item}: already changed this month; it may change again from {again} "
                                          "(going back to {revert_to}, the month's starting value, is allowed)"),
    "reason.MONTH_IN_FUTURE": ("{month} 尚未开始（当前为 {current}）", "{month} has not begun (it is {current})"),
    # Bills: the rule that decided the month (Bill.rule), then each line's own detail.
    "why.EDITION_CHANGED": ("调整业务版本当月（{changed_on} 调整）：按{charged_as}计费，"
                            "变更的项目自 {next_first} 起计费",
                            "Month of an edition change (changed on {changed_on}): charged at {charged_as}; what "
                            "changed is charged from {next_first}"),
    "why.month_start": ("月初（{day}）的配置", "the configuration of {day}"),
    "why.started_with": ("应用创建时（{day}）的配置", "the configuration the app started with on {day}"),
    "why.HIGHEST_LEVEL": ("未调整业务版本的月份：各项按 {month} 内的最高档位计费",
                          "Month without an edition change: each item at the highest level it held in {month}"),
    "why.NOT_CREATED": ("应用创建于 {day}，该月不计费",
                        "The app was created on {day}, after this month: nothing is charged"),
    "why.DEACTIVATED": ("应用已于 {day} 停用，此后各月不计费",
                        "The app was deactivated on {day}: nothing is charged after that month"),
    "why.deactivated_in_month": ("；{day} 停用，此后不再计费", "; deactivated on {day}, nothing is charged after it"),
    "line.edition.charged": ("{edition}按月收费", "{edition} is charged"),
    "line.edition.free": ("{edition}免费", "{edition} is free"),
    "line.limit.included": ("未超出{edition}默认值 {default}", "not above the {edition} default {default}"),
    "line.limit.above": ("超出{edition}默认值 {default} 共 {above}：{steps} 档，每档 {step}",
                         "{above} above the {edition} default {default}: {steps} step(s) of {step}"),
    "this_month": ("本月", "This month"),
    "next_month": ("次月", "Next month"),
    "bills_compare": ("费用预览", "Cost preview"),
}


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The switch's choice wins; else the first of zh/en by Accept-Language quality; else Chinese."""
    if cookie in LANGUAGES:
        return cookie
    best, best_quality = "zh", -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in LANGUAGES:
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        # Earlier entries win ties, as browsers list preferences in order.
        if quality - position * 1e-6 > best_quality:
            best, best_quality = language, quality - position * 1e-6
    return best


class Translator:
    """The words of one language: `say(key, **values)`; an unknown key is shown as itself."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._index = LANGUAGES.index(language)

    def __call__(self, key: str, **values: object) -> str:
        words = _WORDS.get(key)
        text = words[self._index] if words else key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in _WORDS


def translator(language: str) -> Translator:
    return Translator(language)
