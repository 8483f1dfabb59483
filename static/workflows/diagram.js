/* The diagram of a workflow instance, shared by the inbox's task page and the monitoring page:
   the vendored bpmn-js navigated viewer (load bpmn-navigated-viewer.production.min.js first)
   shows the workflow's BPMN with each node marked done, active, failed or pending.

   Markup: <div class="wf-diagram" data-config="ID"></div> beside {{ config|json_script:"ID" }},
   config = {xml: BPMN text (workflows.bpmn.export), states: {node id: "done"|"active"|"failed"},
   text: {done, active, pending, failed}: the legend's words}. Nodes without a state are pending.
   window.LowcodeWorkflowDiagram.render(element, config) draws one by hand. */
(function () {
  "use strict";

  const STATES = ["done", "active", "failed", "pending"];

  function legend(text) {
    const list = document.createElement("ul");
    list.className = "wf-diagram-legend";
    STATES.forEach((state) => {
      if (!text || !text[state]) return;
      const item = document.createElement("li");
      item.className = "wf-legend-" + state;
      item.textContent = text[state];
      list.appendChild(item);
    });
    return list;
  }

  async function render(element, config) {
    const canvasBox = document.createElement("div");
    canvasBox.className = "wf-diagram-canvas";
    element.replaceChildren(canvasBox, legend(config.text));
    const viewer = new window.BpmnJS({container: canvasBox});
    try {
      await viewer.importXML(config.xml);
    } catch (error) {
      element.setAttribute("data-error", String(error && error.message || error));
      return null;
    }
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    const states = config.states || {};
    registry.filter((shape) => shape.type !== "label" && shape.businessObject
        && !shape.waypoints && shape.type !== "bpmn:Process").forEach((shape) => {
      const state = states[shape.id] || "pending";
      canvas.addMarker(shape.id, "wf-" + state);
    });
    canvas.zoom("fit-viewport", "auto");
    element.setAttribute("data-ready", "true");
    return viewer;
  }

  function start() {
    document.querySelectorAll(".wf-diagram[data-config]").forEach((element) => {
      const source = document.getElementById(element.getAttribute("data-config"));
      if (source && window.BpmnJS) render(element, JSON.parse(source.textContent));
    });
  }

  window.LowcodeWorkflowDiagram = {render};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
