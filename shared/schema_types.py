"""Field types every API shares: its timestamp format and text without control characters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema


def _rfc3339_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# RFC 3339 in UTC with a Z, to the second, as docs/API.md writes them: 2026-11-27T08:00:00Z
Timestamp = Annotated[datetime, PlainSerializer(_rfc3339_utc, return_type=str)]


@dataclass(frozen=True)
class _NoControlCharacters:
    """Refuse control characters, and say so in the JSON schema so clients (and fuzzers) know."""

    allowed: str = ""  # control characters that are fine, e.g. "\t\n\r"

    def _forbidden(self, character: str) -> bool:
        return (character < "\x20" or character == "\x7f") and character not in self.allowed

    def _check(self, value: str) -> str:
        if any(self._forbidden(c) for c in value):
            raise PydanticCustomError("control_character", "Control characters are not allowed")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        excluded = "".join(f"\\x{ord(c):02x}" for c in map(chr, [*range(0x20), 0x7f]) if self._forbidden(c))
        json_schema["pattern"] = f"^[^{excluded}]*$"
        return json_schema


# Control characters are refused at the edge, NUL above all: PostgreSQL text cannot store it, and
# a field that reaches a log line or another user's screen should not carry terminal escapes.
SINGLE_LINE = _NoControlCharacters()
MULTI_LINE = _NoControlCharacters(allowed="\t\n\r")
