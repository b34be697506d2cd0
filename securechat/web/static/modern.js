// The web app's IRCv3 chat features against its state: read markers, replies, reactions,
// typing, redactions and edits, multiline sending, account registration. app.js owns the
// buffers and the DOM; it hands this module what it needs (the "app" object below).
import { build, buildTagged } from "./irc.js";
import {
  Reactions, TypingThrottle, TypingTracker, isEdit, joinMultiline, markerParam, multilineLimits,
  multilineParts, parseMarker, quoteText, replyOf, unreadAfter,
} from "./features.js";

const READ_INTERVAL_MS = 3000;

// app: { state, send(line), findBuffer(name), buffer(name, kind), redraw(buf), sidebar(),
//        note(text, target), accountNote(text), isMe(nick), visible(buf), loadHistory(buf),
//        typingChanged(buf), composer(what, text), askCode(account, text) }
export class Modern {
  constructor(app) {
    this.app = app;
    this.throttle = new TypingThrottle();
    this.mode = null; // { kind: "reply" | "edit", buf, message }
    this.multilineRefs = 0;
  }

  get caps() {
    return this.app.state.caps;
  }

  // ---- buffers' extra state ------------------------------------------------------------

  extend(buf) {
    buf.reactions = new Map(); // parent msgid -> Reactions
    buf.typing = new TypingTracker();
    buf.marker = null; // read marker (ms), every device's
  }

  byMsgid(buf, msgid) {
    return msgid ? buf.messages.find((m) => m.msgid === msgid) : undefined;
  }

  // What a row shows beside the text (decorations.js draws it).
  view(buf, message) {
    const parent = message.replyTo ? this.byMsgid(buf, message.replyTo) : null;
    const edited = isEdit(message, parent);
    const found = message.msgid ? buf.reactions.get(message.msgid) : null;
    return {
      quote: message.replyTo && !edited ? quoteText(parent) : "",
      edited,
      reactions: found ? found.counts(this.app.state.nick) : [],
      own: !!message.self,
      canAct: !!message.msgid && (message.kind === "message" || message.kind === "action") && buf.kind !== "server",
    };
  }

  // A deleted message that an edit replaced is not shown at all.
  hidden(buf, message) {
    if (!message.redacted || !message.msgid) return false;
    return buf.messages.some((m) => m.replyTo === message.msgid && isEdit(m, message));
  }

  // ---- read markers ----------------------------------------------------------------------

  // MARKREAD <target> <timestamp=… | *>
  onMarkread(msg) {
    const buf = this.app.findBuffer(msg.params[0] || "");
    const marker = parseMarker(msg.params[1]);
    if (!buf || marker === null || (buf.marker !== null && marker <= buf.marker)) return;
    buf.marker = marker;
    this.recount(buf);
    if (buf.kind === "room" && !buf.messages.some((m) => m.msgid)) this.app.loadHistory(buf);
  }

  // Unread from the marker; a buffer being looked at is read (and says so to the server).
  recount(buf) {
    if (this.app.visible(buf)) {
      this.markRead(buf);
      return;
    }
    const fresh = unreadAfter(buf.messages, buf.marker);
    if (fresh === null) return;
    buf.unread = fresh.length;
    buf.mentions = fresh.filter((m) => m.mention).length;
    buf.readCount = buf.messages.length - buf.messages.filter((m) => m.time > buf.marker).length;
    this.app.sidebar();
  }

  // The newest message of a buffer the user is looking at is read, on every device.
  markRead(buf) {
    // Markers are kept per account: without one the server could only say ACCOUNT_REQUIRED.
    if (!this.caps.has("draft/read-marker") || !this.app.state.account) return;
    if (!buf || buf.kind === "server") return;
    const newest = [...buf.messages].reverse().find((m) => m.msgid);
    if (!newest || (buf.marker !== null && newest.time <= buf.marker)) return;
    buf.marker = newest.time;
    buf.readSentAt = Date.now();
    buf.readWaiting = false;
    this.app.send(build("MARKREAD", buf.name, markerParam(newest.time)));
  }

  // A live line in the buffer on screen: MARKREAD now, or on a tick once READ_INTERVAL_MS
  // has passed (a busy room must not send one per line: flood control would drop us).
  readSoon(buf) {
    if (buf.readSentAt && Date.now() - buf.readSentAt < READ_INTERVAL_MS) buf.readWaiting = true;
    else this.markRead(buf);
  }

  // "N unread since 09:14" for the divider, from the marker (null: nothing unread)
  unreadSince(buf) {
    const fresh = unreadAfter(buf.messages, buf.marker);
    if (!fresh || !fresh.length) return null;
    const date = new Date(buf.marker);
    const today = new Date().toDateString() === date.toDateString();
    const when = date.toLocaleString([], today
      ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
      : { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    return { count: fresh.length, text: `${fresh.length} unread since ${when}` };
  }

  // ---- tags: typing and reactions ---------------------------------------------------------

  conversation(target, nick) {
    return this.app.findBuffer(target.startsWith("#") || this.app.isMe(nick) ? target : nick);
  }

  // TAGMSG <target>  (+typing, +draft/react, +draft/unreact)
  onTagmsg(msg) {
    const buf = this.conversation(msg.params[0] || "", msg.nick);
    if (!buf) return;
    const typing = msg.tags["+typing"];
    if (typing && !this.app.isMe(msg.nick)) {
      buf.typing.update(msg.nick, typing, Date.now());
      this.app.typingChanged(buf);
    }
    if (this.reaction(buf, msg)) this.app.redraw(buf);
  }

  // A react/unreact tag (on TAGMSG or PRIVMSG): true when a count changed.
  reaction(buf, msg) {
    const parent = replyOf(msg.tags);
    const react = msg.tags["+draft/react"];
    const unreact = msg.tags["+draft/unreact"];
    if (!parent || !(react || unreact) || !this.byMsgid(buf, parent)) return false;
    if (unreact) return !!buf.reactions.get(parent)?.remove(msg.nick, unreact);
    if (!buf.reactions.has(parent)) buf.reactions.set(parent, new Reactions());
    return buf.reactions.get(parent).add(msg.nick, react, msg.tags.msgid || "");
  }

  // A message arrived: it ends its sender's typing, and may carry a reaction.
  onMessage(buf, msg) {
    if (buf.typing.stop(msg.nick)) this.app.typingChanged(buf);
    this.reaction(buf, msg);
  }

  typed(text) {
    const buf = this.app.findBuffer(this.app.state.current);
    if (!buf || buf.kind === "server" || !this.caps.has("message-tags")) return;
    const state = this.throttle.edited(buf.name, text, Date.now());
    if (state) this.app.send(buildTagged({ "+typing": state }, "TAGMSG", buf.name));
  }

  tick() {
    const now = Date.now();
    if (this.caps.has("message-tags")) {
      for (const [target, state] of this.throttle.tick(now)) {
        this.app.send(buildTagged({ "+typing": state }, "TAGMSG", target));
      }
    }
    for (const buf of this.app.state.buffers.values()) {
      if (buf.typing && buf.typing.expire(now)) this.app.typingChanged(buf);
      if (buf.readWaiting && now - buf.readSentAt >= READ_INTERVAL_MS) {
        buf.readWaiting = false;
        if (this.app.visible(buf)) this.markRead(buf);
      }
    }
  }

  toggleReaction(buf, message, text) {
    if (!this.caps.has("message-tags")) {
      this.app.note("This server does not relay reactions (message-tags).");
      return;
    }
    const mine = buf.reactions.get(message.msgid)?.has(this.app.state.nick, text);
    const tag = mine ? "+draft/unreact" : "+draft/react";
    this.app.send(buildTagged({ "+draft/reply": message.msgid, [tag]: text }, "TAGMSG", buf.name));
  }

  // ---- redaction ----------------------------------------------------------------------------

  // REDACT <target> <msgid> [:<reason>]
  onRedact(msg) {
    const buf = this.conversation(msg.params[0] || "", msg.nick);
    if (buf) this.redact(buf, msg.params[1], msg.nick, msg.params[2] || "");
  }

  redact(buf, msgid, by, reason) {
    const message = this.byMsgid(buf, msgid);
    if (!message) {
      for (const reactions of buf.reactions.values()) {
        if (reactions.removeMsgid(msgid)) {
          this.app.redraw(buf);
          return;
        }
      }
      return; // not a message we hold: ignored, as the spec says
    }
    const other = by && by.toLowerCase() !== (message.from || "").toLowerCase();
    message.redacted = true;
    message.text = `(message deleted${other ? ` by ${by}` : ""}${reason ? `: ${reason}` : ""})`;
    buf.reactions.delete(msgid);
    this.app.redraw(buf);
  }

  // ---- the composer: reply, edit, multiline ---------------------------------------------------

  startReply(buf, message) {
    this.mode = { kind: "reply", buf, message };
    this.app.composer(`Replying to ${quoteText(message, 60)}`, "");
  }

  startEdit(buf, message) {
    if (!this.caps.has("draft/message-redaction")) {
      this.app.note("This server cannot delete messages, so they cannot be edited.");
      return;
    }
    this.mode = { kind: "edit", buf, message };
    this.app.composer("Editing your message", message.text);
  }

  editLast(buf) {
    const own = [...buf.messages].reverse().find((m) => m.self && m.msgid && !m.redacted && m.kind === "message");
    if (own) this.startEdit(buf, own);
    return !!own;
  }

  cancel() {
    this.mode = null;
    this.app.composer(null, null);
  }

  remove(buf, message) {
    if (!this.caps.has("draft/message-redaction")) {
      this.app.note("This server does not offer message deletion (draft/message-redaction).");
      return;
    }
    this.app.send(build("REDACT", buf.name, message.msgid));
  }

  // The lines for text typed in the composer, in the current mode; null: not handled here.
  compose(text, target) {
    const mode = this.mode && this.app.findBuffer(target) === this.mode.buf ? this.mode : null;
    this.cancel();
    this.throttle.sent(target);
    const tags = mode ? { "+draft/reply": mode.message.msgid } : {};
    const lines = [];
    if (mode && mode.kind === "edit") lines.push(build("REDACT", target, mode.message.msgid, "edited"));
    if (text.includes("\n")) {
      const batch = this.multiline(target, text, tags);
      if (batch) return lines.concat(batch);
      const parts = text.split("\n").filter((l) => l.trim());
      return lines.concat(parts.map((line, i) => buildTagged(i ? {} : tags, "PRIVMSG", target, line)));
    }
    if (!mode) return null;
    return lines.concat([buildTagged(tags, "PRIVMSG", target, text)]);
  }

  // A paste or code block as one draft/multiline batch (client-only tags on the BATCH line).
  multiline(target, text, tags) {
    if (!this.caps.has("draft/multiline") || !this.caps.has("batch")) return null;
    const parts = multilineParts(text, multilineLimits(this.app.state.capValues.get("draft/multiline")));
    if (!parts) return null;
    this.multilineRefs += 1;
    const ref = `ml${this.multilineRefs}`;
    const lines = [buildTagged(tags, "BATCH", `+${ref}`, "draft/multiline", target)];
    for (const part of parts) {
      const partTags = part.concat ? { batch: ref, "draft/multiline-concat": "" } : { batch: ref };
      lines.push(buildTagged(partTags, "PRIVMSG", target, part.text));
    }
    lines.push(build("BATCH", `-${ref}`));
    return lines;
  }

  // A closed draft/multiline batch as one PRIVMSG with the opening line's tags.
  combine(batch) {
    const lines = batch.lines.filter((m) => m.command === "PRIVMSG");
    if (!lines.length || !batch.opener) return null;
    const { batch: _, ...tags } = batch.opener.tags;
    return {
      tags, source: batch.opener.source, nick: batch.opener.nick, command: "PRIVMSG",
      params: [batch.target, joinMultiline(lines)],
    };
  }

  // /reply REF TEXT, /react [REF] EMOJI, /unreact [REF] EMOJI, /edit [-N] TEXT,
  // /delete [REF], /markread — as in the terminal client (REF: -N the Nth latest, or a nick).
  // Returns an error text, "" when done, or null when the command is not one of these.
  command(name, argText, buf) {
    const words = argText ? argText.split(/\s+/) : [];
    const pick = (ref, own = false) => {
      const said = buf.messages.filter((m) => m.msgid && m.from && !m.redacted && (m.kind === "message" || m.kind === "action"));
      if (!ref) return own ? [...said].reverse().find((m) => m.self) : said[said.length - 1];
      const position = /^-([1-9][0-9]*)$/.exec(ref);
      if (position) return said[said.length - Number(position[1])];
      return [...said].reverse().find((m) => (m.from || "").toLowerCase() === ref.toLowerCase());
    };
    if (!["reply", "react", "unreact", "edit", "delete", "markread"].includes(name)) return null;
    if (!buf || buf.kind === "server") return "Open a room or conversation first.";
    if (name === "markread") {
      this.markRead(buf);
      return "";
    }
    if (name === "reply") {
      const message = pick(words[0]);
      if (!message || words.length < 2) return "Usage: /reply -1|nick text";
      this.mode = { kind: "reply", buf, message };
      this.compose(argText.slice(words[0].length).trim(), buf.name).forEach((line) => this.app.send(line));
      return "";
    }
    if (name === "react" || name === "unreact") {
      const message = pick(words.length === 2 ? words[0] : "");
      if (!message || !words.length) return `Usage: /${name} [-N|nick] emoji`;
      const text = words[words.length - 1];
      const mine = buf.reactions.get(message.msgid)?.has(this.app.state.nick, text);
      if ((name === "react") !== !!mine) this.toggleReaction(buf, message, text);
      return "";
    }
    const positional = words[0] && /^-[1-9][0-9]*$/.test(words[0]);
    const message = name === "delete" ? pick(words[0], !words[0]) : pick(positional ? words[0] : "", !positional);
    if (!message) return "No such message here.";
    if (name === "delete") {
      this.remove(buf, message);
      return "";
    }
    const text = positional ? argText.slice(words[0].length).trim() : argText;
    if (!message.self || !text) return "Usage: /edit [-N] corrected text (your own messages)";
    this.mode = { kind: "edit", buf, message };
    this.compose(text, buf.name).forEach((line) => this.app.send(line));
    return "";
  }

  // ---- account registration -------------------------------------------------------------------

  register(nick, password, email) {
    if (this.caps.has("draft/account-registration")) {
      this.app.send(build("REGISTER", nick, email || "*", password));
    } else {
      this.app.send(build("PRIVMSG", "NickServ", `REGISTER ${password}`));
    }
  }

  // REGISTER|VERIFY SUCCESS|VERIFICATION_REQUIRED <account> :<message>
  onRegisterReply(msg) {
    const [outcome, account] = msg.params;
    const text = msg.params[msg.params.length - 1];
    if (outcome === "VERIFICATION_REQUIRED") this.app.askCode(account, text);
    else {
      if (outcome === "SUCCESS") this.app.state.account = account;
      this.app.accountNote(text);
    }
  }

  verify(account, code) {
    this.app.send(build("VERIFY", account, code));
  }

  // ---- missed conversations -------------------------------------------------------------------

  // On welcome: private conversations with messages since we last saw one (offline PMs).
  askTargets() {
    if (!this.caps.has("draft/chathistory") || !this.caps.has("batch")) return;
    let newest = 0;
    for (const buf of this.app.state.buffers.values()) {
      for (const m of buf.messages) if (m.msgid && m.time > newest) newest = m.time;
    }
    const since = newest || Date.now() - 7 * 24 * 3600 * 1000;
    this.app.send(build("CHATHISTORY", "TARGETS", markerParam(since), markerParam(Date.now()), "50"));
  }

  targets(batch) {
    for (const line of batch.lines) {
      const target = line.params[1];
      if (line.command !== "CHATHISTORY" || !target || target.startsWith("#")) continue;
      const buf = this.app.buffer(target, "query");
      this.app.loadHistory(buf, true);
      if (this.caps.has("draft/read-marker") && this.app.state.account) this.app.send(build("MARKREAD", target));
    }
  }
}
