/* The workflow designer (WF-7): the vendored bpmn-js modeler beside a properties panel of ours.
   The panel writes our lc: attributes (workflows/bpmn.py: a text as it is, other values as JSON)
   and BPMN's own (name, condition, default flow, timer duration, called workflow). Every change
   is checked by the server (the BPMN import, then the definition's validation) and what is wrong
   is marked on the diagram. Save and publish send the diagram's XML. */
(function () {
  "use strict";

  const root = document.getElementById("workflow-designer");
  if (!root || !window.BpmnJS) return;
  const {el} = window.LowcodeDesigner;
  const config = JSON.parse(document.getElementById("workflow-designer-config").textContent);
  const text = config.text;
  const choices = config.choices;
  const csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  const statusLine = root.querySelector(".wd-status");
  const dirtyNote = root.querySelector(".wd-dirty");
  const panel = root.querySelector(".wd-panel");

  /* lc: attribute values, as workflows.bpmn encodes and decodes them. */
  function encode(value) {
    if (typeof value === "string") {
      try { JSON.parse(value); } catch (error) { return value; }
    }
    return JSON.stringify(value);
  }
  function decode(value) {
    if (value === undefined || value === null) return undefined;
    try { return JSON.parse(value); } catch (error) { return value; }
  }

  const LC_KEYS = ["trigger", "task", "assign", "approvers", "deadline", "action", "outcome", "entity", "fields",
    "values", "to", "message", "event", "hook", "record"];
  const lcPackage = {
    name: "Lowcode", prefix: "lc", uri: config.namespace, xml: {tagAlias: "lowerCase"}, associations: [],
    types: [{name: "Attributes", isAbstract: true, extends: ["bpmn:BaseElement"],
      properties: LC_KEYS.map((name) => ({name, isAttr: true, type: "String"}))}],
  };

  /* The palette and the context pad offer what a workflow can run (user and service tasks, timers,
     gateways, call activities), not BPMN's plain task, data or pools. */
  function LowcodePalette(palette, create, elementFactory) {
    const creator = (type, options) => (event) => create.start(event, elementFactory.createShape({type, ...options}));
    const entry = (group, className, title, type, options) => ({group, className, title,
      action: {dragstart: creator(type, options), click: creator(type, options)}});
    this.getPaletteEntries = () => (entries) => {
      ["create.intermediate-event", "create.task", "create.data-object", "create.data-store",
        "create.subprocess-expanded", "create.participant-expanded", "create.group"].forEach((key) => delete entries[key]);
      entries["create.parallel-gateway"] = entry("gateway", "bpmn-icon-gateway-parallel", text.parallel_gateway,
        "bpmn:ParallelGateway");
      entries["create.timer"] = entry("event", "bpmn-icon-intermediate-event-catch-timer", text.palette_timer,
        "bpmn:IntermediateCatchEvent", {eventDefinitionType: "bpmn:TimerEventDefinition"});
      entries["create.user-task"] = entry("activity", "bpmn-icon-user-task", text.palette_user_task, "bpmn:UserTask");
      entries["create.service-task"] = entry("activity", "bpmn-icon-service-task", text.palette_service_task,
        "bpmn:ServiceTask");
      entries["create.call-activity"] = entry("activity", "bpmn-icon-call-activity", text.call_activity,
        "bpmn:CallActivity");
      return entries;
    };
    palette.registerProvider(500, this);
  }
  LowcodePalette.$inject = ["palette", "create", "elementFactory"];

  function LowcodeContextPad(contextPad, autoPlace, create, elementFactory) {
    this.getContextPadEntries = (element) => (entries) => {
      if (!entries["append.append-task"]) return entries;
      const shape = () => elementFactory.createShape({type: "bpmn:UserTask"});
      entries["append.append-task"] = Object.assign({}, entries["append.append-task"], {
        className: "bpmn-icon-user-task", title: text.palette_user_task,
        action: {click: () => autoPlace.append(element, shape()),
          dragstart: (event) => create.start(event, shape(), {source: element})}});
      delete entries["append.intermediate-event"];
      return entries;
    };
    contextPad.registerProvider(500, this);
  }
  LowcodeContextPad.$inject = ["contextPad", "autoPlace", "create", "elementFactory"];

  const modeler = new window.BpmnJS({
    container: root.querySelector(".wd-canvas"),
    moddleExtensions: {lc: lcPackage},
    additionalModules: [{__init__: ["lowcodePalette", "lowcodeContextPad"],
      lowcodePalette: ["type", LowcodePalette], lowcodeContextPad: ["type", LowcodeContextPad]}],
  });
  const modeling = modeler.get("modeling");
  const moddle = modeler.get("moddle");
  const canvas = modeler.get("canvas");
  const overlays = modeler.get("overlays");
  const registry = modeler.get("elementRegistry");
  const selection = modeler.get("selection");

  function post(url, data) {
    return fetch(url, {method: "POST", credentials: "same-origin", body: JSON.stringify(data),
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"}})
      .then((response) => response.json().then((json) => ({ok: response.ok, status: response.status, json})));
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (match, name) => (name in values ? values[name] : match));
  }

  let dirty = false;
  function setDirty(value) {
    dirty = value;
    dirtyNote.hidden = !value;
  }
  window.addEventListener("beforeunload", (event) => {
    if (dirty) event.preventDefault();
  });

  // ---- What is wrong, on the diagram and in the list ----

  const report = root.querySelector(".wd-report");
  const errorsBox = root.querySelector(".wd-errors");
  const warningsBox = root.querySelector(".wd-warnings");
  let marked = [];
  let unsupported = new Set();

  function selectElement(id) {
    const element = registry.get(id);
    if (!element) return;
    selection.select(element);
    canvas.scrollToElement(element);
  }

  function listItem(item, id, message) {
    const line = item.line ? ` (${format(text.line, {line: item.line})})` : "";
    const target = id && registry.get(id);
    return el("li", {}, [target ? el("button", {type: "button", class: "wd-goto", text: id,
      onclick: () => selectElement(id)}) : null, el("span", {text: (target ? ": " : "") + message + (target ? "" : line)})]);
  }

  function showReport(result) {
    marked.forEach((id) => canvas.removeMarker(id, "wd-problem"));
    overlays.remove({type: "wd-problem"});
    marked = [];
    const selectedId = (selected || canvas.getRootElement()).id;
    const wasUnsupported = unsupported.has(selectedId);
    unsupported = new Set((result.errors || []).filter((item) => item.code === "unsupported").map((item) => item.element));
    const items = (result.errors || []).map((item) => ({id: item.element, message: item.message, item}))
      .concat((result.problems || []).map((item) => ({id: item.node, message: item.message, item})));
    const byElement = {};
    items.forEach(({id, message}) => {
      if (id && registry.get(id)) (byElement[id] = byElement[id] || []).push(message);
    });
    Object.entries(byElement).forEach(([id, messages]) => {
      canvas.addMarker(id, "wd-problem");
      marked.push(id);
      overlays.add(id, "wd-problem", {position: {top: -10, right: 10},
        html: el("span", {class: "wd-badge", title: messages.join("\n"), text: "!", "aria-label": messages.join(" ")})});
    });
    const list = errorsBox.querySelector(".wd-errors-list");
    list.replaceChildren(...items.map(({id, message, item}) => listItem(item, id, message)));
    errorsBox.querySelector(".wd-errors-title").textContent = (result.errors || []).length ? text.refused : text.has_problems;
    errorsBox.hidden = !items.length;
    report.hidden = errorsBox.hidden && warningsBox.hidden;
    if (wasUnsupported !== unsupported.has(selectedId)) renderPanel();  // Else the input being typed in keeps its focus.
  }

  function showImportWarnings(warnings) {
    warningsBox.querySelector("summary").textContent = `${text.warnings} (${warnings.length})`;
    warningsBox.querySelector(".wd-warnings-list").replaceChildren(
      ...warnings.map((item) => el("li", {text: item.message})));
    warningsBox.hidden = !warnings.length;
    report.hidden = errorsBox.hidden && warningsBox.hidden;
  }

  let checkTimer = null;
  let checkNumber = 0;
  function xml() {
    return modeler.saveXML({format: true}).then((result) => result.xml);
  }
  function check() {
    const number = ++checkNumber;
    return xml().then((text) => post(config.urls.check, {xml: text})).then((response) => {
      if (number === checkNumber && response.ok) showReport(response.json);
    }).catch(() => {});
  }
  function checkSoon() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 500);
  }

  // ---- Save and publish ----

  function save(publish) {
    statusLine.textContent = text.checking;
    return xml().then((diagram) => post(config.urls.save, {xml: diagram, publish})).then((response) => {
      if (response.ok) {
        setDirty(false);
        statusLine.textContent = format(publish ? text.published : text.saved, {version: response.json.version});
        const state = document.getElementById("wd-state");
        state.textContent = publish ? text.state_live : text.state_changed;
        state.className = "design-state " + (publish ? "design-state-live" : "design-state-changed");
        showReport(response.json);
      } else if (response.json.xml || response.json.body) {
        statusLine.textContent = response.json.xml ? text.refused : text.has_problems;
        showReport({errors: response.json.errors || [], problems: response.json.problems || response.json.body || []});
      } else {
        statusLine.textContent = ((response.json.__all__ || [])[0] || {}).message || text.failed;
      }
    }).catch(() => { statusLine.textContent = text.failed; });
  }
  root.querySelector(".wd-save").addEventListener("click", () => save(false));
  root.querySelector(".wd-publish").addEventListener("click", () => save(true));

  // ---- Import a BPMN file: the server reads the file itself (lines of the file), then the modeler ----

  root.querySelector(".wd-import-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    // A check of the diagram as it was, pending or on its way back, must not overwrite the file's report.
    clearTimeout(checkTimer);
    checkNumber += 1;
    file.text().then((content) => post(config.urls.check, {xml: content}).then((response) => {
      showImportWarnings(response.json.warnings || []);
      if (response.json.errors && response.json.errors.length) {
        showReport(response.json);
        statusLine.textContent = text.refused;
        return null;
      }
      return modeler.importXML(content).then(() => {
        fit();
        setDirty(true);
        statusLine.textContent = text.imported;
        showReport(response.json);
      });
    })).catch(() => { statusLine.textContent = text.refused; }).finally(() => { event.target.value = ""; });
  });

  // ---- The properties panel ----

  let selected = null;

  function kindOf(element) {
    const bo = element.businessObject;
    if (element.type === "bpmn:IntermediateCatchEvent") {
      const definition = (bo.eventDefinitions || [])[0];
      return definition && definition.$type === "bpmn:TimerEventDefinition" ? "timer" : "unsupported";
    }
    if (["bpmn:StartEvent", "bpmn:EndEvent"].includes(element.type) && (bo.eventDefinitions || []).length) return "unsupported";
    return {"bpmn:Process": "process", "bpmn:StartEvent": "start", "bpmn:EndEvent": "end", "bpmn:UserTask": "user_task",
      "bpmn:ServiceTask": "service_task", "bpmn:ExclusiveGateway": "exclusive_gateway",
      "bpmn:ParallelGateway": "parallel_gateway", "bpmn:CallActivity": "call_activity", "bpmn:SequenceFlow": "flow",
      "label": "label"}[element.type] || "unsupported";
  }

  function lc(element, key) {
    return decode(element.businessObject.get(`lc:${key}`));
  }
  function setLc(element, key, value) {
    const empty = value === undefined || value === "" || (typeof value === "object" && value !== null &&
      !Array.isArray(value) && !Object.keys(value).length);
    editing(() => modeling.updateProperties(element, {[`lc:${key}`]: empty ? undefined : encode(value)}));
  }

  // Panel edits do not redraw the panel (the input keeps its focus); other changes do.
  let panelEditing = false;
  function editing(change) {
    panelEditing = true;
    try { change(); } finally { panelEditing = false; }
  }

  let rowNumber = 0;
  function row(label, input, help) {
    rowNumber += 1;
    input.id = input.id || `wd-field-${rowNumber}`;
    return el("div", {class: "wd-row"}, [el("label", {for: input.id, text: label}), input,
      help ? el("p", {class: "help", text: help}) : null]);
  }
  function select(options, value, onChange) {
    const input = el("select", {}, options.map(([optionValue, label]) => el("option", {value: optionValue, text: label})));
    input.value = value === undefined || value === null ? "" : String(value);
    input.addEventListener("change", () => onChange(input.value));
    return input;
  }
  function textInput(value, onInput, attributes) {
    const input = el("input", Object.assign({type: "text", value: value === undefined || value === null ? "" : String(value)},
      attributes || {}));
    input.addEventListener("input", () => onInput(input.value));
    return input;
  }
  function datalist(id, values) {
    return el("datalist", {id}, values.map((value) => el("option", {value})));
  }

  /* An expression input with the server's verdict under it as the builder types. */
  function expressionRow(label, value, onInput, condition) {
    const verdict = el("p", {class: "wd-verdict", "aria-live": "polite"});
    const input = el("textarea", {rows: 2, spellcheck: "false", class: "wd-expression"});
    input.value = value || "";
    let timer = null;
    const judge = () => {
      if (!input.value.trim()) { verdict.textContent = ""; verdict.className = "wd-verdict"; return; }
      verdict.textContent = text.checking;
      post(config.urls.expression, {entity: lc(canvas.getRootElement(), "entity") || "", expression: input.value,
        condition: condition !== false}).then((response) => {
        const errors = response.json.errors || [];
        verdict.className = "wd-verdict " + (errors.length ? "is-invalid" : "is-valid");
        verdict.textContent = errors.length ? errors.map((error) => error.message).join(" ") :
          format(text.valid, {type: response.json.type});
      }).catch(() => { verdict.textContent = text.failed; });
    };
    input.addEventListener("input", () => {
      onInput(input.value.trim());
      clearTimeout(timer);
      timer = setTimeout(judge, 350);
    });
    judge();
    const result = row(label, input, text.condition_help);
    result.append(verdict);
    return result;
  }

  const ASSIGN_KINDS = ["user", "role", "department", "manager_of", "expression"];
  function assignmentRows(title, value, onChange) {
    const current = value && typeof value === "object" ? value : {};
    const kind = Object.keys(current)[0] || "";
    const suggestions = {user: "wd-users", role: "wd-roles", department: "wd-departments"};
    const valueInput = textInput(current[kind] || "", (typed) => onChange(kind && typed ? {[kind]: typed} : {}),
      {list: suggestions[kind] || null, disabled: !kind, class: "wd-assign-value"});
    return [
      row(title, select([["", text.none], ...ASSIGN_KINDS.map((name) => [name, text[`assign_${name}`]])], kind,
        (chosen) => { onChange(chosen ? {[chosen]: current[kind] || ""} : {}); renderPanel(); })),
      kind ? row(text[`assign_${kind}`], valueInput) : null,
    ];
  }

  function processRows(element) {
    const bo = element.businessObject;
    return [
      row(text.label, textInput(bo.name, (value) => editing(() => modeling.updateProperties(element, {name: value || undefined})))),
      row(text.entity, select([["", text.none], ...choices.entities.map((entity) => [entity.key, entity.label])],
        lc(element, "entity"), (value) => setLc(element, "entity", value))),
    ];
  }

  function startRows(element) {
    const trigger = lc(element, "trigger") || {};
    const kind = trigger.form !== undefined ? "form" : trigger.record !== undefined ? "record" : "";
    const rows = [row(text.trigger, select([["", text.trigger_manual], ["form", text.trigger_form],
      ["record", text.trigger_record]], kind, (value) => {
      setLc(element, "trigger", value === "form" ? {form: ""} : value === "record" ? {record: "created"} : {});
      renderPanel();
    }))];
    if (kind === "form") {
      rows.push(row(text.form, select([["", text.none], ...choices.forms.map((form) => [form.key, form.label])],
        trigger.form, (value) => setLc(element, "trigger", {form: value}))));
    } else if (kind === "record") {
      rows.push(row(text.trigger_record, select([["created", text.record_created], ["updated", text.record_updated]],
        trigger.record, (value) => setLc(element, "trigger", Object.assign({}, lc(element, "trigger"), {record: value})))));
      rows.push(expressionRow(text.when, trigger.when, (value) => {
        const updated = Object.assign({}, lc(element, "trigger"));
        if (value) updated.when = value; else delete updated.when;
        setLc(element, "trigger", updated);
      }));
    }
    return rows;
  }

  function userTaskRows(element) {
    const task = lc(element, "task") || {kind: "approval"};
    const approvers = lc(element, "approvers") || {rule: "any"};
    const deadline = lc(element, "deadline") || {};
    const setDeadline = (key, value) => {
      const updated = Object.assign({}, lc(element, "deadline"));
      if (value === undefined || value === "" || (typeof value === "object" && !Object.keys(value).length)) delete updated[key];
      else updated[key] = value;
      setLc(element, "deadline", updated);
    };
    const rows = [
      row(text.task_kind, select([["approval", text.approval], ["form", text.fill_form]], task.kind, (value) => {
        setLc(element, "task", value === "form" ? {kind: "form", form: ""} : {kind: "approval"});
        renderPanel();
      })),
    ];
    if (task.kind === "form") {
      rows.push(row(text.form, select([["", text.none], ...choices.forms.map((form) => [form.key, form.label])],
        task.form, (value) => setLc(element, "task", {kind: "form", form: value}))));
    }
    rows.push(...assignmentRows(text.assign, lc(element, "assign"), (value) => setLc(element, "assign", value)));
    if (task.kind !== "form") {
      rows.push(row(text.approvers, select([["any", text.rule_any], ["all", text.rule_all], ["n_of_m", text.rule_n_of_m]],
        approvers.rule, (value) => {
          setLc(element, "approvers", value === "any" ? undefined : value === "n_of_m" ? {rule: value, n: 2} : {rule: value});
          renderPanel();
        })));
      if (approvers.rule === "n_of_m") {
        rows.push(row(text.n, el("input", {type: "number", min: "1", max: "100", value: String(approvers.n || 2),
          oninput: (event) => setLc(element, "approvers", {rule: "n_of_m", n: Number(event.target.value) || 1})})));
      }
    }
    const box = el("fieldset", {class: "wd-group"}, [el("legend", {text: text.deadline}),
      row(text.remind_after, textInput(deadline.remind_after, (value) => setDeadline("remind_after", value),
        {placeholder: "P2D"})),
      row(text.escalate_after, textInput(deadline.escalate_after, (value) => setDeadline("escalate_after", value),
        {placeholder: "P5D"})),
      ...assignmentRows(text.escalate_to, deadline.escalate_to, (value) => setDeadline("escalate_to", value)),
      row(text.on_expiry, select([["", text.none], ["escalate", text.on_expiry_escalate], ["approve", text.on_expiry_approve],
        ["reject", text.on_expiry_reject]], deadline.on_expiry, (value) => setDeadline("on_expiry", value)))]);
    rows.push(box);
    return rows;
  }

  function serviceTaskRows(element) {
    const actionType = lc(element, "action") || "";
    const action = choices.actions.find((item) => item.type === actionType);
    const rows = [row(text.action, select([["", text.none], ...choices.actions.map((item) => [item.type, item.label])],
      actionType, (value) => { setLc(element, "action", value); renderPanel(); }))];
    (action ? action.options : []).forEach((option) => {
      const raw = element.businessObject.get(`lc:${option}`);
      const input = el("textarea", {rows: 2, spellcheck: "false", "data-option": option});
      input.value = raw || "";
      input.addEventListener("input", () => setLc(element, option, input.value === "" ? undefined : decode(input.value)));
      rows.push(row(option, input, text.option_help));
    });
    return rows;
  }

  function gatewayRows(element) {
    const bo = element.businessObject;
    const outgoing = bo.outgoing || [];
    return [row(text.default_flow, select([["", text.none], ...outgoing.map((flow) => [flow.id, flow.name || flow.id])],
      bo.default && bo.default.id, (value) => editing(() => modeling.updateProperties(element,
        {default: outgoing.find((flow) => flow.id === value) || undefined}))))];
  }

  function timerRows(element) {
    const definition = element.businessObject.eventDefinitions[0];
    return [row(text.duration, textInput(definition.timeDuration && definition.timeDuration.body, (value) => editing(() =>
      modeling.updateModdleProperties(element, definition,
        {timeDuration: value ? moddle.create("bpmn:FormalExpression", {body: value}) : undefined})), {placeholder: "PT1H"}))];
  }

  function callActivityRows(element) {
    return [row(text.workflow_called, textInput(element.businessObject.calledElement, (value) => editing(() =>
      modeling.updateProperties(element, {calledElement: value})), {list: "wd-workflows"}))];
  }

  function endRows(element) {
    return [row(text.outcome, select(["completed", "approved", "rejected", "cancelled"].map((name) => [name, text[name]]),
      lc(element, "outcome") || "completed", (value) => setLc(element, "outcome", value)))];
  }

  function flowRows(element) {
    const bo = element.businessObject;
    const source = element.source;
    const rows = [];
    if (source && source.type === "bpmn:UserTask") {
      const task = lc(source, "task") || {kind: "approval"};
      const outcomes = task.kind === "form" ? ["completed"] : ["approved", "rejected"];
      rows.push(row(text.flow_outcome, select([["", text.any_outcome], ...outcomes.map((name) => [name, text[name]])],
        lc(element, "outcome"), (value) => setLc(element, "outcome", value))));
    }
    if (source && source.type === "bpmn:ExclusiveGateway") {
      const isDefault = source.businessObject.default === bo;
      rows.push(row(text.is_default, el("input", {type: "checkbox", checked: isDefault, class: "wd-default",
        onchange: (event) => {
          editing(() => modeling.updateProperties(source, {default: event.target.checked ? bo : undefined}));
          renderPanel();
        }})));
      if (!isDefault) {
        rows.push(expressionRow(text.condition, bo.conditionExpression && bo.conditionExpression.body, (value) => editing(() =>
          modeling.updateProperties(element, {conditionExpression: value ?
            moddle.create("bpmn:FormalExpression", {body: value}) : undefined}))));
      }
    }
    return rows;
  }

  const ROWS = {process: processRows, start: startRows, user_task: userTaskRows, service_task: serviceTaskRows,
    exclusive_gateway: gatewayRows, timer: timerRows, call_activity: callActivityRows, end: endRows, flow: flowRows};

  function renderPanel() {
    const element = selected && registry.get(selected.id) ? selected : canvas.getRootElement();
    if (!element || !element.businessObject) return;  // While a diagram is being imported.
    const kind = kindOf(element);
    const bo = element.businessObject;
    const content = [el("p", {class: "wd-kind", text: `${text[kind === "process" ? "workflow" : kind] || kind} · ${bo.id}`})];
    if (kind === "unsupported" || unsupported.has(bo.id)) {
      content.push(el("p", {class: "errornote", text: text.unsupported}));
    } else if (kind !== "label") {
      if (kind !== "process") {
        content.push(row(text.label, textInput(bo.name, (value) => editing(() => modeling.updateLabel(element, value)),
          {class: "wd-label"})));
      }
      content.push(...(ROWS[kind] ? ROWS[kind](element) : []));
    }
    if (kind === "process") content.push(el("p", {class: "help", text: text.select_hint}));
    panel.replaceChildren(...content.filter(Boolean), datalist("wd-users", choices.users),
      datalist("wd-roles", choices.roles.map((role) => role.key)), datalist("wd-departments", choices.departments),
      datalist("wd-workflows", choices.workflows));
  }

  modeler.on("selection.changed", (event) => {
    const element = event.newSelection[0];
    selected = element && element.type === "label" ? element.labelTarget : element || null;
    renderPanel();
  });
  modeler.on("commandStack.changed", () => {
    setDirty(true);
    if (!panelEditing) renderPanel();
    checkSoon();
  });

  /* The whole diagram in view, clear of the palette on its left, never enlarged. */
  function fit() {
    const area = root.querySelector(".wd-canvas").getBoundingClientRect();
    const palette = root.querySelector(".djs-palette");
    const clear = (palette ? palette.getBoundingClientRect().right - area.left : 0) + 16;
    const inner = canvas.viewbox().inner;
    if (!inner.width || !area.width) return;
    const scale = Math.min(1, (area.width - clear - 16) / inner.width, (area.height - 32) / inner.height);
    canvas.viewbox({x: inner.x - clear / scale, y: inner.y - (area.height / scale - inner.height) / 2,
      width: area.width / scale, height: area.height / scale});
  }

  modeler.importXML(config.xml).then(() => {
    fit();
    renderPanel();
    check();
  }).catch((error) => { statusLine.textContent = String(error.message || error); });
})();
