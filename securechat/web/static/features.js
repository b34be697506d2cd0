// IRCv3 chat features, as plain data and rules (no DOM, no socket): reactions, typing,
// read markers, replies and edits, multiline. app.js feeds them and draws the result.
//   +draft/react, +draft/unreact   client-tags/react.md (with +draft/reply)
//   +typing                        client-tags/typing.md
//   draft/read-marker (MARKREAD)   extensions/read-marker.md
//   draft/message-redaction        extensions/message-redaction.md
//   draft/multiline                extensions/multiline.md

export const THROTTLE_MS = 3000; // "not sent within 3 seconds of another one for a given target"
export const PAUSE_AFTER_MS = 5000; // no keystroke for this long, text left: paused
export const ACTIVE_EXPIRES_MS = 6000;
export const PAUSED_EXPIRES_MS = 30000;
export const MAX_REACTIONS = 100; // per message
export const MAX_REACTION_BYTES = 64; // UTF-8, as our server's max_reaction_bytes
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "👀"];
const LINE_BYTES = 400; // text per PRIVMSG inside a multiline batch (prefix and tags fit around it)

const fold = (nick) => nick.replace(/[A-Z]/g, (c) => c.toLowerCase());

export function replyOf(tags) {
  return tags["+draft/reply"] || tags["+reply"] || "";
}

// "timestamp=2026-01-02T12:00:00.000Z" -> milliseconds; "*" or junk -> null
export function parseMarker(param) {
  if (!param || !param.startsWith("timestamp=")) return null;
  const parsed = Date.parse(param.slice("timestamp=".length));
  return Number.isNaN(parsed) ? null : parsed;
}

export function markerParam(time) {
  return `timestamp=${new Date(time).toISOString()}`;
}

export function validReaction(text) {
  const fits = new TextEncoder().encode(text || "").length <= MAX_REACTION_BYTES;
  return !!text && !!text.trim() && fits && !/[\x00-\x1f\x7f-\x9f]/.test(text);
}

// Everyone's reactions to one message; one per person and text.
export class Reactions {
  constructor() {
    this.items = []; // { nick, text, msgid }
  }

  add(nick, text, msgid = "") {
    if (!validReaction(text) || this.items.length >= MAX_REACTIONS) return false;
    if (this.has(nick, text) || (msgid && this.items.some((r) => r.msgid === msgid))) return false;
    this.items.push({ nick, text, msgid });
    return true;
  }

  remove(nick, text) {
    const index = this.items.findIndex((r) => r.text === text && fold(r.nick) === fold(nick));
    if (index === -1) return false;
    this.items.splice(index, 1);
    return true;
  }

  removeMsgid(msgid) {
    const index = this.items.findIndex((r) => r.msgid === msgid);
    if (index === -1) return false;
    this.items.splice(index, 1);
    return true;
  }

  has(nick, text) {
    return this.items.some((r) => r.text === text && fold(r.nick) === fold(nick));
  }

  // [{ text, count, nicks, mine }] in order of first appearance
  counts(me) {
    const order = new Map();
    for (const r of this.items) {
      if (!order.has(r.text)) order.set(r.text, []);
      order.get(r.text).push(r.nick);
    }
    return [...order].map(([text, nicks]) => ({
      text, count: nicks.length, nicks, mine: nicks.some((n) => fold(n) === fold(me)),
    }));
  }
}

// Which +typing notifications to send, per target (typing.md): active while text that is
// not a /command changes, paused once after a pause, done once when cleared unsent;
// nothing within 3 s of the previous notification (a held change goes out on tick).
export class TypingThrottle {
  constructor() {
    this.targets = new Map();
  }

  state(target) {
    const key = fold(target);
    if (!this.targets.has(key)) this.targets.set(key, { target, sent: "done", at: null, wanted: "done", key: null });
    return this.targets.get(key);
  }

  edited(target, text, now) {
    const s = this.state(target);
    if (isTypingText(text)) {
      s.wanted = "active";
      s.key = now;
    } else s.wanted = "done";
    return this.due(s, now, s.wanted === "active");
  }

  tick(now) {
    const due = [];
    for (const s of this.targets.values()) {
      if (s.wanted === "active" && s.key !== null && now - s.key >= PAUSE_AFTER_MS) s.wanted = "paused";
      const state = this.due(s, now, false);
      if (state) due.push([s.target, state]);
    }
    return due;
  }

  sent(target) {
    const s = this.state(target);
    s.sent = s.wanted = "done";
    s.key = null;
  }

  due(s, now, repeat) {
    if (s.wanted === s.sent && !(repeat && s.wanted === "active")) return null;
    if (s.at !== null && now - s.at < THROTTLE_MS) return null;
    s.sent = s.wanted;
    s.at = now;
    return s.wanted;
  }
}

export function isTypingText(text) {
  return !!text.trim() && (!text.startsWith("/") || text.startsWith("//"));
}

// Who is typing in one buffer: until their message, part, quit or "done", 6 s after
// "active", 30 s after "paused".
export class TypingTracker {
  constructor() {
    this.since = new Map(); // folded nick -> { nick, state, at }
  }

  update(nick, state, now) {
    if (state === "active" || state === "paused") this.since.set(fold(nick), { nick, state, at: now });
    else this.since.delete(fold(nick));
  }

  stop(nick) {
    return this.since.delete(fold(nick));
  }

  expire(now) {
    let changed = false;
    for (const [key, { state, at }] of this.since) {
      if (now - at >= (state === "active" ? ACTIVE_EXPIRES_MS : PAUSED_EXPIRES_MS)) {
        this.since.delete(key);
        changed = true;
      }
    }
    return changed;
  }

  active() {
    return [...this.since.values()].filter((t) => t.state === "active").map((t) => t.nick);
  }
}

export function describeTyping(nicks) {
  if (!nicks.length) return "";
  if (nicks.length === 1) return `${nicks[0]} is typing…`;
  if (nicks.length === 2) return `${nicks[0]} and ${nicks[1]} are typing…`;
  return `${nicks.length} people are typing…`;
}

// Messages others said after the read marker (the "N unread since …" count).
export function unreadAfter(messages, marker) {
  if (marker === null || marker === undefined) return null;
  return messages.filter((m) => !m.self && (m.kind === "message" || m.kind === "action") && m.time > marker);
}

function sameAuthor(a, b) {
  if (a.account && b.account) return a.account === b.account;
  return fold(a.from || "") === fold(b.from || "");
}

// An edit is a message replying to a deleted message of the same author (REDACT plus a
// reply-linked resend: no edit spec has landed).
export function isEdit(message, parent) {
  return !!parent && parent.redacted && sameAuthor(parent, message);
}

export function quoteText(parent, limit = 80) {
  if (!parent) return "an earlier message";
  if (parent.redacted) return "a deleted message";
  const first = parent.text.split("\n")[0];
  const cut = first.length > limit ? first.slice(0, limit - 1).trimEnd() + "…" : first;
  return `${parent.from}: ${cut}`;
}

// The combined text of a draft/multiline batch: lines joined by "\n", except a line
// tagged draft/multiline-concat, which continues the previous one.
export function joinMultiline(lines) {
  return lines
    .map((m, i) => (i === 0 || "draft/multiline-concat" in m.tags ? "" : "\n") + (m.params[1] || ""))
    .join("");
}

// A pasted block as the PRIVMSG texts of one multiline batch: one per line, a line over
// LINE_BYTES cut at a character boundary and continued with draft/multiline-concat.
// null when over the server's limits (the caller sends the lines one by one instead).
export function multilineParts(text, limits) {
  const encoder = new TextEncoder();
  const lines = text.split("\n");
  if (!lines.some((l) => l.trim())) return null;
  const maxBytes = limits.maxBytes || 4096;
  if (encoder.encode(text).length > maxBytes) return null;
  const parts = [];
  for (const line of lines) {
    let rest = line;
    let concat = false;
    do {
      let piece = rest;
      while (encoder.encode(piece).length > LINE_BYTES) piece = piece.slice(0, Math.floor(piece.length * 0.9));
      if (/[\uD800-\uDBFF]$/.test(piece)) piece = piece.slice(0, -1); // never half a character
      parts.push({ text: piece, concat }); // a blank line stays blank ("MUST NOT reject")
      rest = rest.slice(piece.length);
      concat = true;
    } while (rest.length);
  }
  if (limits.maxLines && parts.length > limits.maxLines) return null;
  return parts;
}

// "max-bytes=4096,max-lines=24" (the cap's value) -> { maxBytes, maxLines }
export function multilineLimits(value) {
  const limits = {};
  for (const item of (value || "").split(",")) {
    const [key, number] = item.split("=");
    if (key === "max-bytes") limits.maxBytes = Number(number) || 0;
    if (key === "max-lines") limits.maxLines = Number(number) || 0;
  }
  return limits;
}
