/* The designers' shell (app-layer.md "Designers share one shell"): a list of items beside a
   properties panel, items reordered by dragging (SortableJS), added from a <template>, and
   widgets generated from a JSON Schema. A designer (entity.js) supplies its editors. */
(function () {
  "use strict";

  function el(tag, attributes, children) {
    const element = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([name, value]) => {
      if (value === undefined || value === null || value === false) return;
      if (name === "text") element.textContent = value;
      else if (name in element && typeof value !== "string") element[name] = value;
      else element.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach((child) => child && element.append(child));
    return element;
  }

  function humanize(name) {
    const text = String(name).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  let uniqueId = 0;
  function newId(base) {
    uniqueId += 1;
    return `${base}-${uniqueId}`;
  }

  /* One option's row: a label above its input, a help text under it. */
  function optionRow(label, input, help, wide) {
    if (!input.id) input.id = newId("designer-option");
    return el("div", {class: "designer-option" + (wide ? " designer-option-wide" : "")}, [
      el("label", {for: input.id, text: label}), input, help ? el("p", {class: "help", text: help}) : null]);
  }

  /* The generic widget of one property of a schema: checkbox, number, select or text. */
  function genericWidget(property, value, set, valueLabels) {
    if (Array.isArray(property.enum)) {
      const select = el("select", {}, [el("option", {value: "", text: "—"}),
        ...property.enum.map((item) => el("option", {value: String(item), text: valueLabels[item] || humanize(item)}))]);
      select.value = value === undefined ? "" : String(value);
      select.addEventListener("change", () => set(select.value === "" ? undefined :
        property.enum.find((item) => String(item) === select.value)));
      return select;
    }
    if (property.type === "boolean") {
      const box = el("input", {type: "checkbox", checked: value === true});
      box.addEventListener("change", () => set(box.checked ? true : undefined));
      return box;
    }
    if (property.type === "integer" || property.type === "number") {
      const input = el("input", {type: "number", step: property.type === "integer" ? "1" : "any",
        min: property.minimum, max: property.maximum, value: value === undefined ? "" : String(value)});
      input.addEventListener("input", () => {
        if (input.value === "") set(undefined);
        else if (!Number.isNaN(Number(input.value))) set(Number(input.value));
      });
      return input;
    }
    if (property.type === "array" && property.items && property.items.type === "string") {
      const input = el("input", {type: "text", value: Array.isArray(value) ? value.join(", ") : ""});
      input.addEventListener("input", () => {
        const items = input.value.split(",").map((item) => item.trim()).filter(Boolean);
        set(items.length ? items : undefined);
      });
      return input;
    }
    if (property.type === "string") {
      const input = el("input", {type: "text", maxlength: property.maxLength,
        value: typeof value === "string" ? value : ""});
      input.addEventListener("input", () => set(input.value === "" ? undefined : input.value));
      return input;
    }
    return null; // Objects and the like: the advanced JSON view edits them.
  }

  /* Widgets for an options object from its JSON Schema. `editors[name](context)` draws an
     option of its own (choices, a relation's target...); the rest get generic widgets. Every
     change calls onChange with the whole object, empty values left out. */
  function schemaForm(schema, values, {labels = {}, valueLabels = {}, editors = {}, onChange, helps = {}}) {
    const container = el("div", {class: "designer-schema-form"});
    const current = Object.assign({}, values);
    Object.entries((schema && schema.properties) || {}).forEach(([name, property]) => {
      const set = (value) => {
        if (value === undefined) delete current[name];
        else current[name] = value;
        onChange(Object.assign({}, current));
      };
      const label = humanize(labels[name] || property.title || name);
      if (editors[name]) {
        const row = editors[name]({name, property, value: current[name], set, label});
        if (row) container.append(row);
        return;
      }
      const input = genericWidget(property, current[name], set, valueLabels);
      if (input) {
        input.dataset.option = name;
        // A schema's description is English; a plugin's options have no other help.
        container.append(optionRow(label, input, helps[name] || (labels[name] ? null : property.description)));
      }
    });
    return container;
  }

  /* The list and panel of a designer inside `root`: .designer-list items and .designer-panel
     panels share a data-index; a <template class="designer-template"> makes new ones. */
  function list(root, {onSelect, onAdd, onReorder, itemFor}) {
    const listElement = root.querySelector(".designer-list");
    const pane = root.querySelector(".designer-panel-pane");
    const template = root.querySelector("template.designer-template");
    root.classList.add("designer-js");

    function select(index) {
      root.querySelectorAll(".designer-item, .designer-panel").forEach((node) => {
        node.classList.toggle("is-selected", node.dataset.index === String(index));
      });
      const item = listElement.querySelector(`.designer-item[data-index="${index}"]`);
      if (item) item.querySelector(".designer-select").setAttribute("aria-current", "true");
      listElement.querySelectorAll(".designer-item").forEach((other) => {
        if (other !== item) other.querySelector(".designer-select").removeAttribute("aria-current");
      });
      const empty = root.querySelector(".designer-empty");
      if (empty) empty.hidden = Boolean(item);
      if (onSelect) onSelect(index);
    }

    listElement.addEventListener("click", (event) => {
      const button = event.target.closest(".designer-select");
      if (button) select(button.closest(".designer-item").dataset.index);
    });

    // Alt+Up and Alt+Down move the focused item: reordering without a mouse.
    listElement.addEventListener("keydown", (event) => {
      const item = event.target.closest(".designer-item");
      if (!item || !event.altKey || !["ArrowUp", "ArrowDown"].includes(event.key)) return;
      event.preventDefault();
      const sibling = event.key === "ArrowUp" ? item.previousElementSibling : item.nextElementSibling;
      if (!sibling) return;
      if (event.key === "ArrowUp") sibling.before(item);
      else sibling.after(item);
      event.target.focus();
      onReorder([...listElement.querySelectorAll(".designer-item")].map((node) => node.dataset.index));
    });

    if (window.Sortable) {
      window.Sortable.create(listElement, {
        handle: ".designer-handle", animation: 150, ghostClass: "designer-ghost",
        onEnd: () => onReorder([...listElement.querySelectorAll(".designer-item")].map((item) => item.dataset.index)),
      });
    }

    const addButton = root.querySelector(".designer-add");
    if (addButton && template) {
      addButton.addEventListener("click", () => {
        const total = root.querySelector(`input[name="${root.dataset.prefix}-TOTAL_FORMS"]`);
        const index = String(Number(total.value));
        const holder = document.createElement("div");
        holder.innerHTML = template.innerHTML.replace(/__prefix__/g, index);
        const panel = holder.firstElementChild;
        panel.dataset.index = index;
        pane.insertBefore(panel, template);
        total.value = String(Number(index) + 1);
        listElement.append(itemFor(index));
        onAdd(panel, index);
        select(index);
      });
    }
    return {select, listElement};
  }

  window.LowcodeDesigner = {el, humanize, newId, optionRow, schemaForm, list};
})();
