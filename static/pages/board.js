// Kanban drag and drop (pages/board_kanban.html, SortableJS): a card dropped in another column
// posts its new value to the card's data-url; the records service decides. Refused, the card goes
// back and the server's message shows; a locked card (data-locked) does not move and says why.
// Without this script each card's "Move to" form does the same.
(function () {
  "use strict";

  const board = document.querySelector(".pg-kanban");
  const message = document.getElementById("pg-board-message");
  if (!board || !window.Sortable) return;
  const token = board.querySelector("input[name=csrfmiddlewaretoken]").value;

  function say(text, kind) {
    message.textContent = text;
    message.className = "pg-message pg-" + kind;
    message.setAttribute("role", kind === "error" ? "alert" : "status");
    message.hidden = false;
  }

  function addToCount(list, delta) {
    const count = list.closest(".pg-kanban-column").querySelector(".pg-kanban-count");
    const value = Number(count.dataset.count) + delta;
    count.dataset.count = String(value);
    count.textContent = String(value);
  }

  function putBack(card, from, index) {
    from.insertBefore(card, from.children[index] || null);
  }

  function firstMessage(errors) {
    for (const items of Object.values(errors)) {
      if (Array.isArray(items) && items.length) return items[0].message;
    }
    return errors.detail || "";
  }

  async function move(event) {
    const card = event.item;
    const from = event.from;
    const to = event.to;
    addToCount(from, -1);
    addToCount(to, 1);
    const body = new FormData();
    body.append("field", board.dataset.field);
    body.append("value", to.dataset.value);
    let answer = null;
    let failure = "";
    try {
      const response = await fetch(card.dataset.url, {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"Accept": "application/json", "X-CSRFToken": token},
      });
      answer = await response.json().catch(() => ({}));
      if (!response.ok) failure = firstMessage(answer) || response.statusText;
    } catch (error) {
      failure = String(error);
    }
    if (failure) {
      addToCount(from, 1);
      addToCount(to, -1);
      putBack(card, from, event.oldIndex);
      say(failure, "error");
      return;
    }
    const select = card.querySelector(".pg-move select");
    if (select) select.value = to.dataset.value;
    say(board.dataset.moved.replace("%(record)s", card.querySelector(".pg-board-title").textContent)
      .replace("%(column)s", to.dataset.label), "success");
  }

  for (const list of board.querySelectorAll(".pg-kanban-cards")) {
    Sortable.create(list, {
      group: "kanban",
      animation: 150,
      // Mouse and touch events rather than HTML5 drag and drop: the same on every device, and
      // a link inside a card is not dragged on its own.
      forceFallback: true,
      fallbackTolerance: 4,
      filter: "select, button, summary, input, label",
      preventOnFilter: false,
      onMove: (event) => !event.dragged.dataset.locked,
      onEnd: (event) => {
        if (event.item.dataset.locked) {
          putBack(event.item, event.from, event.oldIndex);
          say(event.item.dataset.locked, "error");
        } else if (event.from !== event.to) {
          move(event);
        }
      },
    });
  }
}());
