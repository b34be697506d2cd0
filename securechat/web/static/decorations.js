// What a message row shows besides its text: the quote it replies to, "edited",
// "deleted", its reactions (buttons: click to add or take back yours) and its actions
// (Reply, React, Edit, Delete). Network text only ever becomes Text nodes.
import { el } from "./render.js";
import { QUICK_REACTIONS } from "./features.js";

// view: { quote, edited, reactions: [{text, count, nicks, mine}], own, canAct }
// on: { reply(), react(text), edit(), remove() }
export function decorate(row, message, view, on) {
  const body = row.querySelector(".text");
  if (message.redacted) {
    row.classList.add("deleted");
    return row;
  }
  if (view.quote && body) {
    const quote = el("span", "quote", `↪ ${view.quote}`);
    body.prepend(quote);
  }
  if (view.edited && body) body.append(el("span", "edited", " (edited)"));
  const extra = el("div", "extras");
  if (view.reactions.length) extra.append(reactionBar(view.reactions, on));
  if (view.canAct) extra.append(actions(view, on));
  if (extra.childElementCount) row.append(extra);
  return row;
}

function reactionBar(reactions, on) {
  const bar = el("div", "reactions");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Reactions");
  for (const r of reactions) {
    const button = el("button", "reaction", `${r.text} ${r.count}`);
    button.type = "button";
    button.setAttribute("aria-pressed", String(r.mine));
    button.title = `${r.nicks.join(", ")} — click to ${r.mine ? "take yours back" : "add yours"}`;
    button.addEventListener("click", () => on.react(r.text));
    bar.append(button);
  }
  return bar;
}

function actions(view, on) {
  const bar = el("div", "actions");
  const add = (label, handler, className = "") => {
    const button = el("button", `action ${className}`.trim(), label);
    button.type = "button";
    button.addEventListener("click", handler);
    bar.append(button);
    return button;
  };
  add("Reply", on.reply);
  const pick = add("React", () => {
    picker.hidden = !picker.hidden;
    pick.setAttribute("aria-expanded", String(!picker.hidden));
  });
  pick.setAttribute("aria-expanded", "false");
  const picker = el("div", "picker");
  picker.hidden = true;
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", "Pick a reaction");
  for (const text of QUICK_REACTIONS) {
    const button = el("button", "pick", text);
    button.type = "button";
    button.setAttribute("aria-label", `React ${text}`);
    button.addEventListener("click", () => {
      picker.hidden = true;
      on.react(text);
    });
    picker.append(button);
  }
  if (view.own) {
    add("Edit", on.edit);
    // Two steps: a stray click never deletes.
    const remove = add("Delete", () => {
      if (remove.dataset.armed) on.remove();
      else {
        remove.dataset.armed = "1";
        remove.textContent = "Confirm delete";
      }
    }, "danger");
  }
  bar.append(picker);
  return bar;
}

export function deletedText(message) {
  return message.redactedBy ? `(message deleted by ${message.redactedBy})` : "(message deleted)";
}
