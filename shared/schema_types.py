"""Field types every API shares: its timestamp format and text without control characters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema


def _rfc3339_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# RFC 3339 in UTC with a Z, to the second, as docs/API.md writes them: 2026-11-27T08:00:00Z
Timestamp = Annotated[datetime, PlainSerializer(_rfc3339_utc, return_type=str)]


# Bidirectional embeddings, overrides and isolates (U+202A-202E, U+2066-2069): in a name or a title
# they make text read differently from what it is ("Trojan Source", spoofed names).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_control(character: str) -> bool:
    """C0, DEL and C1 (U+0080-009F, where the 8-bit terminal escapes such as CSI live)."""
    return character < "\x20" or "\x7f" <= character <= "\x9f"


def _character_class(code_points: list[int]) -> str:
    """Write sorted code points as regex ranges: [0, 1, 2, 5] -> \\u0000-\\u0002\\u0005."""
    runs: list[list[int]] = []
    for point in code_points:
        if runs and point == runs[-1][1] + 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    return "".join(f"\\u{a:04x}" + (f"-\\u{b:04x}" if b > a else "") for a, b in runs)


@dataclass(frozen=True)
class _NoControlCharacters:
    """Refuse control characters, and say so in the JSON schema so clients (and fuzzers) know."""

    allowed: str = ""  # control characters that are fine, e.g. "\t\n\r"
    bidi_controls: bool = True  # whether bidirectional controls are allowed (fine in running text)

    def _forbidden(self, character: str) -> bool:
        if character in _BIDI_CONTROLS:
            return not self.bidi_controls
        return _is_control(character) and character not in self.allowed

    def _check(self, value: str) -> str:
        for character in filter(self._forbidden, value):
            if character in _BIDI_CONTROLS:
                raise PydanticCustomError("bidi_control", "Bidirectional controls are not allowed here")
            raise PydanticCustomError("control_character", "Control characters are not allowed")
        return value

    def _check_as_sent(self, value: Any) -> Any:
        # Before the field's own schema: its trim (pydantic's, or email-validator's) takes U+0085,
        # VT and FF (the email's also U+001C-001F) as whitespace and would drop them unseen.
        return self._check(value) if isinstance(value, str) else value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self._check_as_sent, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        candidates = [*range(0x20), *range(0x7F, 0xA0), *map(ord, sorted(_BIDI_CONTROLS))]
        json_schema["pattern"] = f"^[^{_character_class([c for c in candidates if self._forbidden(chr(c))])}]*$"
        return json_schema


# Control characters are refused at the edge, NUL above all: PostgreSQL text cannot store it, and
# a field that reaches a log line or another user's screen should not carry terminal escapes.
# Single-line fields (names, titles, emails) also refuse the bidirectional controls.
SINGLE_LINE = _NoControlCharacters(bidi_controls=False)
MULTI_LINE = _NoControlCharacters(allowed="\t\n\r")
