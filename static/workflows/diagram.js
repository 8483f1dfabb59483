/* A process's BPMN diagram (vendored bpmn-js navigated viewer) with its nodes marked done, active or
   pending, and the node a page is about marked current. Used by the inbox's task page and the
   monitoring pages: templates/workflows/diagram.html gives each holder its data (workflows.diagrams). */
(function () {
  "use strict";

  function mark(viewer, data) {
    const canvas = viewer.get("canvas");
    const done = new Set(data.done), active = new Set(data.active);
    viewer.get("elementRegistry").forEach(function (element) {
      if (element.type === "label" || element.type === "bpmn:Process" || !element.businessObject) return;
      if (element.waypoints) {  // A flow is taken when it leads from a done node to a done or active one.
        const source = element.source && element.source.id, target = element.target && element.target.id;
        if (done.has(source) && (done.has(target) || active.has(target))) canvas.addMarker(element.id, "lc-flow-done");
        return;
      }
      const state = active.has(element.id) ? "active" : done.has(element.id) ? "done" : "pending";
      canvas.addMarker(element.id, "lc-node-" + state);
      if (element.id === data.current) canvas.addMarker(element.id, "lc-node-current");
    });
  }

  document.querySelectorAll("[data-lc-diagram]").forEach(function (holder) {
    const source = document.getElementById(holder.dataset.lcDiagram);
    if (!source || !window.BpmnJS) return;
    const data = JSON.parse(source.textContent);
    const viewer = new window.BpmnJS({ container: holder.querySelector(".lc-diagram-canvas") });
    viewer.importXML(data.xml).then(function () {
      viewer.get("canvas").zoom("fit-viewport", "auto");
      mark(viewer, data);
      holder.classList.add("lc-diagram-ready");
    }).catch(function () {
      holder.querySelector(".lc-diagram-error").hidden = false;
    });
    window.addEventListener("resize", function () { viewer.get("canvas").zoom("fit-viewport", "auto"); });
  });
})();
