"""The module's configuration (the `config:` block under `modules:` in homeserver.yaml), read and checked once.

Every problem names the key and the rule, so that Synapse refuses to start
with a message the operator can act on, instead of a module that fails at the
first room.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

OnUnavailable = Literal["deny", "allow"]

DEFAULT_HOLD_SECONDS = 30
# SPEC section 6: a hold lasts 1..3600 seconds.
MAX_HOLD_SECONDS = 3600
MAX_APP_ID = 2**64 - 1
KEYS = ("target", "app_id", "token_file", "hold_seconds", "on_unavailable", "admin_contact")


class ConfigProblem(ValueError):
    """One key of the module's configuration breaks a rule; the message names both."""

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"{key}: {rule}")
        self.key = key


@dataclass(frozen=True)
class ModuleConfig:
    target: str
    app_id: int
    token: str | None = None
    hold_seconds: int = DEFAULT_HOLD_SECONDS
    on_unavailable: OnUnavailable = "deny"
    admin_contact: str = ""


def parse(raw: object) -> ModuleConfig:
    if not isinstance(raw, Mapping):
        raise ConfigProblem("config", f"must be a mapping of {', '.join(KEYS)}, not {type(raw).__name__}")
    unknown = sorted(str(key) for key in raw if key not in KEYS)
    if unknown:
        raise ConfigProblem(unknown[0], f"unknown key; the keys are {', '.join(KEYS)}")
    return ModuleConfig(
        target=_target(raw.get("target")),
        app_id=_app_id(raw.get("app_id")),
        token=_token(raw.get("token_file")),
        hold_seconds=_hold_seconds(raw.get("hold_seconds", DEFAULT_HOLD_SECONDS)),
        on_unavailable=_on_unavailable(raw.get("on_unavailable", "deny")),
        admin_contact=_admin_contact(raw.get("admin_contact", "")),
    )


def _target(value: object) -> str:
    if value is None:
        raise ConfigProblem("target", "required: the imlimits server as HOST:PORT, e.g. 127.0.0.1:50051")
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise ConfigProblem("target", f"must be HOST:PORT without spaces, e.g. 127.0.0.1:50051, not {value!r}")
    return value


def _app_id(value: object) -> int:
    if value is None:
        raise ConfigProblem("app_id", "required: the SDKAppID of the app this homeserver is, e.g. 1400000001")
    # YAML reads 1400000001 as an int; true and false are ints to Python, and never an app.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_APP_ID:
        raise ConfigProblem("app_id", f"must be a whole number from 1 to {MAX_APP_ID}, not {value!r}")
    return value


def _token(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigProblem("token_file", f"must be the path of a file holding the check token, not {value!r}")
    try:
        token = Path(value).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigProblem("token_file", f"cannot read {value}: {error}") from None
    if not token or any(c.isspace() for c in token):
        raise ConfigProblem("token_file", f"{value} must hold one token on one line")
    return token


def _hold_seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOLD_SECONDS:
        raise ConfigProblem(
            "hold_seconds",
            f"must be a whole number of seconds from 1 to {MAX_HOLD_SECONDS}, not {value!r}: every check the "
            "module makes is held until Synapse has persisted the event, so that what Synapse refuses afterwards "
            "is released")
    return value


def _on_unavailable(value: object) -> OnUnavailable:
    if value == "deny":
        return "deny"
    if value == "allow":
        return "allow"
    raise ConfigProblem("on_unavailable", f"must be deny or allow, not {value!r}")


def _admin_contact(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigProblem("admin_contact", f"must be a URI such as mailto:ops@example.com, not {value!r}")
    return value
