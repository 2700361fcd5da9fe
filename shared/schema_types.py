"""Field types every API shares: its timestamp format and text without control characters."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer
from pydantic_core import PydanticCustomError


def _rfc3339_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# RFC 3339 in UTC with a Z, to the second, as API.md writes them: 2026-11-27T08:00:00Z
Timestamp = Annotated[datetime, PlainSerializer(_rfc3339_utc, return_type=str)]


def _refuse(pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.search(value):
            raise PydanticCustomError("control_character", "Control characters are not allowed")
        return value

    return AfterValidator(check)


# Control characters are refused at the edge, NUL above all: PostgreSQL text cannot store it, and
# a field that reaches a log line or another user's screen should not carry terminal escapes.
SINGLE_LINE = _refuse(re.compile(r"[\x00-\x1f\x7f]"))
MULTI_LINE = _refuse(re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"))  # keeps \t, \n and \r
