/* The entity designer (issue 12): each field of the Field formset as a list item and a panel.
   The panel's widgets write the form's own inputs (options and default as JSON in the
   "Advanced: JSON" part), so the page posts the same formset as without JavaScript and the
   server validates and saves it as always. */
(function () {
  "use strict";

  const D = window.LowcodeDesigner;
  const el = D.el;

  function init() {
    const root = document.getElementById("entity-designer");
    const configElement = document.getElementById("entity-designer-config");
    if (!root || !configElement || !D) return;
    const config = JSON.parse(configElement.textContent);
    const text = config.text;
    const prefix = root.dataset.prefix;

    const panels = () => [...root.querySelectorAll(".designer-panel-pane > .designer-panel")];
    const input = (panel, name) => panel.querySelector(`[name="${prefix}-${panel.dataset.index}-${name}"]`);
    const parseJSON = (source, fallback) => {
      try {
        return source.trim() === "" ? fallback : JSON.parse(source);
      } catch (error) {
        return fallback;
      }
    };
    const options = (panel) => {
      const value = parseJSON(input(panel, "options").value, {});
      return value && typeof value === "object" && !Array.isArray(value) ? value : {};
    };
    const typeOf = (panel) => config.types[input(panel, "type").value] || {schema: {}, default: null};
    const isRemoved = (panel) => {
      const box = input(panel, "DELETE");
      return Boolean(box && box.checked);
    };

    /* The fields as expressions see them: the other fields of the design, unsaved. */
    function fieldSpecs(except) {
      return panels().filter((panel) => panel !== except && !isRemoved(panel) && input(panel, "key").value)
        .map((panel) => ({key: input(panel, "key").value, type: input(panel, "type").value,
          options: options(panel), encrypted: input(panel, "encrypted").checked}));
    }

    function itemFor(index) {
      return el("li", {class: "designer-item", "data-index": index}, [
        el("span", {class: "designer-handle", title: text.move, "aria-hidden": "true", text: "⠿"}),
        el("button", {type: "button", class: "designer-select"}, [
          el("span", {class: "designer-item-label"}), el("span", {class: "designer-item-meta"})])]);
    }

    /* The display field and the ordering offer the design's field keys as they are typed. */
    const keyList = el("datalist", {id: "designer-field-keys"});
    root.append(keyList);
    ["id_display_field", "id_ordering"].forEach((id) => {
      const box = document.getElementById(id);
      if (box) box.setAttribute("list", keyList.id);
    });
    function listKeys() {
      keyList.replaceChildren(...panels().filter((panel) => !isRemoved(panel) && input(panel, "key").value)
        .map((panel) => el("option", {value: input(panel, "key").value})));
    }

    function refreshItem(panel) {
      listKeys();
      const item = root.querySelector(`.designer-item[data-index="${panel.dataset.index}"]`);
      if (!item) return;
      const key = input(panel, "key").value;
      const type = input(panel, "type");
      item.querySelector(".designer-item-label").textContent = input(panel, "label").value || key || text.new_field;
      item.querySelector(".designer-item-meta").textContent =
        [key, type.options[type.selectedIndex] ? type.options[type.selectedIndex].text : ""].filter(Boolean).join(" · ");
      item.classList.toggle("is-removed", isRemoved(panel));
      panel.classList.toggle("is-removed", isRemoved(panel));
    }

    /* ---- Editors of particular options ---- */

    function choicesEditor(context) {
      const table = el("table", {class: "designer-choices"});
      const body = el("tbody");
      table.append(body);
      const write = () => {
        const choices = [...body.rows].map((row) => {
          const [value, label, colour] = ["value", "label", "colour"].map((name) => row.querySelector(`[data-choice=${name}]`));
          const choice = {value: value.value.trim()};
          if (label.value.trim()) choice.label = label.value.trim();
          if (colour.dataset.set === "1") choice.color = colour.value;
          return choice;
        }).filter((choice) => choice.value || choice.label);
        context.set(choices.length ? choices : undefined);
      };
      const addRow = (choice) => {
        const value = el("input", {type: "text", "data-choice": "value", value: choice.value || "",
          placeholder: text.value, "aria-label": text.value, maxlength: "64"});
        const label = el("input", {type: "text", "data-choice": "label", value: choice.label || "",
          placeholder: text.label, "aria-label": text.label, maxlength: "200"});
        const colour = el("input", {type: "color", "data-choice": "colour", value: choice.color || "#ffffff",
          "aria-label": text.colour, title: text.colour});
        colour.dataset.set = choice.color ? "1" : "";
        const clear = el("button", {type: "button", class: "button designer-choice-clear", title: text.no_colour,
          "aria-label": text.no_colour, text: "∅"});
        const remove = el("button", {type: "button", class: "button designer-choice-remove", text: text.remove});
        // A value follows its label until someone types a value of their own.
        value.dataset.manual = choice.value ? "1" : "";
        value.addEventListener("input", () => { value.dataset.manual = value.value ? "1" : ""; write(); });
        label.addEventListener("input", () => {
          if (!value.dataset.manual) value.value = label.value.trim().toLowerCase().replace(/\s+/g, "_").slice(0, 64);
          write();
        });
        colour.addEventListener("input", () => { colour.dataset.set = "1"; write(); });
        clear.addEventListener("click", () => { colour.dataset.set = ""; colour.value = "#ffffff"; write(); });
        remove.addEventListener("click", () => { row.remove(); write(); });
        const row = el("tr", {}, [el("td", {class: "designer-handle", text: "⠿", title: text.drag}),
          el("td", {}, [value]), el("td", {}, [label]), el("td", {class: "designer-choice-colour"}, [colour, clear]),
          el("td", {}, [remove])]);
        body.append(row);
        return row;
      };
      (Array.isArray(context.value) ? context.value : []).forEach(addRow);
      if (window.Sortable) window.Sortable.create(body, {handle: ".designer-handle", animation: 150, onEnd: write});
      const add = el("button", {type: "button", class: "button designer-choice-add", text: text.add_choice});
      add.addEventListener("click", () => addRow({}).querySelector("[data-choice=label]").focus());
      return el("div", {class: "designer-option designer-option-wide", "data-option": "choices"}, [
        el("label", {text: context.label}), table, add, el("p", {class: "help", text: text.choice_values})]);
    }

    function targetEditor(context) {
      const select = el("select", {"data-option": "target"}, [el("option", {value: "", text: text.none}),
        ...config.entities.map((entity) => el("option", {value: entity.key, text: `${entity.label} (${entity.key})`}))]);
      if (context.value && !config.entities.some((entity) => entity.key === context.value)) {
        select.append(el("option", {value: context.value, text: context.value})); // Unknown: the server says so.
      }
      select.value = context.value || "";
      select.addEventListener("change", () => context.set(select.value || undefined));
      return D.optionRow(context.label, select);
    }

    function patternEditor(context) {
      const pattern = el("input", {type: "text", "data-option": "regex", value: context.value || "",
        maxlength: "500", class: "designer-monospace"});
      const sample = el("input", {type: "text", placeholder: text.try_value, "aria-label": text.try_value});
      const result = el("p", {class: "designer-status", "aria-live": "polite"});
      const test = () => {
        result.className = "designer-status";
        result.textContent = "";
        if (!pattern.value) return;
        let regex;
        try {
          regex = new RegExp(pattern.value);
        } catch (error) {
          result.className = "designer-status is-invalid";
          result.textContent = text.bad_pattern;
          return;
        }
        if (sample.value === "") return;
        // Python's re.search, as the server's validator applies it.
        const matches = regex.test(sample.value);
        result.className = "designer-status " + (matches ? "is-valid" : "is-invalid");
        result.textContent = matches ? text.matches : text.no_match;
      };
      pattern.addEventListener("input", () => { context.set(pattern.value || undefined); test(); });
      sample.addEventListener("input", test);
      const row = D.optionRow(context.label, pattern, null, true);
      row.append(sample, result);
      test();
      return row;
    }

    function expressionEditor(context, panel) {
      const area = el("textarea", {rows: "3", "data-option": "expression", class: "designer-formula"});
      area.value = context.value || "";
      const status = el("p", {class: "designer-status", "aria-live": "polite"});
      const insert = (snippet) => {
        const start = area.selectionStart ?? area.value.length;
        area.value = area.value.slice(0, start) + snippet + area.value.slice(area.selectionEnd ?? start);
        area.focus();
        area.selectionStart = area.selectionEnd = start + snippet.length - (snippet.endsWith(")") ? 1 : 0);
        area.dispatchEvent(new Event("input"));
      };
      const fieldPicker = el("select", {"aria-label": text.insert_field});
      const listFields = () => fieldPicker.replaceChildren(el("option", {value: "", text: text.insert_field}),
        ...fieldSpecs(panel).filter((spec) => spec.type !== "formula")
          .map((spec) => el("option", {value: spec.key, text: spec.key})));
      listFields();
      fieldPicker.addEventListener("focus", listFields); // Fields added or renamed since.
      fieldPicker.addEventListener("change", () => { if (fieldPicker.value) insert(fieldPicker.value); fieldPicker.value = ""; });
      const functionPicker = el("select", {"aria-label": text.insert_function}, [
        el("option", {value: "", text: text.insert_function}),
        ...config.functions.map((fn) => el("option", {value: fn.name, text: `${fn.name}()`}))]);
      functionPicker.addEventListener("change", () => {
        if (functionPicker.value) insert(`${functionPicker.value}()`);
        functionPicker.value = "";
      });
      let timer = null;
      let asked = 0;
      const check = () => {
        const source = area.value;
        if (!source.trim()) {
          status.textContent = "";
          return;
        }
        const question = ++asked;
        status.className = "designer-status";
        status.textContent = text.checking;
        const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
        fetch(root.dataset.checkUrl, {method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRFToken": token},
          body: JSON.stringify({entity: config.entity_key || (document.getElementById("id_key") || {}).value || "",
            fields: fieldSpecs(panel), expression: source})})
          .then((response) => response.json())
          .then((answer) => {
            if (question !== asked) return; // A later keystroke asked again.
            const errors = answer.errors || answer.expression || [];
            status.className = "designer-status " + (errors.length ? "is-invalid" : "is-valid");
            status.textContent = errors.length ? errors.map((error) => error.message).join(" ")
              : text.valid.replace("%(type)s", answer.type);
          })
          .catch(() => { if (question === asked) status.textContent = ""; });
      };
      area.addEventListener("input", () => {
        context.set(area.value || undefined);
        clearTimeout(timer);
        timer = setTimeout(check, 300);
      });
      const row = D.optionRow(context.label, area, null, true);
      row.insertBefore(el("div", {class: "designer-pickers"}, [fieldPicker, functionPicker]), area);
      row.append(status);
      check();
      return row;
    }

    /* ---- The default value, in the field's own widget ---- */

    function renderDefault(panel) {
      const section = panel.querySelector(".designer-default-section");
      const holder = panel.querySelector(".designer-default");
      const raw = input(panel, "default");
      const kind = typeOf(panel).default;
      holder.replaceChildren();
      section.hidden = !kind;
      if (!kind) return;
      const value = parseJSON(raw.value, null);
      const write = (next) => { raw.value = next === null || next === undefined ? "" : JSON.stringify(next); };
      let widget;
      if (kind === "checkbox") {
        widget = el("input", {type: "checkbox", checked: value === true});
        widget.addEventListener("change", () => write(widget.checked ? true : null));
        const id = D.newId("designer-default");
        widget.id = id;
        holder.append(el("label", {class: "designer-flag", for: id}, [widget, " " + text.default_yes]));
        return;
      }
      if (kind === "choice") {
        widget = el("select", {}, [el("option", {value: "", text: text.no_default}),
          ...(options(panel).choices || []).map((choice) => el("option", {value: choice.value, text: choice.label || choice.value}))]);
        widget.value = typeof value === "string" ? value : "";
        widget.addEventListener("change", () => write(widget.value || null));
      } else if (kind === "multiple_choice") {
        const chosen = new Set(Array.isArray(value) ? value : []);
        (options(panel).choices || []).forEach((choice) => {
          const box = el("input", {type: "checkbox", value: choice.value, checked: chosen.has(choice.value)});
          box.addEventListener("change", () => {
            const values = [...holder.querySelectorAll("input:checked")].map((item) => item.value);
            write(values.length ? values : null);
          });
          holder.append(el("label", {class: "designer-flag"}, [box, " " + (choice.label || choice.value)]));
        });
        return;
      } else if (kind === "textarea" || kind === "json") {
        widget = el("textarea", {rows: "2"});
        widget.value = value === null ? "" : (kind === "json" ? JSON.stringify(value) : String(value));
        widget.addEventListener("input", () => {
          if (kind === "textarea") write(widget.value || null);
          else raw.value = widget.value; // JSON as typed; the server says if it is not.
        });
      } else {
        const numeric = kind === "integer" || kind === "number";
        widget = el("input", {type: numeric ? "number" : kind, step: kind === "integer" ? "1" : (numeric ? "any" : undefined)});
        widget.value = value === null ? "" : String(value);
        widget.addEventListener("input", () => {
          if (widget.value === "") write(null);
          else write(numeric ? Number(widget.value) : widget.value);
        });
      }
      widget.setAttribute("aria-label", panel.querySelector(".designer-default-section h3").textContent);
      holder.append(widget);
    }

    /* ---- The options, from the type's schema ---- */

    function renderOptions(panel) {
      const holder = panel.querySelector(".designer-options");
      const type = typeOf(panel);
      const area = input(panel, "options");
      const form = D.schemaForm(type.schema, options(panel), {
        labels: config.labels,
        valueLabels: config.values,
        helps: {allowed_types: text.separated},
        editors: {
          choices: choicesEditor, target: targetEditor, regex: patternEditor,
          expression: (context) => expressionEditor(context, panel),
        },
        onChange: (values) => {
          area.value = Object.keys(values).length ? JSON.stringify(values) : "{}";
          if (type.default === "choice" || type.default === "multiple_choice") renderDefault(panel);
        },
      });
      holder.replaceChildren(...(form.children.length ? form.children : [el("p", {class: "help", text: text.no_options})]));
    }

    function applyFlags(panel, initial) {
      const type = typeOf(panel);
      const available = {unique: type.can_be_unique, index: type.can_be_unique, encrypted: type.can_encrypt,
        filterable: type.filterable, searchable: type.searchable};
      Object.entries(available).forEach(([flag, ok]) => {
        const box = input(panel, flag);
        if (!box) return;
        // A flag set before stays editable on load, so that it can be cleared; never set silently.
        const keep = initial && box.checked;
        if (!ok && !keep) box.checked = false;
        box.disabled = !ok && !keep;
        box.closest(".designer-flag").classList.toggle("is-unavailable", !ok);
      });
    }

    function setUp(panel, isNew) {
      const key = input(panel, "key");
      const label = input(panel, "label");
      const type = input(panel, "type");
      const area = input(panel, "options");
      key.dataset.manual = key.value ? "1" : "";
      key.addEventListener("input", () => { key.dataset.manual = key.value ? "1" : ""; refreshItem(panel); });
      label.addEventListener("input", () => {
        if (!key.dataset.manual) {
          key.value = label.value.trim().toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_")
            .replace(/^[^a-z]+|_+$/g, "").slice(0, 50);
        }
        refreshItem(panel);
      });
      type.addEventListener("change", () => {
        // Options the new type knows stay; the default starts again in the new widget.
        const known = (typeOf(panel).schema || {}).properties || {};
        const kept = Object.fromEntries(Object.entries(options(panel)).filter(([name]) => name in known));
        area.value = JSON.stringify(kept);
        input(panel, "default").value = "";
        applyFlags(panel, false);
        renderOptions(panel);
        renderDefault(panel);
        refreshItem(panel);
      });
      // The advanced view: JSON typed there redraws the widgets as it goes (on input, not on
      // change: a redraw on the blur of a click elsewhere would move what is being clicked).
      area.addEventListener("input", () => { renderOptions(panel); renderDefault(panel); });
      input(panel, "default").addEventListener("input", () => renderDefault(panel));
      const remove = input(panel, "DELETE");
      if (remove) remove.addEventListener("change", () => refreshItem(panel));
      if (isNew && !type.value) type.value = "text";
      applyFlags(panel, !isNew);
      renderOptions(panel);
      renderDefault(panel);
      refreshItem(panel);
    }

    function renumber(order) {
      order.forEach((index, position) => {
        const panel = root.querySelector(`.designer-panel[data-index="${index}"]`);
        input(panel, "position").value = String(position);
      });
    }

    // In the order of their positions: a form shown again after an error lists its fields as posted.
    const list = root.querySelector(".designer-list");
    const position = (item) => Number(input(root.querySelector(`.designer-panel[data-index="${item.dataset.index}"]`),
      "position").value) || 0;
    [...list.children].sort((a, b) => position(a) - position(b)).forEach((item) => list.append(item));

    const designer = D.list(root, {
      itemFor,
      onAdd: (panel) => {
        setUp(panel, true);
        renumber([...root.querySelectorAll(".designer-item")].map((item) => item.dataset.index));
        input(panel, "label").focus();
      },
      onReorder: renumber,
    });
    panels().forEach((panel) => setUp(panel, false));
    const first = panels().find((panel) => panel.classList.contains("has-errors")) || panels()[0];
    if (first) designer.select(first.dataset.index);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
