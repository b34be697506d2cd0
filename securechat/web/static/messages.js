// One row of the log: a message, a day divider, a run of joins and parts. Network text only
// ever becomes Text nodes (render.js); decorations.js adds replies, reactions and actions.
import { dayText, el, nickNode, richText, timeText } from "./render.js";

export function messageNode(message) {
  const row = el("div", `msg msg-${message.kind}`);
  if (message.msgid) row.dataset.msgid = message.msgid;
  const date = new Date(message.time);
  const time = el("time", "time", timeText(date));
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
  row.append(time);
  if (message.kind === "message" || message.kind === "notice") {
    row.append(nickNode(message.from, "strong"));
    const body = el("span", "text");
    body.append(richText(message.text));
    row.append(body);
  } else if (message.kind === "action") {
    const body = el("span", "text");
    body.append("* ", nickNode(message.from), " ", richText(message.text));
    row.append(body);
  } else {
    const body = el("span", "text");
    body.append(richText(message.text));
    row.append(body);
  }
  if (message.mention) row.classList.add("mention");
  if (message.self) row.classList.add("self");
  return row;
}

export function dayNode(date) {
  const node = el("div", "day");
  node.append(el("span", "", dayText(date)));
  return node;
}

export function sameDay(a, b) {
  return a && new Date(a.time).toDateString() === new Date(b.time).toDateString();
}

// Joins, parts and quits in a row become one line.
export function foldedNode(events) {
  const row = el("div", "msg msg-event");
  const date = new Date(events[events.length - 1].time);
  row.append(el("time", "time", timeText(date)));
  const text = events.length === 1 ? events[0].text : summarize(events);
  row.append(el("span", "text", text));
  return row;
}

function summarize(events) {
  const joined = [...new Set(events.filter((e) => e.event === "join").map((e) => e.who))];
  const left = [...new Set(events.filter((e) => e.event === "part").map((e) => e.who))];
  const other = events.filter((e) => e.event !== "join" && e.event !== "part");
  const parts = [];
  if (joined.length) parts.push(`${joined.join(", ")} joined`);
  if (left.length) parts.push(`${left.join(", ")} left`);
  for (const e of other) parts.push(e.text);
  return parts.join("; ");
}
