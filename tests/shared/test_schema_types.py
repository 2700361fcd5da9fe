"""Text rules every API shares: no control characters anywhere, no bidirectional controls in one-line fields.

Bidirectional embeddings, overrides and isolates make a name read as something else
("\u202egnp.exe" shows as "exe.png"); C1 controls include 8-bit terminal escapes (U+009B is CSI).
"""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel, ValidationError

from auth_service.schemas import LoginRequest, SignupRequest
from board_service.schemas import PostCreate, PostUpdate
from profile_service.schemas import ProfileUpdate

BIDI_CONTROLS = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
C1_CONTROLS = ["\x80", "\x85", "\x9b", "\x9f"]
C0_CONTROLS = ["\x00", "\x1b", "\x7f"]

VALID = {
    SignupRequest: {"email": "ada@example.com", "password": "correct horse", "name": "Ada"},
    LoginRequest: {"email": "ada@example.com", "password": "correct horse"},
    ProfileUpdate: {"name": "Ada", "bio": "About me"},
    PostCreate: {"title": "A title", "content": "Some content"},
    PostUpdate: {"title": "A title", "content": "Some content"},
}
SINGLE_LINE_FIELDS = [
    (SignupRequest, "name"),
    (SignupRequest, "email"),
    (LoginRequest, "email"),
    (ProfileUpdate, "name"),
    (PostCreate, "title"),
    (PostUpdate, "title"),
]
MULTI_LINE_FIELDS = [(ProfileUpdate, "bio"), (PostCreate, "content"), (PostUpdate, "content")]


def _with(model: type[BaseModel], field: str, inserted: str) -> dict:
    body = dict(VALID[model])
    value = body[field]
    body[field] = value.replace("@", inserted + "@") if "@" in value else value[:2] + inserted + value[2:]
    return body


def _refused(model: type[BaseModel], body: dict) -> list[str]:
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return [".".join(map(str, error["loc"])) for error in exc.errors()]
    return []


@pytest.mark.parametrize(("model", "field"), SINGLE_LINE_FIELDS, ids=lambda x: getattr(x, "__name__", x))
@pytest.mark.parametrize("character", BIDI_CONTROLS + C1_CONTROLS + C0_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_single_line_fields_refuse_controls_and_bidi_controls(model, field, character):
    assert _refused(model, VALID[model]) == []
    assert _refused(model, _with(model, field, character)) == [field]


@pytest.mark.parametrize(("model", "field"), MULTI_LINE_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_multi_line_fields_refuse_c0_and_c1_but_keep_lines_and_bidi(model, field):
    for character in C1_CONTROLS + C0_CONTROLS:
        assert _refused(model, _with(model, field, character)) == [field], repr(character)
    for character in ["\n", "\t", "\r", *BIDI_CONTROLS]:  # right-to-left running text needs these
        assert _refused(model, _with(model, field, character)) == [], repr(character)


@pytest.mark.parametrize(
    ("model", "field"),
    [(m, f) for m, f in SINGLE_LINE_FIELDS + MULTI_LINE_FIELDS if f != "email"],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_the_json_schema_pattern_says_the_same(model, field):
    """Clients and fuzzers read the rule from /openapi.json; it must match what the code refuses."""
    schema = model.model_json_schema()["properties"][field]
    [pattern] = [re.compile(option["pattern"]) for option in schema.get("anyOf", [schema]) if "pattern" in option]
    for character in BIDI_CONTROLS + C1_CONTROLS + C0_CONTROLS + ["\n", "\t", "a", "é", "\u200f"]:
        body = _with(model, field, character)
        assert (pattern.fullmatch(body[field]) is not None) == (_refused(model, body) == []), repr(character)


TRIMMED_AS_WHITESPACE = ["\x0b", "\x0c", "\x1c", "\x1f", "\x85"]  # str.strip() and pydantic's trim take these


@pytest.mark.parametrize(
    ("model", "field"), SINGLE_LINE_FIELDS + MULTI_LINE_FIELDS, ids=lambda x: getattr(x, "__name__", x)
)
@pytest.mark.parametrize("character", TRIMMED_AS_WHITESPACE, ids=lambda c: f"U+{ord(c):04X}")
def test_control_characters_at_either_end_are_refused_not_trimmed(model, field, character):
    # The field's pattern refuses the value as sent; the check ran after the trim and let it pass.
    for value in (character + VALID[model][field], VALID[model][field] + character):
        assert _refused(model, {**VALID[model], field: value}) == [field], repr(value)
