"""For engine tests: a workflow body as the designer's BPMN round trip gives it back.

    from tests.workflows.bpmn_round_trip import through_bpmn
    body = through_bpmn(EXPENSE_APPROVAL)   # export as BPMN XML, import again: the same body

Parametrize an engine test over `[body, through_bpmn(body)]` and it runs on the re-imported
definition too (issue 15: "the same tests pass on the re-imported definition").
"""

from workflows import bpmn


def through_bpmn(body: dict, *, key: str = "process") -> dict:
    """`body` exported as BPMN 2.0 XML and imported again; fails loudly if the import reports anything."""
    imported, warnings, errors = bpmn.import_xml(bpmn.export(body, key=key))
    assert not errors and not warnings, (errors, warnings)
    if "diagram" not in body:  # Export lays out a body without a diagram; the rest must be the same.
        imported.pop("diagram")
    return imported
