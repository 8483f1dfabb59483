// Inline editing of a table's cells (pages/table.html): a cell with data-edit becomes an input
// (or a select for choices) on click or Enter; the value is posted to the cell's data-url and the
// records service decides. Errors show in the cell; Escape cancels. Without this script each
// record's own page edits it.
(function () {
  "use strict";

  function csrfToken() {
    const input = document.querySelector("#pg-bulk input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function choicesOf(cell) {
    const id = cell.dataset.choices;
    const script = id && document.getElementById(id);
    return script ? JSON.parse(script.textContent) : null;
  }

  function editorFor(cell) {
    const choices = choicesOf(cell);
    let editor;
    if (choices) {
      editor = document.createElement("select");
      const empty = document.createElement("option");
      empty.value = "";
      empty.textContent = "—";
      editor.append(empty);
      for (const [value, label] of choices) {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = label;
        editor.append(option);
      }
    } else if (cell.dataset.type === "checkbox") {
      editor = document.createElement("input");
      editor.type = "checkbox";
    } else {
      editor = document.createElement("input");
      editor.type = cell.dataset.type || "text";
      if (editor.type === "number") editor.step = "any";
    }
    editor.value = cell.dataset.value || "";
    editor.setAttribute("aria-label", cell.closest("table").querySelectorAll("thead th")[cell.cellIndex].textContent.trim());
    return editor;
  }

  function showError(cell, message) {
    let error = cell.querySelector(".pg-cell-error");
    if (!error) {
      error = document.createElement("span");
      error.className = "pg-cell-error";
      error.setAttribute("role", "alert");
      cell.append(error);
    }
    error.textContent = message;
  }

  function finish(cell, text, value) {
    cell.dataset.value = value;
    cell.replaceChildren();
    const span = document.createElement("span");
    span.className = "pg-value";
    span.textContent = text;
    cell.append(span);
    cell.dataset.editing = "";
  }

  async function save(cell, editor, before) {
    if (editor.value === (cell.dataset.value || "")) {
      finish(cell, before, cell.dataset.value || "");
      return;
    }
    const body = new FormData();
    body.append("field", cell.dataset.edit);
    body.append("value", editor.value);
    editor.disabled = true;
    let response, data;
    try {
      response = await fetch(cell.dataset.url, {method: "POST", body, headers: {"X-CSRFToken": csrfToken()},
                                                 credentials: "same-origin"});
      data = await response.json();
    } catch (error) {
      editor.disabled = false;
      showError(cell, String(error));
      return;
    }
    editor.disabled = false;
    if (response.ok) {
      finish(cell, data.text, data.value);
      return;
    }
    const messages = data.detail ? [data.detail] :
      Object.values(data).flat().map((item) => item.message || String(item));
    showError(cell, messages.join(" "));
    editor.focus();
  }

  function start(cell) {
    if (cell.dataset.editing === "1") return;
    cell.dataset.editing = "1";
    const before = cell.textContent.trim();
    const editor = editorFor(cell);
    cell.replaceChildren(editor);
    editor.focus();
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        finish(cell, before, cell.dataset.value || "");
        cell.focus();
      } else if (event.key === "Enter") {
        event.preventDefault();
        save(cell, editor, before);
      }
    });
    editor.addEventListener("change", () => save(cell, editor, before));
  }

  for (const cell of document.querySelectorAll("td[data-edit]")) {
    cell.tabIndex = 0;
    cell.addEventListener("click", (event) => {
      if (event.target === cell || event.target.classList.contains("pg-value")) start(cell);
    });
    cell.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === cell) {
        event.preventDefault();
        start(cell);
      }
    });
  }
})();
