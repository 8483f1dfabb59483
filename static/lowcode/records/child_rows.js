// Ordered child rows on a record's admin page (dynamic_models ChildInline, child_inline.html): each
// row gets a drag handle (SortableJS) and "move up/down" buttons; a move renumbers the rows' order
// numbers 1..n in their new order, so the save writes only the rows whose number changed. A row
// added with "Add another" takes the next number. Without JavaScript the numbers stay editable.
(function () {
  "use strict";

  function setUp(group) {
    const field = group.dataset.orderField;
    const body = group.querySelector("tbody");
    const status = group.querySelector(".lc-child-status");
    if (!field || !body) return;
    const numberOf = (row) => row.querySelector(`td.field-${field} input`);
    const rows = () => Array.from(body.querySelectorAll("tr.form-row:not(.empty-form)")).filter(numberOf);

    function updateButtons() {
      const all = rows();
      all.forEach((row, index) => {
        row.querySelector(".lc-child-up").disabled = index === 0;
        row.querySelector(".lc-child-down").disabled = index === all.length - 1;
      });
    }

    function renumber() {
      rows().forEach((row, index) => {
        const number = numberOf(row);
        if (number.value !== String(index + 1)) number.value = String(index + 1);
      });
      updateButtons();
    }

    function announce(row) {
      const all = rows();
      status.textContent = group.dataset.moved.replace("%(position)s", all.indexOf(row) + 1)
        .replace("%(count)s", all.length);
    }

    // A row's errors (a row of their own just above it) travel with it.
    const errorsOf = (row) => {
      const above = row.previousElementSibling;
      return above && above.classList.contains("row-form-errors") ? above : null;
    };

    function move(row, step) {
      const all = rows();
      const other = all[all.indexOf(row) + step];
      if (!other) return;
      const errors = errorsOf(row);
      if (step < 0) body.insertBefore(row, errorsOf(other) || other);
      else other.after(row);
      if (errors) row.before(errors);
      renumber();
      announce(row);
    }

    function button(kind, label, symbol, step, row) {
      const element = document.createElement("button");
      element.type = "button";
      element.className = `lc-child-move lc-child-${kind}`;
      element.textContent = symbol;
      element.title = label;
      element.setAttribute("aria-label", label);
      element.addEventListener("click", () => {
        move(row, step);
        // Keep the focus on the button that moved, or on its partner at an end of the list.
        (element.disabled ? row.querySelector(step < 0 ? ".lc-child-down" : ".lc-child-up") : element).focus();
      });
      return element;
    }

    function decorate(row) {
      const number = numberOf(row);
      if (!number || row.querySelector(".lc-child-handle")) return;
      const handle = document.createElement("span");
      handle.className = "lc-child-handle";
      handle.textContent = "⠿";
      handle.title = group.dataset.drag;
      handle.setAttribute("aria-hidden", "true");
      number.readOnly = true; // Set by the moves; the buttons are its keyboard way.
      number.classList.add("lc-child-number");
      number.tabIndex = -1;
      const cell = document.createElement("span");
      cell.className = "lc-child-order";
      number.before(cell);
      cell.append(handle, number, button("up", group.dataset.moveUp, "↑", -1, row),
        button("down", group.dataset.moveDown, "↓", 1, row));
    }

    // A refused save shows the rows in their form's first order with the numbers as moved: put them
    // in the order of their numbers again (a no-op on a saved record's page). The numbers stay as
    // they are (gaps included): only a move rewrites them.
    const template = body.querySelector("tr.empty-form");
    rows().map((row, index) => ({row, index, number: parseInt(numberOf(row).value, 10)}))
      .sort((a, b) => (isNaN(a.number) ? Infinity : a.number) - (isNaN(b.number) ? Infinity : b.number)
        || a.index - b.index)
      .forEach(({row}) => {
        const errors = errorsOf(row);
        body.insertBefore(row, template);
        if (errors) row.before(errors);
      });
    rows().forEach(decorate);
    updateButtons();

    document.addEventListener("formset:added", (event) => {
      const row = event.target;
      if (!body.contains(row)) return;
      const numbers = rows().filter((other) => other !== row).map((other) => parseInt(numberOf(other).value, 10) || 0);
      decorate(row);
      numberOf(row).value = String(Math.max(0, ...numbers) + 1);
      updateButtons();
    });
    document.addEventListener("formset:removed", () => updateButtons());

    if (window.Sortable) {
      window.Sortable.create(body, {
        handle: ".lc-child-handle",
        draggable: "tr.form-row:not(.empty-form)",
        animation: 150,
        // Mouse and touch events rather than HTML5 drag and drop: the same on every device.
        forceFallback: true,
        onStart: (event) => { event.item.lcErrors = errorsOf(event.item); },
        onEnd: (event) => {
          if (event.item.lcErrors) event.item.before(event.item.lcErrors);
          if (event.oldIndex === event.newIndex) return;
          renumber();
          announce(event.item);
        },
      });
    }
  }

  const start = () => document.querySelectorAll(".lc-child-rows[data-order-field]").forEach(setUp);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}());
