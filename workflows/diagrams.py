"""A process drawn as its BPMN diagram with each node's state, as static/workflows/diagram.js draws it.

The inbox's task page includes templates/workflows/diagram.html with it; the monitoring page
builds the same configuration.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from workflows import bpmn, monitoring


def process_diagram(process, history: list[dict]) -> dict:
    """diagram.js's configuration: the BPMN XML of the process's version, the state of each node
    (from `history`, workflows.services.history(process)) and the legend's words."""
    flow = process.flow_class
    return {"xml": bpmn.export(flow.body, key=flow.key), "states": monitoring.node_states(history),
            "text": {"done": _("Done"), "active": _("Active"), "pending": _("Pending"), "failed": _("Failed")}}
