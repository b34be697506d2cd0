// Turning network text into DOM nodes. Every string from the network becomes a Text node
// (textContent), never HTML; links are <a> elements made here, http and https only.

const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}]+$/;

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// Text with its http(s) links clickable; everything else stays text.
export function richText(text) {
  const fragment = document.createDocumentFragment();
  const clean = text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ""); // IRC colour/format codes
  let at = 0;
  for (const match of clean.matchAll(LINK)) {
    let found = match[0];
    const trail = found.match(TRAILING);
    if (trail) found = found.slice(0, -trail[0].length);
    const href = safeUrl(found);
    if (!href) continue;
    fragment.append(clean.slice(at, match.index));
    const a = el("a", "link", found);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    fragment.append(a);
    at = match.index + found.length;
  }
  fragment.append(clean.slice(at));
  return fragment;
}

export function nickHue(nick) {
  let hash = 0;
  for (const c of nick.toLowerCase()) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return hash % 360;
}

export function nickNode(nick, tag = "span") {
  const node = el(tag, "nick", nick);
  node.style.setProperty("--hue", String(nickHue(nick)));
  return node;
}

export function timeText(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

export function dayText(date) {
  return date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}
