"""The shared expression cases (issue 13): Python and the browser give the same results.

tests/lowcode/expression_cases.json holds, per case, the source, the record and user values
(tagged JSON, see serialize.py), the moment `now()` reads, optionally the time zone and
`strict`, and the result Python gives: a tagged value or `{"error": <code>}`. Python's
results were generated once and read one by one; the same file then runs in pytest and in
headless Chromium through static/lowcode/expressions.js.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from lowcode.expressions import ExpressionError, compile_expression
from lowcode.expressions.functions import BUILTIN_FUNCTIONS
from lowcode.expressions.parser import (
    ARITHMETIC_OPERATORS,
    BOOLEAN_OPERATORS,
    COMPARISON_OPERATORS,
    BinaryOp,
    Call,
    UnaryOp,
    walk,
)
from lowcode.expressions.serialize import browser_options, from_tagged, to_tagged

CASES = json.loads((Path(__file__).parent / "expression_cases.json").read_text())
STATIC = Path(settings.BASE_DIR) / "static" / "lowcode"


def case_id(case: dict) -> str:
    return " ".join(filter(None, [case["expression"], case.get("time_zone"), "strict" if case.get("strict") else ""]))


def python_result(case: dict):
    """The case's result in Python, as tagged JSON or {"error": code}."""
    try:
        expression = compile_expression(case["expression"])
        context = {
            "record": {key: from_tagged(value) for key, value in case["record"].items()},
            "user": {key: from_tagged(value) for key, value in case["user"].items()},
            "now": datetime.datetime.fromisoformat(case["now"]),
        }
        with timezone.override(case.get("time_zone", "UTC")):
            return to_tagged(expression.evaluate(context, strict=case.get("strict", False)))
    except ExpressionError as error:
        return {"error": error.code}


def parsed_cases() -> list[tuple[dict, object]]:
    """The cases that parse, with their trees (syntax errors never reach the browser)."""
    parsed = []
    for case in CASES:
        try:
            parsed.append((case, compile_expression(case["expression"])))
        except ExpressionError:
            continue
    return parsed


def test_the_cases_are_many_and_distinct():
    assert len(CASES) >= 250
    assert len({case_id(case) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_case_in_python(case):
    assert python_result(case) == case["result"]


def test_the_cases_call_every_builtin_function_and_use_every_operator():
    nodes = [node for _case, expression in parsed_cases() for node in walk(expression.tree)]
    called = {node.function for node in nodes if isinstance(node, Call)}
    assert {function.type for function in BUILTIN_FUNCTIONS} - called == set()
    operators = {node.operator for node in nodes if isinstance(node, (BinaryOp, UnaryOp))}
    assert (ARITHMETIC_OPERATORS | COMPARISON_OPERATORS | BOOLEAN_OPERATORS | {"not"}) - operators == set()
    # Value failures, type errors and syntax errors are among the results.
    errors = {case["result"]["error"] for case in CASES if isinstance(case["result"], dict) and "error" in case["result"]}
    assert errors == {"expression_evaluation", "expression_value", "expression_syntax"}


def test_now_in_the_context_fixes_today_and_now():
    now = datetime.datetime(2026, 1, 1, 23, 30, tzinfo=datetime.UTC)
    expression = compile_expression("concat(today(), ' ', year(now()))")
    with timezone.override("Asia/Tokyo"):
        assert expression.evaluate({"now": now}) == "2026-01-02 2026"
    assert compile_expression("now()").evaluate({"now": now}) == now


def test_a_naive_now_is_refused():
    with pytest.raises(ExpressionError) as raised:
        compile_expression("today()").evaluate({"now": datetime.datetime(2026, 1, 1)})
    assert raised.value.code == "expression_evaluation"


def test_to_json_writes_numbers_exactly_and_positions():
    assert compile_expression("-1.50 * record.qty").to_json() == {
        "t": "binary", "op": "*", "p": 6,
        "left": {"t": "num", "v": "-1.50", "p": 0},
        "right": {"t": "field", "name": "qty", "p": 8},
    }
    assert compile_expression("round(0.0000001, 2) in [user.x, 'a', null]").to_json()["left"]["args"][0]["v"] == "0.0000001"


def test_browser_options_give_the_servers_clock_in_its_time_zone():
    now = datetime.datetime(2026, 1, 1, 23, 30, tzinfo=datetime.UTC)
    with timezone.override("Asia/Tokyo"):
        assert browser_options(now) == {"now": "2026-01-02T08:30:00+09:00", "today": "2026-01-02",
                                        "timeZone": "Asia/Tokyo"}


def test_tagged_values_round_trip_and_refuse_other_objects():
    values = [Decimal("1.50"), 3, datetime.date(2026, 1, 2), datetime.time(7, 8),
              datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC), ["a", None, True]]
    assert from_tagged(to_tagged(values)) == values
    assert from_tagged({"other": "1"}) == {"other": "1"}
    with pytest.raises(TypeError):
        to_tagged(object())


EVALUATE_ALL = """([cases, builtins]) => {
  const L = window.LowcodeExpressions;
  const tagged = (values) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, L.values.fromJSON(v)]));
  const missing = builtins.filter((name) => typeof (L.functions[name] || {}).evaluate !== "function");
  const results = cases.map(({tree, record, user, now, time_zone, strict}) => {
    try {
      return L.values.toJSON(L.evaluate(tree, {record: tagged(record), user: tagged(user)},
                                        {now, timeZone: time_zone || "UTC", strict: Boolean(strict)}));
    } catch (error) {
      return error.code ? {error: error.code} : {crash: String(error)};
    }
  });
  return {missing, results};
}"""


@pytest.mark.browser
def test_cases_in_chromium_give_the_python_results(page):
    parsed = parsed_cases()
    page.goto("about:blank")
    page.add_script_tag(path=STATIC / "vendor" / "decimal.js" / "decimal.js")
    page.add_script_tag(path=STATIC / "expressions.js")
    answer = page.evaluate(EVALUATE_ALL, [
        [{**case, "tree": expression.to_json()} for case, expression in parsed],
        sorted(function.type for function in BUILTIN_FUNCTIONS),
    ])
    assert answer["missing"] == []
    failures = [f"{case_id(case)}: Python {case['result']}, browser {result}"
                for (case, _expression), result in zip(parsed, answer["results"], strict=True)
                if result != case["result"]]
    assert failures == []
    assert len(parsed) >= 250


API_CHECKS = """() => {
  const L = window.LowcodeExpressions, v = L.values;
  const num = (text) => ({t: "num", v: text, p: 0});
  L.functions.double = {evaluate: (args) => v.decimal(args[0].toString()).value.times(2).toString()};
  L.functions.half = {evaluate: (args) => args[0].value.div(2).toNumber()};
  let missing;
  try {
    L.evaluate({t: "binary", op: "+", p: 4, left: num("1"), right: {t: "field", name: "gone", p: 6}}, {record: {}});
  } catch (error) {
    missing = [error.code, error.position];
  }
  return {
    plugin: L.evaluate({t: "call", fn: "double", args: [num("2.5")], p: 0}),
    cleaned: v.toJSON(L.evaluate({t: "call", fn: "half", args: [num("3")], p: 0})),
    numbers: v.toJSON(L.evaluate({t: "binary", op: "*", p: 0, left: {t: "field", name: "a", p: 0},
                                  right: {t: "user", name: "b", p: 0}}, {record: {a: 0.1}, user: {b: 3}})),
    missing: missing,
    today: v.toJSON(L.evaluate({t: "call", fn: "today", args: [], p: 0}, {}, {today: "2030-05-06"})),
    clock: v.kind(L.evaluate({t: "call", fn: "now", args: [], p: 0})),
    dates: [v.date(2024, 2, 29).toString(), v.date("2026-01-02").ordinal - v.date(2026, 1, 1).ordinal,
            v.datetime("2026-01-02T03:04:05.5Z").toString(), v.time("07:08").toString()],
    condition: [L.isTrue({t: "lit", v: null, p: 0}), L.isTrue({t: "lit", v: true, p: 0})],
  };
}"""


@pytest.mark.browser
def test_browser_api_plugins_plain_numbers_errors_and_value_constructors(page):
    page.goto("about:blank")
    page.add_script_tag(path=STATIC / "vendor" / "decimal.js" / "decimal.js")
    page.add_script_tag(path=STATIC / "expressions.js")
    answer = page.evaluate(API_CHECKS)
    assert answer["plugin"] == "5"  # A plugin's text result stays text.
    assert answer["cleaned"] == {"$decimal": "1.5"}  # A plain JS number becomes an exact decimal.
    assert answer["numbers"] == {"$decimal": "0.3"}
    assert answer["missing"] == ["expression_evaluation", 6]
    assert answer["today"] == {"$date": "2030-05-06"}
    assert answer["clock"] == "datetime"
    assert answer["dates"] == ["2024-02-29", 1, "2026-01-02T03:04:05.500000+00:00", "07:08:00"]
    assert answer["condition"] == [False, True]
