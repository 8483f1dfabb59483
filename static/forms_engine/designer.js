/* The form designer (FM-5): a palette of widgets (and of the bound entity's fields), a canvas of
   steps, groups and fields on the 12-column grid (SortableJS, or Alt+Up/Alt+Down and "Move to"),
   a properties panel, a live preview rendered by the server, a JSON view, save draft and publish.
   The body it edits is the `form` definition body (forms_design.md); the server validates it. */
(function () {
  "use strict";

  const D = window.LowcodeDesigner;

  function init() {
    const root = document.getElementById("form-designer");
    const configElement = document.getElementById("form-designer-config");
    if (!root || !configElement || !D) return;
    const el = D.el;
    const config = JSON.parse(configElement.textContent);
    const text = config.text;
    const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
    const canvas = root.querySelector(".fd-canvas");
    const panel = root.querySelector(".fd-panel");
    const palette = root.querySelector(".fd-palette");
    const status = root.querySelector(".fd-status");
    const format = (template, values) => template.replace(/%\((\w+)\)s/g, (_m, name) => values[name]);
    const clone = (value) => JSON.parse(JSON.stringify(value));

    let body = normalize(clone(config.body));
    let selected = {kind: "form"};
    let errors = [];
    let dirty = false;
    const nodeOf = new Map(); // layout object -> its canvas node
    const objectOf = new WeakMap(); // canvas node -> its layout object
    const newKeys = new Set(); // Fields added in this visit: their key follows their label.

    function normalize(value) {
      const form = value && typeof value === "object" && !Array.isArray(value) ? value : {};
      form.schema = form.schema && typeof form.schema === "object" ? form.schema : {type: "object"};
      form.schema.properties = form.schema.properties || {};
      form.fields = form.fields || {};
      form.layout = form.layout && Array.isArray(form.layout.steps) ? form.layout : {steps: []};
      if (!form.layout.steps.length) form.layout.steps.push({key: "step_1", label: text.step + " 1", items: []});
      form.layout.steps.forEach((step) => { step.items = step.items || []; });
      return form;
    }

    /* ---- Where things are ---- */

    function walk(items, visit, group) {
      items.forEach((item, index) => {
        visit(item, items, index, group);
        if (item.group !== undefined) walk(item.items || [], visit, item);
      });
    }

    function locate(target) {
      let found = null;
      body.layout.steps.forEach((step) => walk(step.items, (item, list, index, group) => {
        if (item === target) found = {list, index, step, group};
      }));
      return found;
    }

    function itemOfField(key) {
      let found = null;
      body.layout.steps.forEach((step) => walk(step.items, (item) => { if (item.field === key) found = item; }));
      return found;
    }

    function selectedObject() {
      if (selected.kind === "field") return itemOfField(selected.key);
      return selected.object || null;
    }

    const dataWidget = (key) => {
      const spec = body.fields[key];
      return spec && config.widgets[spec.widget] && config.widgets[spec.widget].data;
    };
    const slug = (value) => value.trim().toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_")
      .replace(/^[^a-z]+|_+$/g, "").slice(0, 50);
    function freeKey(base) {
      const taken = new Set([...Object.keys(body.fields)]);
      body.layout.steps.forEach((step) => { taken.add(step.key); walk(step.items, (item) => item.group && taken.add(item.group)); });
      let key = base || "field";
      for (let number = 2; taken.has(key); number += 1) key = `${base}_${number}`;
      return key;
    }
    const required = () => (body.schema.required = body.schema.required || []);
    const entity = () => config.entities.find((item) => item.key === body.entity) || null;

    /* ---- Changes ---- */

    let previewTimer = null;
    function changed({canvas: redraw = true, panel: redrawPanel = false} = {}) {
      dirty = true;
      root.querySelector(".fd-dirty").hidden = false;
      if (redraw) renderCanvas();
      if (redrawPanel) renderPanel();
      renderPalette();
      listEntityKeys();
      if (!root.querySelector("#fd-view-json").hidden) showJSON();
      if (!root.querySelector("#fd-view-preview").hidden) {
        clearTimeout(previewTimer);
        previewTimer = setTimeout(refreshPreview, 400);
      }
    }

    function addField(widgetType, entityField) {
      const widget = config.widgets[widgetType];
      const key = freeKey(entityField ? entityField.key : widgetType);
      const spec = entityField ? clone(entityField.spec) : {widget: widgetType};
      if (widgetType === "paragraph") spec.text = "";
      else if (!entityField) spec.label = widget.label;
      body.fields[key] = spec;
      if (widget.data) body.schema.properties[key] = clone(entityField ? entityField.schema : widget.data);
      if (entityField && entityField.required && widget.data) required().push(key);
      if (!entityField) newKeys.add(key);
      return {field: key, width: 12};
    }

    function addGroup() {
      return {group: freeKey("group"), label: text.new_group, items: []};
    }

    /* Where a new item goes: after the selected item (a group after the group it is in: groups do
       not nest), at the end of the selected step, or of the last step. */
    function insert(item) {
      const current = selectedObject();
      const place = current && selected.kind !== "step" ? locate(current) : null;
      if (place && !(item.group !== undefined && place.group)) place.list.splice(place.index + 1, 0, item);
      else if (place) place.step.items.splice(place.step.items.indexOf(place.group) + 1, 0, item);
      else (selected.kind === "step" ? selected.object : body.layout.steps[body.layout.steps.length - 1]).items.push(item);
    }

    function renameField(oldKey, newKey) {
      const rename = (object) => {
        if (object && oldKey in object) {
          const entries = Object.entries(object).map(([name, value]) => [name === oldKey ? newKey : name, value]);
          Object.keys(object).forEach((name) => delete object[name]);
          entries.forEach(([name, value]) => { object[name] = value; });
        }
      };
      rename(body.fields);
      rename(body.schema.properties);
      if (Array.isArray(body.schema.required)) body.schema.required = body.schema.required.map((k) => (k === oldKey ? newKey : k));
      const item = itemOfField(oldKey);
      if (item) item.field = newKey;
      (body.checks || []).forEach((check) => { if (check.field === oldKey) check.field = newKey; });
      if (newKeys.delete(oldKey)) newKeys.add(newKey);
      selected = {kind: "field", key: newKey};
    }

    function removeSelected() {
      const current = selectedObject();
      if (selected.kind === "step") {
        const steps = body.layout.steps;
        const index = steps.indexOf(current);
        if (steps.length < 2) return;
        steps[index ? index - 1 : 1].items.push(...current.items); // Its items stay, in the next step.
        steps.splice(index, 1);
      } else if (current) {
        const place = locate(current);
        place.list.splice(place.index, 1);
        if (current.group !== undefined) place.list.splice(place.index, 0, ...current.items); // Ungrouped.
        else {
          delete body.fields[current.field];
          delete body.schema.properties[current.field];
          if (Array.isArray(body.schema.required)) body.schema.required = body.schema.required.filter((k) => k !== current.field);
        }
      }
      selected = {kind: "form"};
      changed({panel: true});
    }

    /* ---- Canvas ---- */

    const describe = (spec, key) => [key, (config.widgets[spec.widget] || {}).label || spec.widget].join(" · ");

    function selectButton(label, meta, kind) {
      return el("button", {type: "button", class: "fd-select", "data-kind": kind}, [
        el("span", {class: "fd-item-label", text: label}), meta ? el("span", {class: "fd-item-meta", text: meta}) : null]);
    }

    function renderItem(item) {
      let node;
      if (item.group !== undefined) {
        const list = el("ol", {class: "fd-items", "aria-label": item.label || item.group});
        (item.items || []).forEach((child) => list.append(renderItem(child)));
        node = el("li", {class: "fd-item fd-group"}, [
          el("div", {class: "fd-item-head"}, [el("span", {class: "fd-handle", title: text.move_help, "aria-hidden": "true", text: "⠿"}),
            selectButton(item.label || item.group, `${text.group} · ${item.group}${item.show_when ? " · " + text.show_when : ""}`, "group")]),
          list]);
      } else {
        const spec = body.fields[item.field] || {widget: "?"};
        const flags = [required().includes(item.field) ? "*" : "", spec.show_when ? text.show_when : "",
          spec.require_when ? text.require_when : "", spec.enable_when ? text.enable_when : "", spec.value ? text.value : ""]
          .filter(Boolean);
        const label = spec.label || (spec.text || "").slice(0, 60) || item.field;
        node = el("li", {class: "fd-item fd-field", "data-field": item.field}, [
          el("span", {class: "fd-handle", title: text.move_help, "aria-hidden": "true", text: "⠿"}),
          selectButton(label, describe(spec, item.field) + (flags.length ? " · " + flags.join(" · ") : ""), "field")]);
      }
      node.style.setProperty("--span", String(item.width || 12));
      objectOf.set(node, item);
      nodeOf.set(item, node);
      return node;
    }

    function renderStep(step, index) {
      const list = el("ol", {class: "fd-items", "aria-label": step.label || step.key});
      step.items.forEach((item) => list.append(renderItem(item)));
      const node = el("section", {class: "fd-step"}, [
        el("div", {class: "fd-step-head"}, [el("span", {class: "fd-handle fd-step-handle", title: text.move_help, "aria-hidden": "true", text: "⠿"}),
          selectButton(`${index + 1}. ${step.label || step.key}`, `${text.step} · ${step.key}${step.show_when ? " · " + text.show_when : ""}`, "step")]),
        list, el("p", {class: "fd-drop-help help", text: text.no_fields})]);
      objectOf.set(node, step);
      nodeOf.set(step, node);
      return node;
    }

    function renderCanvas() {
      nodeOf.clear();
      canvas.replaceChildren(...body.layout.steps.map(renderStep));
      canvas.querySelectorAll(".fd-items").forEach((list) => {
        if (!window.Sortable) return;
        window.Sortable.create(list, {
          group: {name: "fd-items", put: (to, _from, dragged) => !(dragged.classList.contains("fd-group") || dragged.dataset.widget === "__group") || !to.el.closest(".fd-group")},
          handle: ".fd-handle", animation: 150, ghostClass: "designer-ghost", fallbackOnBody: true, swapThreshold: 0.6,
          forceFallback: true, // Pointer events, not HTML5 drag: a drag may start on a button (the palette's).
          // Full-width items sit one above the other; narrower ones share a row, left to right.
          direction: (_event, target) => (target && target.parentNode === list
            && target.getBoundingClientRect().width < list.clientWidth * 0.9 ? "horizontal" : "vertical"),
          onAdd: (event) => { if (event.item.closest(".fd-canvas") && !objectOf.has(event.item)) dropFromPalette(event.item); },
          onEnd: () => setTimeout(readCanvas), // After Sortable has finished with the nodes it moved.
        });
      });
      markCanvas();
    }
    if (window.Sortable) {
      window.Sortable.create(canvas, {handle: ".fd-step-handle", animation: 150, draggable: ".fd-step", forceFallback: true,
        onEnd: () => setTimeout(readCanvas)});
    }

    function dropFromPalette(node) {
      const source = node.dataset.widget;
      let item;
      if (source === "__group") item = addGroup();
      else if (node.dataset.entityField) item = addField(source, entity().fields.find((field) => field.key === node.dataset.entityField));
      else item = addField(source);
      objectOf.set(node, item);
      selected = item.group !== undefined ? {kind: "group", object: item} : {kind: "field", key: item.field};
    }

    /* The layout as the canvas now shows it (after a drag). */
    function readCanvas() {
      const read = (list) => [...list.children].map((node) => {
        const item = objectOf.get(node);
        if (item && item.group !== undefined) item.items = read(node.querySelector(":scope > .fd-items"));
        return item;
      }).filter(Boolean);
      body.layout.steps = [...canvas.querySelectorAll(":scope > .fd-step")].map((node) => {
        const step = objectOf.get(node);
        step.items = read(node.querySelector(":scope > .fd-items"));
        return step;
      });
      changed({panel: true});
    }

    function markCanvas() {
      const current = selectedObject();
      canvas.querySelectorAll(".is-selected").forEach((node) => node.classList.remove("is-selected"));
      canvas.querySelectorAll(".fd-select[aria-current]").forEach((node) => node.removeAttribute("aria-current"));
      if (current && nodeOf.has(current)) {
        const node = nodeOf.get(current);
        node.classList.add("is-selected");
        node.querySelector(".fd-select").setAttribute("aria-current", "true");
      }
      root.querySelector(".fd-form-select").classList.toggle("is-selected", selected.kind === "form");
      nodeOf.forEach((node, object) => node.classList.toggle("has-errors", errorsOf(object).length > 0));
    }

    canvas.addEventListener("click", (event) => {
      const button = event.target.closest(".fd-select");
      if (!button) return;
      const object = objectOf.get(button.closest(".fd-item, .fd-step"));
      select(object);
    });

    function select(object) {
      if (!object) selected = {kind: "form"};
      else if (object.field !== undefined) selected = {kind: "field", key: object.field};
      else if (object.group !== undefined) selected = {kind: "group", object};
      else selected = {kind: "step", object};
      markCanvas();
      renderPanel();
    }

    function focusObject(object) {
      const node = nodeOf.get(object);
      if (node) node.querySelector(".fd-select").focus();
    }

    // Alt+Up and Alt+Down move the focused item (or step) within its list: reordering without a mouse.
    canvas.addEventListener("keydown", (event) => {
      if (!event.altKey || !["ArrowUp", "ArrowDown"].includes(event.key) || !event.target.closest(".fd-select")) return;
      const object = objectOf.get(event.target.closest(".fd-item, .fd-step"));
      const list = object.items && object.group === undefined ? body.layout.steps : locate(object).list;
      const index = list.indexOf(object);
      const next = index + (event.key === "ArrowUp" ? -1 : 1);
      event.preventDefault();
      if (next < 0 || next >= list.length) return;
      list.splice(index, 1);
      list.splice(next, 0, object);
      changed();
      focusObject(object);
    });

    root.querySelector(".fd-form-select").addEventListener("click", () => select(null));
    root.querySelector(".fd-add-step").addEventListener("click", () => {
      const step = {key: freeKey("step"), label: text.new_step, items: []};
      body.layout.steps.push(step);
      selected = {kind: "step", object: step};
      changed({panel: true});
      focusObject(step);
    });

    /* ---- Palette ---- */

    function renderPalette() {
      const bound = entity();
      const used = new Set(Object.keys(body.fields));
      const entry = (widget, label, extra) => el("li", {class: "fd-palette-item", "data-widget": widget, ...extra}, [
        el("button", {type: "button", class: "fd-palette-add", text: label})]);
      const items = [];
      if (bound) { // The bound entity's fields not on the form yet come first: what a bound form is made of.
        const unused = bound.fields.filter((field) => !used.has(field.key));
        if (unused.length) items.push(el("li", {class: "fd-palette-heading", text: bound.label}));
        unused.forEach((field) => items.push(entry(field.spec.widget, field.label, {"data-entity-field": field.key})));
        items.push(el("li", {class: "fd-palette-heading", text: text.widgets}));
      }
      items.push(entry("__group", text.group), ...Object.entries(config.widgets).map(([type, widget]) => entry(type, widget.label)));
      palette.replaceChildren(...items);
    }
    root.querySelector(".fd-palette-help").textContent = text.palette_help;
    palette.addEventListener("click", (event) => {
      const node = event.target.closest(".fd-palette-item");
      if (!node) return;
      const item = node.dataset.widget === "__group" ? addGroup() : addField(node.dataset.widget,
        node.dataset.entityField ? entity().fields.find((field) => field.key === node.dataset.entityField) : null);
      insert(item);
      selected = item.group !== undefined ? {kind: "group", object: item} : {kind: "field", key: item.field};
      changed({panel: true});
      const first = panel.querySelector("input, select, textarea");
      if (first) first.focus();
    });
    if (window.Sortable) {
      window.Sortable.create(palette, {group: {name: "fd-items", pull: "clone", put: false}, sort: false, forceFallback: true,
        draggable: ".fd-palette-item", animation: 150,
        onEnd: (event) => { if (event.to !== palette) setTimeout(changedAfterDrop); }});
    }
    function changedAfterDrop() {
      readCanvas();
      const first = panel.querySelector("input, select, textarea");
      if (first) first.focus();
    }

    /* ---- Properties panel ---- */

    function row(label, input, help) {
      return D.optionRow(label, input, help);
    }
    function textInput(value, onInput, attributes) {
      const input = el("input", {type: "text", value: value || "", ...attributes});
      input.addEventListener("input", () => onInput(input.value));
      return input;
    }
    function section(title, children) {
      return el("div", {class: "designer-section"}, [el("h3", {text: title}), ...children]);
    }
    function set(object, name, value) {
      if (value === "" || value === undefined || value === null) delete object[name];
      else object[name] = value;
    }

    function expressionEditor(label, value, onChange, isCondition) {
      const area = el("textarea", {rows: "2", class: "designer-formula"});
      area.value = value || "";
      const result = el("p", {class: "designer-status", "aria-live": "polite"});
      const insertText = (snippet) => {
        const start = area.selectionStart ?? area.value.length;
        area.value = area.value.slice(0, start) + snippet + area.value.slice(area.selectionEnd ?? start);
        area.focus();
        area.dispatchEvent(new Event("input"));
      };
      const fields = el("select", {"aria-label": text.insert_field});
      const listFields = () => fields.replaceChildren(el("option", {value: "", text: text.insert_field}),
        ...Object.keys(body.fields).filter(dataWidget).map((key) => el("option", {value: key, text: `${body.fields[key].label || key} (${key})`})));
      listFields();
      fields.addEventListener("focus", listFields);
      fields.addEventListener("change", () => { if (fields.value) insertText(fields.value); fields.value = ""; });
      const functions = el("select", {"aria-label": text.insert_function}, [el("option", {value: "", text: text.insert_function}),
        ...config.functions.map((name) => el("option", {value: name, text: `${name}()`}))]);
      functions.addEventListener("change", () => { if (functions.value) insertText(`${functions.value}()`); functions.value = ""; });
      let timer = null;
      let asked = 0;
      const check = () => {
        if (!area.value.trim()) { result.textContent = ""; return; }
        const question = ++asked;
        result.className = "designer-status";
        result.textContent = text.checking;
        post(config.urls.check, {body, expression: area.value, condition: isCondition}).then(({data}) => {
          if (question !== asked) return;
          const problems = data.errors || data.expression || [];
          result.className = "designer-status " + (problems.length ? "is-invalid" : "is-valid");
          result.textContent = problems.length ? problems.map((problem) => problem.message).join(" ")
            : format(text.valid, {type: data.type});
        }).catch(() => { if (question === asked) result.textContent = ""; });
      };
      area.addEventListener("input", () => {
        onChange(area.value.trim());
        clearTimeout(timer);
        timer = setTimeout(check, 300);
      });
      const node = row(label, area, null);
      node.classList.add("designer-option-wide", "fd-expression");
      node.insertBefore(el("div", {class: "designer-pickers"}, [fields, functions]), area);
      node.append(result);
      check();
      return node;
    }

    function moveTo(object) {
      const place = locate(object);
      const select = el("select", {}, [el("option", {value: "", text: "—"})]);
      const targets = [];
      body.layout.steps.forEach((step, index) => {
        targets.push(step);
        select.append(el("option", {value: String(targets.length - 1), text: `${index + 1}. ${step.label || step.key}`}));
        if (object.group === undefined) {
          walk(step.items, (item) => {
            if (item.group === undefined || item === object) return;
            targets.push(item);
            select.append(el("option", {value: String(targets.length - 1), text: `— ${item.label || item.group}`}));
          });
        }
      });
      select.addEventListener("change", () => {
        const target = targets[Number(select.value)];
        if (!target || target === place.group || target === place.step && !place.group) return;
        place.list.splice(place.index, 1);
        target.items.push(object);
        changed({panel: true});
        focusObject(object);
      });
      return row(text.move_to, select, text.move_help);
    }

    function removeButton() {
      const button = el("button", {type: "button", class: "button fd-remove", text: text.remove});
      button.addEventListener("click", removeSelected);
      return el("div", {class: "designer-remove"}, [button]);
    }

    function errorList(object) {
      const list = errorsOf(object);
      return list.length ? el("ul", {class: "errorlist fd-panel-errors"}, list.map((error) => el("li", {text: error.message}))) : null;
    }

    function rulesFor(key, property) {
      const rules = [];
      const numberRule = (name, label) => {
        const input = el("input", {type: "number", step: "any", value: property[name] ?? "", "data-rule": name});
        input.addEventListener("input", () => {
          set(property, name, input.value === "" || Number.isNaN(Number(input.value)) ? undefined : Number(input.value));
          changed({canvas: false});
        });
        return row(label, input);
      };
      if (property.type === "string" && !property.format && !property.enum) {
        rules.push(numberRule("minLength", text.min_length), numberRule("maxLength", text.max_length));
        const pattern = textInput(property.pattern, (value) => { set(property, "pattern", value); changed({canvas: false}); },
          {"data-rule": "pattern", class: "designer-monospace"});
        rules.push(row(text.pattern, pattern));
      }
      if (property.type === "number" || property.type === "integer") {
        rules.push(numberRule("minimum", text.minimum), numberRule("maximum", text.maximum),
          numberRule("exclusiveMinimum", text.exclusive_minimum), numberRule("exclusiveMaximum", text.exclusive_maximum));
      }
      if (property.type === "array") rules.push(numberRule("minItems", text.min_items), numberRule("maxItems", text.max_items));
      return rules.length ? section(text.rules, [el("div", {class: "designer-options"}, rules)]) : null;
    }

    /* Choices of select, radio and multi select: "value" or "value: label" per line; mirrored
       into the schema's enum so the data is checked against them. */
    function choicesEditor(spec) {
      return (context) => {
        const area = el("textarea", {rows: "4", "data-option": "choices"});
        area.value = (context.value || []).map((choice) => (choice.label && choice.label !== choice.value ? `${choice.value}: ${choice.label}` : choice.value)).join("\n");
        area.addEventListener("input", () => {
          const choices = area.value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
            const [value, ...label] = line.split(":");
            return label.length ? {value: value.trim(), label: label.join(":").trim()} : {value: value.trim()};
          }).filter((choice) => choice.value);
          context.set(choices.length ? choices : undefined);
          const property = body.schema.properties[Object.keys(body.fields).find((name) => body.fields[name] === spec)];
          if (property && !body.entity) {
            const target = property.type === "array" ? (property.items = property.items || {type: "string"}) : property;
            set(target, "enum", choices.length ? choices.map((choice) => choice.value) : undefined);
          }
        });
        const node = row(context.label || text.choices, area, text.choices_help);
        node.classList.add("designer-option-wide");
        return node;
      };
    }

    /* A relation picker's entity: one of the published entities. */
    function entityEditor(context) {
      const select = el("select", {"data-option": "entity"}, [el("option", {value: "", text: "—"}),
        ...config.entities.map((item) => el("option", {value: item.key, text: `${item.label} (${item.key})`}))]);
      select.value = context.value || "";
      select.addEventListener("change", () => context.set(select.value || undefined));
      return row(context.label, select);
    }

    function fieldPanel(key) {
      const spec = body.fields[key];
      const item = itemOfField(key);
      const widget = config.widgets[spec.widget] || {schema: {}};
      const property = body.schema.properties[key];
      const parts = [errorList(item)];
      const bound = entity();

      const label = textInput(spec.label, (value) => {
        set(spec, "label", value);
        if (newKeys.has(key) && slug(value) && !(slug(value) in body.fields) && !keyInput.dataset.manual) {
          const next = slug(value);
          renameField(key, next);
          key = next;
          keyInput.value = next;
        }
        changed();
      });
      const keyInput = textInput(key, () => { keyInput.dataset.manual = "1"; }, {maxlength: "50", list: bound ? "fd-entity-keys" : null});
      const keyStatus = el("p", {class: "designer-status", "aria-live": "polite"});
      keyInput.addEventListener("change", () => {
        const next = keyInput.value.trim();
        keyStatus.textContent = "";
        if (next === key) return;
        if (!/^[a-z][a-z0-9_]{0,49}$/.test(next) || next in body.fields) {
          keyStatus.className = "designer-status is-invalid";
          keyStatus.textContent = next in body.fields ? text.key_taken : text.key_invalid;
          return;
        }
        renameField(key, next);
        const entityField = bound && bound.fields.find((field) => field.key === next);
        if (entityField && (!spec.label || spec.label === widget.label)) spec.label = entityField.label;
        changed({panel: true});
      });
      const widgetSelect = el("select", {}, Object.entries(config.widgets).map(([type, info]) => el("option", {value: type, text: info.label})));
      widgetSelect.value = spec.widget;
      widgetSelect.addEventListener("change", () => {
        const next = config.widgets[widgetSelect.value];
        spec.widget = widgetSelect.value;
        spec.options = {};
        delete spec.options;
        if (!next.data) delete body.schema.properties[key];
        else if (!property || property.type !== next.data.type || property.format !== next.data.format) body.schema.properties[key] = clone(next.data);
        changed({panel: true});
      });
      const width = el("select", {"data-prop": "width"}, Array.from({length: 12}, (_v, index) => el("option", {value: String(index + 1), text: String(index + 1)})));
      width.value = String(item.width || 12);
      width.addEventListener("change", () => { item.width = Number(width.value); changed(); });
      const basics = [row(text.label, label), row(text.key, keyInput), row(text.widget, widgetSelect), row(text.width, width)];
      basics[1].append(keyStatus);
      if (widget.data) {
        const box = el("input", {type: "checkbox", checked: required().includes(key)});
        box.addEventListener("change", () => {
          body.schema.required = required().filter((name) => name !== key).concat(box.checked ? [key] : []);
          changed();
        });
        const id = D.newId("fd-required");
        box.id = id;
        basics.push(el("div", {class: "designer-flags"}, [el("label", {class: "designer-flag", for: id}, [box, " " + text.required])]));
      }
      parts.push(el("div", {class: "designer-grid"}, basics));
      if (spec.widget === "paragraph") {
        const area = el("textarea", {rows: "3"});
        area.value = spec.text || "";
        area.addEventListener("input", () => { spec.text = area.value; changed(); });
        parts.push(row(text.text, area));
      } else {
        parts.push(el("div", {class: "designer-grid"}, [
          row(text.help, textInput(spec.help, (value) => { set(spec, "help", value); changed({canvas: false}); })),
          row(text.placeholder, textInput(spec.placeholder, (value) => { set(spec, "placeholder", value); changed({canvas: false}); })),
          row(text.default, textInput(spec.default === undefined || spec.default === null ? "" : (typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default)), (value) => {
            let parsed = value;
            if (value !== "" && property && property.type !== "string") {
              try { parsed = JSON.parse(value); } catch (error) { parsed = value; }
            }
            set(spec, "default", parsed);
            changed({canvas: false});
          }))]));
      }
      if (property) parts.push(rulesFor(key, property));
      const options = D.schemaForm(widget.schema, spec.options || {}, {
        editors: {choices: choicesEditor(spec), entity: entityEditor},
        onChange: (values) => { set(spec, "options", Object.keys(values).length ? values : undefined); changed({canvas: false}); },
      });
      if (options.children.length) parts.push(section(text.options, [el("div", {class: "designer-options"}, [...options.children])]));
      parts.push(section(text.conditions, [el("p", {class: "help", text: text.condition_help}),
        ...(widget.data ? ["show_when", "require_when", "enable_when", "value"] : ["show_when"]).map((name) =>
          expressionEditor(text[name], spec[name], (value) => { set(spec, name, value); changed(); }, name !== "value"))]));
      parts.push(moveTo(item), removeButton());
      return parts;
    }

    function containerPanel(object, isStep) {
      const keyName = isStep ? "key" : "group";
      const keyInput = textInput(object[keyName], (value) => {
        if (/^[a-z][a-z0-9_]{0,49}$/.test(value)) { object[keyName] = value; changed(); }
      }, {maxlength: "50"});
      const parts = [errorList(object), el("div", {class: "designer-grid"}, [
        row(text.label, textInput(object.label, (value) => { set(object, "label", value); changed(); })),
        row(text.key, keyInput)])];
      if (!isStep) {
        const columns = el("select", {}, Array.from({length: 12}, (_v, index) => el("option", {value: String(index + 1), text: String(index + 1)})));
        columns.value = String(object.width || 12);
        columns.addEventListener("change", () => { object.width = Number(columns.value); changed(); });
        parts.push(row(text.width, columns));
      }
      parts.push(section(text.conditions, [el("p", {class: "help", text: text.condition_help}),
        ...["show_when", "enable_when"].map((name) => expressionEditor(text[name], object[name],
          (value) => { set(object, name, value); changed(); }, true))]));
      if (!isStep) parts.push(moveTo(object));
      if (!isStep || body.layout.steps.length > 1) parts.push(removeButton());
      return parts;
    }

    function formPanel() {
      const parts = [errorList(null), el("div", {class: "designer-grid"}, [
        row(text.label, textInput(body.label, (value) => { body.label = value; changed({canvas: false}); })),
        row(text.description, textInput(body.description, (value) => { set(body, "description", value); changed({canvas: false}); }))])];
      const entitySelect = el("select", {"data-prop": "entity"}, [el("option", {value: "", text: text.standalone}),
        ...config.entities.map((item) => el("option", {value: item.key, text: `${item.label} (${item.key})`}))]);
      entitySelect.value = body.entity || "";
      entitySelect.addEventListener("change", () => {
        set(body, "entity", entitySelect.value);
        if (body.entity) delete body.public;
        changed({panel: true});
      });
      parts.push(row(text.entity, entitySelect));
      const flag = (name, label, enabled) => {
        const box = el("input", {type: "checkbox", checked: body[name] === true, disabled: !enabled, id: D.newId("fd-flag")});
        box.addEventListener("change", () => { set(body, name, box.checked || undefined); changed({canvas: false}); });
        return el("label", {class: "designer-flag" + (enabled ? "" : " is-unavailable"), for: box.id}, [box, " " + label]);
      };
      parts.push(el("div", {class: "designer-flags"}, [flag("entity_pages", text.entity_pages, Boolean(body.entity)),
        flag("public", text.public, !body.entity)]));
      const checks = body.checks = body.checks || [];
      const checkRows = checks.map((check, index) => {
        const field = el("select", {}, [el("option", {value: "", text: "—"}),
          ...Object.keys(body.fields).map((key) => el("option", {value: key, text: key}))]);
        field.value = check.field || "";
        field.addEventListener("change", () => { set(check, "field", field.value); changed({canvas: false}); });
        const remove = el("button", {type: "button", class: "button", text: text.remove});
        remove.addEventListener("click", () => { checks.splice(index, 1); changed({panel: true}); });
        return el("div", {class: "fd-check"}, [
          expressionEditor(text.expression, check.expression, (value) => { check.expression = value; changed({canvas: false}); }, true),
          el("div", {class: "designer-grid"}, [row(text.message, textInput(check.message, (value) => { check.message = value; changed({canvas: false}); })),
            row(text.check_field, field)]), remove]);
      });
      const add = el("button", {type: "button", class: "button", text: text.add_check});
      add.addEventListener("click", () => { checks.push({expression: "", message: ""}); changed({panel: true}); });
      parts.push(section(text.checks, [...checkRows, add]));
      return parts;
    }

    function renderPanel() {
      let parts;
      let title;
      if (selected.kind === "field" && body.fields[selected.key] && itemOfField(selected.key)) {
        title = `${text.field}: ${selected.key}`;
        parts = fieldPanel(selected.key);
      } else if ((selected.kind === "group" || selected.kind === "step") && selected.object && (selected.kind === "step" ? body.layout.steps.includes(selected.object) : locate(selected.object))) {
        title = `${selected.kind === "step" ? text.step : text.group}: ${selected.object.label || ""}`;
        parts = containerPanel(selected.object, selected.kind === "step");
      } else {
        selected = {kind: "form"};
        title = text.form;
        parts = formPanel();
      }
      panel.replaceChildren(el("fieldset", {class: "designer-panel fd-panel-" + selected.kind}, [el("legend", {text: title}), ...parts.filter(Boolean)]));
      markCanvas();
    }

    const entityKeys = el("datalist", {id: "fd-entity-keys"});
    root.append(entityKeys);
    const listEntityKeys = () => entityKeys.replaceChildren(...(entity() ? entity().fields : []).map((field) => el("option", {value: field.key, text: field.label})));

    /* ---- The server: errors, save, publish, preview, JSON ---- */

    function post(url, data) {
      return fetch(url, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}, body: JSON.stringify(data)})
        .then((response) => response.json().then((answer) => ({ok: response.ok, data: answer})));
    }

    /* What an error's path names: a field (by key), a step or group (the object), or the form (null). */
    function errorTarget(path) {
      const parts = String(path || "").split("/");
      if ((parts[0] === "fields" && parts[1]) || (parts[0] === "schema" && parts[1] === "properties" && parts[2])) {
        return itemOfField(parts[0] === "fields" ? parts[1] : parts[2]);
      }
      if (parts[0] === "layout" && parts[1] === "steps" && parts[2] !== undefined) {
        let object = body.layout.steps[Number(parts[2])];
        for (let index = 3; object && parts[index] === "items" && parts[index + 1] !== undefined; index += 2) {
          object = (object.items || [])[Number(parts[index + 1])];
        }
        return object || null;
      }
      return null;
    }
    function errorsOf(object) {
      return errors.filter((error) => errorTarget(error.path) === object);
    }

    function showErrors(list) {
      errors = list;
      const box = root.querySelector(".fd-errors");
      box.hidden = !list.length;
      root.querySelector(".fd-errors-title").textContent = text.errors;
      root.querySelector(".fd-errors-list").replaceChildren(...list.map((error) => {
        const target = errorTarget(error.path);
        const button = el("button", {type: "button", class: "fd-error-link", text: error.message});
        button.addEventListener("click", () => { switchTab("design"); select(target); focusObject(target); });
        return el("li", {"data-path": error.path || ""}, [button]);
      }));
      markCanvas();
      renderPanel();
    }

    function answerErrors(data) {
      if (Array.isArray(data.body)) return data.body;
      return Object.values(data).flat().filter((error) => error && error.message);
    }

    function save(publish) {
      status.className = "fd-status";
      status.textContent = text.checking;
      return post(config.urls.save, {body, publish}).then(({ok, data}) => {
        if (!ok) {
          status.textContent = "";
          showErrors(answerErrors(data));
          return;
        }
        dirty = false;
        root.querySelector(".fd-dirty").hidden = true;
        showErrors([]);
        status.className = "fd-status is-valid";
        status.textContent = format(publish ? text.published : text.saved, {version: data.version});
        const badge = document.getElementById("fd-state");
        if (badge) {
          if (publish) badge.dataset.published = "1";
          const state = publish ? "live" : (badge.dataset.published ? "changed" : "new");
          badge.className = `design-state design-state-${state}`;
          badge.textContent = text[`state_${state}`];
        }
      }).catch(() => { status.textContent = text.failed; });
    }
    root.querySelector(".fd-save").addEventListener("click", () => save(false));
    root.querySelector(".fd-publish").addEventListener("click", () => save(true));

    // The preview's stylesheet and scripts (decimal.js, expressions, form.js, the schema module),
    // loaded once when the preview first opens: a designer that never previews does not fetch them.
    let previewMedia = null;
    function loadPreviewMedia() {
      if (previewMedia) return previewMedia;
      const media = config.preview_media || {styles: [], scripts: [], modules: []};
      const load = (tag, attributes) => new Promise((resolve, reject) => {
        const element = Object.assign(document.createElement(tag), attributes);
        element.addEventListener("load", resolve);
        element.addEventListener("error", reject);
        document.head.appendChild(element);
      });
      media.styles.forEach((href) => load("link", {rel: "stylesheet", href}));
      // Classic scripts in order (each may use the one before), then the modules.
      previewMedia = media.scripts.reduce((loaded, src) => loaded.then(() => load("script", {src})), Promise.resolve())
        .then(() => Promise.all(media.modules.map((src) => load("script", {src, type: "module"}))));
      return previewMedia;
    }

    function refreshPreview() {
      const holder = root.querySelector(".fd-preview");
      Promise.all([post(config.urls.preview, {body}), loadPreviewMedia()]).then(([{ok, data}]) => {
        if (!ok) { showErrors(answerErrors(data)); return; }
        holder.innerHTML = data.html;
        if (window.LowcodeForms && typeof window.LowcodeForms.init === "function") window.LowcodeForms.init(holder);
      }).catch(() => { holder.textContent = text.failed; });
    }

    function showJSON() {
      root.querySelector(".fd-json").value = JSON.stringify(body, null, 2);
    }
    root.querySelector(".fd-json-apply").addEventListener("click", () => {
      const result = root.querySelector(".fd-json-status");
      let parsed;
      try {
        parsed = JSON.parse(root.querySelector(".fd-json").value);
      } catch (error) {
        result.className = "fd-json-status designer-status is-invalid";
        result.textContent = format(text.json_invalid, {error: error.message});
        return;
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        result.className = "fd-json-status designer-status is-invalid";
        result.textContent = format(text.json_invalid, {error: "{…}"});
        return;
      }
      body = normalize(parsed);
      selected = {kind: "form"};
      changed({panel: true});
      post(config.urls.validate, {body}).then(({ok, data}) => {
        showErrors(ok ? [] : answerErrors(data));
        result.className = "fd-json-status designer-status " + (ok ? "is-valid" : "is-invalid");
        result.textContent = ok ? text.json_applied : text.errors;
      });
    });

    function switchTab(name) {
      root.querySelectorAll(".fd-tab").forEach((tab) => {
        const on = tab.id === `fd-tab-${name}`;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
        document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
      });
      if (name === "json") showJSON();
      if (name === "preview") refreshPreview();
    }
    const tabs = [...root.querySelectorAll(".fd-tab")];
    tabs.forEach((tab, index) => {
      tab.addEventListener("click", () => switchTab(tab.id.replace("fd-tab-", "")));
      tab.addEventListener("keydown", (event) => {
        if (!["ArrowLeft", "ArrowRight"].includes(event.key)) return;
        const next = tabs[(index + (event.key === "ArrowLeft" ? tabs.length - 1 : 1)) % tabs.length];
        next.focus();
        next.click();
      });
    });

    listEntityKeys();
    renderPalette();
    renderCanvas();
    renderPanel();
    switchTab("design");
    root.dataset.ready = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
