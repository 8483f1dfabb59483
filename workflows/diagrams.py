"""A process drawn as its BPMN diagram, with the nodes it has done and those open now.

The task page of the inbox and the monitoring pages show it with static/workflows/diagram.js
(templates/workflows/diagram.html puts the viewer and its data in a page).
"""

from __future__ import annotations

from viewflow.workflow.status import STATUS

from workflows import bpmn, runtime


def process_diagram(process, *, current=None) -> dict:
    """The data diagram.js draws: the BPMN XML of the process's version and its node ids that are
    done, active (open tasks, failed ones too) and `current` (the task a page is about)."""
    flow = process.flow_class
    done, active = set(), set()
    for flow_task, status in process.task_set.values_list("flow_task", "status"):
        node = runtime.node_id(flow_task)
        if status == STATUS.DONE:
            done.add(node)
        elif status in (*runtime.OPEN, STATUS.ERROR, STATUS.SCHEDULED):
            active.add(node)
    return {"xml": bpmn.export(flow.body, key=f"Process_{flow.key}"), "done": sorted(done - active),
            "active": sorted(active), "current": runtime.node_id(current.flow_task) if current is not None else ""}
