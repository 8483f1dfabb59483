// The script admin's test console (SC-1): runs the saved script as the signed-in user and shows
// the result, the log and the run at the top of the last runs. Texts come translated in #sc-texts.
(function () {
  "use strict";
  function ready() {
    var box = document.getElementById("sc-console");
    if (!box) return;
    var texts = JSON.parse(document.getElementById("sc-texts").textContent);
    var button = document.getElementById("sc-run");
    var result = document.getElementById("sc-result");
    function cell(row, text) { var td = document.createElement("td"); td.textContent = text; row.appendChild(td); }
    function show(status, message, output, logs) {
      result.hidden = false;
      result.className = "sc-result sc-" + status;
      document.getElementById("sc-status").textContent = message.title;
      document.getElementById("sc-message").textContent = message.text || "";
      document.getElementById("sc-output").textContent = output;
      document.getElementById("sc-logs").textContent = logs;
      document.getElementById("sc-log-box").hidden = !logs;
    }
    button.addEventListener("click", function () {
      var params;
      try { params = JSON.parse(document.getElementById("sc-params").value || "{}"); }
      catch (error) { show("error", {title: texts.failed, text: error.message}, "", ""); return; }
      var entity = document.getElementById("sc-entity").value.trim();
      var id = document.getElementById("sc-record-id").value;
      var token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
      button.disabled = true;
      button.textContent = texts.running;
      fetch(box.dataset.runUrl, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": token},
        body: JSON.stringify({params: params, record: entity && id ? {entity: entity, id: Number(id)} : null}),
      }).then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      }).then(function (reply) {
        var body = reply.body;
        if (!reply.ok) {
          var problems = Object.keys(body).map(function (key) { return key + ": " + body[key].join(" "); });
          show("error", {title: texts.failed, text: problems.join(" ")}, "", "");
          return;
        }
        var ms = texts.ms.replace("%(ms)s", body.duration_ms.toFixed(1));
        show(body.status, {title: body.status_label + " · " + ms, text: body.message},
             body.output === null ? "" : JSON.stringify(body.output, null, 2), body.logs.join("\n"));
        var tbody = document.querySelector("#sc-runs tbody");
        var none = tbody.querySelector(".sc-none");
        if (none) none.remove();
        var row = document.createElement("tr");
        [texts.now, body.user, texts.console, body.status_label, ms, body.message].forEach(function (text) { cell(row, text); });
        tbody.insertBefore(row, tbody.firstChild);
      }).catch(function (error) {
        show("error", {title: texts.failed, text: error.message}, "", "");
      }).finally(function () {
        button.disabled = false;
        button.textContent = button.dataset.label;
      });
    });
    button.dataset.label = button.textContent;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready); else ready();
})();
