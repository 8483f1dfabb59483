"""The server's and the browser's JSON Schema validators agree with the official test suite and
with each other (same per-field errors and messages, in English and Chinese).

The browser side loads static/forms_engine/schema.js (an ES module importing the vendored
@cfworker/json-schema) into headless Chromium from a routed origin that serves the static folder
under the site's script policy (script-src 'self': no eval), so no server or database is needed.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from forms_engine.schema_validation import FieldError, check_schema, messages, validate

SUITE = Path(__file__).parent / "json_schema_suite" / "tests" / "draft2020-12"
KEYWORD_FILES = ["type", "required", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
                 "exclusiveMaximum", "enum", "const", "if-then-else", "dependentRequired", "allOf", "anyOf",
                 "oneOf", "not"]
FORMAT_FILES = ["date", "date-time", "email", "uri", "uuid"]
ORIGIN = "http://lowcode.test"


def _suite_cases() -> list[dict]:
    paths = [SUITE / f"{name}.json" for name in KEYWORD_FILES]
    paths += [SUITE / "optional" / "format" / f"{name}.json" for name in FORMAT_FILES]
    return [{"id": f"{path.stem}: {group['description']}: {test['description']}",
             "schema": group["schema"], "data": test["data"], "valid": test["valid"]}
            for path in paths for group in json.loads(path.read_text()) for test in group["tests"]]


SUITE_CASES = _suite_cases()


@pytest.fixture
def schema_page(page):
    """A page at ORIGIN that has loaded schema.js (window.LowcodeSchema)."""
    static = Path(settings.BASE_DIR) / "static"

    def serve(route):
        path = route.request.url.removeprefix(ORIGIN)
        if path == "/":
            route.fulfill(status=200, content_type="text/html; charset=utf-8",
                          headers={"Content-Security-Policy": "default-src 'self'; script-src 'self'"},
                          body='<!doctype html><html><head><meta charset="utf-8"><title>LowcodeSchema</title>'
                               '<script type="module" src="/static/forms_engine/schema.js"></script></head>'
                               '<body><ul id="errors"></ul></body></html>')
            return
        file = static / path.removeprefix("/static/")
        if not path.startswith("/static/") or not file.is_file():
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, body=file.read_bytes(),
                      content_type="text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file)[0])

    page.route(f"{ORIGIN}/**", serve)
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("window.LowcodeSchema !== undefined")
    return page


def browser_errors(page, cases: list[dict], templates: dict) -> list[list[dict]]:
    """LowcodeSchema.validate over each {schema, data}, in one evaluation (cases go as JSON text)."""
    return page.evaluate(
        "([cases, templates]) => JSON.parse(cases).map(c => LowcodeSchema.validate(c.schema, c.data, templates))",
        [json.dumps(cases), templates])


@pytest.mark.parametrize("case", SUITE_CASES, ids=[case["id"] for case in SUITE_CASES])
def test_server_gives_the_suite_verdict(case):
    errors = validate(case["schema"], case["data"])
    assert (errors == []) is case["valid"], errors


def test_browser_gives_the_suite_verdict_on_every_case(schema_page):
    results = browser_errors(schema_page, SUITE_CASES, messages())
    wrong = [(case["id"], errors) for case, errors in zip(SUITE_CASES, results, strict=True)
             if (errors == []) is not case["valid"]]
    assert len(results) == len(SUITE_CASES) > 500
    assert wrong == []


EXPENSE = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": 120},
        "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000, "multipleOf": 0.01},
        "spent_on": {"type": "string", "format": "date"},
        "category": {"type": "string", "enum": ["travel", "meals", "equipment", "other"]},
        "receipt": {"type": "array", "items": {"type": "string", "format": "uuid"}, "maxItems": 1},
        "notes": {"type": "string"},
    },
    "required": ["title", "amount"],
}
CONTACT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "website": {"type": "string", "format": "uri"},
        "phone": {"type": "string", "pattern": "^\\+?[0-9 ]{6,20}$"},
        "met_at": {"type": "string", "format": "date-time"},
    },
    "required": ["name", "email"],
}
LEAVE = {
    "type": "object",
    "properties": {
        "kind": {"enum": ["annual", "sick", "unpaid"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 30},
        "certificate": {"type": "string"},
        "reason": {"type": "string"},
        "accepted": {"const": True},
    },
    "required": ["kind", "days", "accepted"],
    "if": {"properties": {"kind": {"const": "sick"}}},
    "then": {"required": ["certificate"]},
    "else": {"properties": {"days": {"maximum": 20}}},
    "dependentRequired": {"reason": ["kind"]},
}
SURVEY = {
    "type": "object",
    "properties": {
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "contact": {"anyOf": [{"type": "string", "format": "email"}, {"type": "string", "format": "uri"}]},
        "choice": {"oneOf": [{"type": "integer", "multipleOf": 2}, {"type": "integer", "multipleOf": 3}]},
        "nickname": {"type": "string", "not": {"enum": ["admin", "root"]}},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "uniqueItems": True},
        "score": {"type": ["number", "null"], "exclusiveMaximum": 100},
    },
    "allOf": [{"required": ["rating"]}, {"properties": {"rating": {"maximum": 4}}}],
}
# Form-like schemas and data: each gives several errors (or none) on named fields.
FORM_CASES = [
    {"schema": EXPENSE, "data": {}},
    {"schema": EXPENSE, "data": {"title": "ab", "amount": 0, "spent_on": "2026-02-30", "category": "fun",
                                 "receipt": ["nope", "0b9e6c1e-59a8-4a5c-9d0e-8e5f2a6c1d3b"], "notes": 5}},
    {"schema": EXPENSE, "data": {"title": "Taxi", "amount": 12.35, "spent_on": "2026-02-28", "category": "travel",
                                 "receipt": ["0b9e6c1e-59a8-4a5c-9d0e-8e5f2a6c1d3b"]}},
    {"schema": EXPENSE, "data": {"title": "x" * 121, "amount": 10000.001, "spent_on": "28/02/2026"}},
    {"schema": CONTACT, "data": {"name": "", "email": "clara.lefèvre@example.com", "website": "example.com",
                                 "phone": "+33 ١٢٣٤٥٦٧", "met_at": "2026-01-02 10:00"}},
    {"schema": CONTACT, "data": {"name": "Clara", "email": "clara@", "website": "https://example.com/a?b#c",
                                 "phone": "+33 1 23 45 67", "met_at": "2026-01-02T10:00:00+01:00"}},
    {"schema": LEAVE, "data": {"kind": "sick", "days": 3.5, "reason": "flu"}},
    {"schema": LEAVE, "data": {"kind": "annual", "days": 25, "accepted": False}},
    {"schema": LEAVE, "data": {"reason": "x", "days": "3", "accepted": True}},
    {"schema": SURVEY, "data": {"contact": "not an address", "choice": 6, "nickname": "root",
                                "tags": ["a", "a", "toolong"], "score": 100}},
    {"schema": SURVEY, "data": {"rating": 5, "contact": "a@b.example", "choice": 7, "score": None}},
    {"schema": SURVEY, "data": {"rating": 0.5, "choice": 9, "nickname": "ann", "tags": [], "score": "high"}},
]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_server_and_browser_give_the_same_field_errors_and_messages(schema_page, output_dir, language):
    with translation.override(language):
        templates = messages()
        server = [[error.as_dict() for error in validate(case["schema"], case["data"])] for case in FORM_CASES]
    browser = browser_errors(schema_page, FORM_CASES, templates)

    assert browser == server
    assert sum(map(len, server)) > 30 and [] in server
    assert all(error["field"] in case["schema"]["properties"] or error["field"] == ""
               for case, errors in zip(FORM_CASES, server, strict=True) for error in errors)
    with translation.override(language):
        required = translation.gettext("This field is required.")
        minimum = translation.gettext("Ensure this value is greater than or equal to %(limit_value)s.")
    assert {"field": "title", "code": "required", "message": required} in server[0]
    assert {"field": "rating", "code": "minimum", "message": minimum % {"limit_value": 1}} in server[11]
    if language == "zh-hans":
        assert required != "This field is required." and "1。" in minimum % {"limit_value": 1}

    schema_page.evaluate("""errors => { const list = document.getElementById("errors");
        for (const e of errors) { const item = document.createElement("li");
          item.textContent = `${e.field || "(form)"} · ${e.code} · ${e.message}`; list.append(item); } }""",
                         [error for errors in browser for error in errors])
    schema_page.screenshot(path=output_dir / f"errors-{language}-1280.png", full_page=True)
    schema_page.set_viewport_size({"width": 390, "height": 844})
    schema_page.screenshot(path=output_dir / f"errors-{language}-390.png")


def test_errors_land_on_the_field_they_concern():
    with translation.override("en"):
        errors = validate(LEAVE, {"kind": "annual", "days": 21, "reason": "x", "accepted": True,
                                  "extra": {"nested": 1}})
        assert errors == [FieldError("days", "maximum", "Ensure this value is less than or equal to 20.")]
        # A missing property's error is on that property, whether `required` or `dependentRequired`
        # names it, at the top or under then/allOf.
        assert [(e.field, e.code) for e in validate(LEAVE, {"kind": "sick", "days": 1, "accepted": True})] == [
            ("certificate", "required")]
        assert [(e.field, e.code) for e in validate(LEAVE, {"reason": "x", "days": 1, "accepted": True})] == [
            ("kind", "dependentRequired"), ("certificate", "required")]
        # A value that is not an object fails as a whole: field "".
        assert validate(EXPENSE, []) == [FieldError("", "type", "Enter a group of values.")]
        nested = {"type": "object", "properties": {"address": {"type": "object", "required": ["street"]}}}
        assert validate(nested, {"address": {}}) == [FieldError("address", "required", "This field is required.")]


FORMAT_VALUES = {
    "email": {"clara.lefèvre@example.com": True, "李雷@例子.中国": True, "o'brien+tag@mail.example.org": True,
              "a@b": True, "clara lefèvre@example.com": False, "clara@-example.com": False,
              "clara@example-.com": False, "@example.com": False, "clara@": False, "clara@exa mple.com": False},
    "date": {"2024-02-29": True, "2023-02-29": False, "0000-01-01": True, "2026-1-02": False,
             "2026-01-02\n": False, "２０２６-01-02": False},
    "date-time": {"2026-01-02T10:00:00Z": True, "2026-01-02 10:00:00+01:00": True, "2026-01-02T10:00:00": False,
                  "2026-01-02T24:00:00Z": False, "2016-12-31T23:59:60Z": True, "2026-01-02T10:00:00Z\n": False},
    "uri": {"https://example.com": True, "urn:isbn:0451450523": True, "https://exa mple.com": False,
            "https://例子.中国/": False, "example.com": False, "http://[::1]:8000/": True},
    "uuid": {"0b9e6c1e-59a8-4a5c-9d0e-8e5f2a6c1d3b": True, "0b9e6c1e59a84a5c9d0e8e5f2a6c1d3b": False,
             "{0b9e6c1e-59a8-4a5c-9d0e-8e5f2a6c1d3b}": False},
}


def test_formats_and_patterns_get_the_same_verdict_on_both_sides(schema_page):
    cases = [{"schema": {"format": name}, "data": value, "valid": valid}
             for name, values in FORMAT_VALUES.items() for value, valid in values.items()]
    # Patterns are ECMAScript-like on both sides: \d is an ASCII digit, not a Bengali or Arabic one.
    cases += [{"schema": {"pattern": "^\\d+$"}, "data": value, "valid": valid}
              for value, valid in {"123": True, "১২৩": False, "١٢٣": False}.items()]
    # multipleOf is exact on both sides.
    cases += [{"schema": {"multipleOf": 0.1}, "data": 0.3, "valid": True},
              {"schema": {"multipleOf": 0.01}, "data": 12.35, "valid": True},
              {"schema": {"multipleOf": 0.1}, "data": 0.35, "valid": False}]
    server = [validate(case["schema"], case["data"]) == [] for case in cases]
    browser = [errors == [] for errors in browser_errors(schema_page, cases, messages())]
    expected = [case["valid"] for case in cases]
    assert server == expected
    assert browser == expected


def test_check_schema_accepts_a_form_schema():
    assert check_schema(EXPENSE) == []
    assert check_schema(LEAVE) == []
    assert check_schema(SURVEY) == []


def test_check_schema_refuses_what_the_browser_cannot_check_naming_the_path():
    schema = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/a"},
            "b": {"type": "string", "format": "ipv4"},
            "c": {"type": "string", "pattern": "(?P<year>[0-9]{4})"},
            "d": {"type": "array", "items": {"type": "string", "pattern": "^a\\Z"}},
            "e": {"anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": False}]},
        },
        "$defs": {"a": {"type": "string"}},
    }
    with translation.override("en"):
        errors = check_schema(schema)
    assert [(error["path"], error["code"]) for error in errors] == [
        ("properties/a/$ref", "unsupported_keyword"),
        ("properties/b/format", "unsupported_format"),
        ("properties/c/pattern", "unsupported_pattern"),
        ("properties/d/items/pattern", "unsupported_pattern"),
        ("properties/e/anyOf/1/additionalProperties", "unsupported_keyword"),
        ("$defs", "unsupported_keyword"),
    ]
    assert "date, date-time, email, uri, uuid" in errors[1]["message"]


@pytest.mark.parametrize(("pattern", "portable"), [
    ("^\\+?[0-9 ]{6,20}$", True), ("^\\(?[0-9]{3}\\)?$", True), ("^[\\w.\\-]+$", True), ("(?:ab)+(?=c)(?<!d)", True),
    ("^a\\_b$", False), ("^a\\-b$", False), ("(?P<year>[0-9]{4})", False), ("(?i)abc", False), ("(?#note)a", False),
    ("a\\Z", False), ("\\Aa", False), ("\\p{L}", False), ("(?<name>a)", False),
])
def test_check_schema_accepts_only_patterns_both_sides_read_alike(schema_page, pattern, portable):
    errors = check_schema({"type": "string", "pattern": pattern})
    assert (errors == []) is portable, errors
    compiles = schema_page.evaluate("p => { try { new RegExp(p, 'u'); return true } catch { return false } }", pattern)
    assert compiles or not portable


def test_check_schema_refuses_an_invalid_schema_naming_the_path():
    errors = check_schema({"type": "object", "properties": {"a": {"type": "text"}}})
    assert [(error["path"], error["code"]) for error in errors] == [("properties/a/type", "invalid_schema")]
    assert check_schema({"properties": {"a": {"pattern": "("}}})[0]["code"] in {"invalid_schema", "unsupported_pattern"}
