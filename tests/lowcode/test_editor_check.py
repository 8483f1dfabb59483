"""The expression editors' verdict (entity formulas, form conditions, workflow conditions): the
value's type in words, or the error with its code and position."""

from lowcode.expressions import editor_check, types


def test_the_editor_check_gives_the_type_or_the_error_with_its_position():
    fields = {"amount": types.number(10, 2)}
    typed = editor_check("amount * 2", fields)
    assert typed["errors"] == [] and typed["type"]
    mismatch = editor_check("amount > 'x'", fields, database=False, condition=True)
    assert mismatch["errors"][0]["code"] and mismatch["errors"][0]["message"] and "type" not in mismatch
    unfinished = editor_check("amount >", fields)["errors"][0]
    assert unfinished["code"] and isinstance(unfinished["position"], int)
    assert editor_check("amount * 2", fields, condition=True)["errors"]  # A condition must be true or false.
