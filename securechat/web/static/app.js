// The securechat web app: state of rooms and conversations, fed by IRC lines, shown in the DOM.
import { Connection, build, casefold } from "./irc.js";
import { HELP, run } from "./commands.js";
import { el, nickNode } from "./render.js";
import { dayNode, foldedNode, messageNode, sameDay } from "./messages.js";
import { decorate } from "./decorations.js";
import { describeTyping, replyOf } from "./features.js";
import { Modern } from "./modern.js";

const WANTED_CAPS = [
  "message-tags", "server-time", "echo-message", "multi-prefix", "batch", "draft/chathistory",
  "sasl", "away-notify", "account-tag", "extended-join", "invite-notify", "cap-notify",
  "draft/read-marker", "draft/message-redaction", "draft/multiline", "draft/account-registration",
];
const HISTORY_PAGE = 50;
const MAX_NICK_TRIES = 3; // fallback nicks while logging in (alice_, alice__, …)
const MAX_MESSAGES = 2000; // per buffer, oldest dropped first
const SERVER = "*server*";
const $ = (id) => document.getElementById(id);

const state = {
  nick: "",
  password: "",
  register: false,
  caps: new Set(),
  offered: new Set(),
  capValues: new Map(), // offered cap -> its CAP 302 value (draft/multiline limits)
  account: null, // the account we are logged in to (900/901, REGISTER SUCCESS)
  buffers: new Map(), // casefolded name -> buffer
  current: SERVER,
  batches: new Map(), // reference -> { type, target, messages }
  registered: false,
  completion: null,
};
let connection = null;
const modern = new Modern({
  state,
  send: (line) => connection && connection.send(line),
  findBuffer: (name) => findBuffer(name),
  buffer: (name, kind) => buffer(name, kind),
  redraw: (buf) => buf.key === state.current && renderLog(),
  sidebar: () => renderSidebar(),
  note: (text, target) => serverNote(text, target),
  isMe: (nick) => isMe(nick),
  visible: (buf) => buf.key === state.current && !document.hidden,
  loadHistory: (buf, always = false) => maybeLoadHistory(buf, always),
  typingChanged: (buf) => buf.key === state.current && renderTyping(),
  composer: (what, text) => showComposerMode(what, text),
  askCode: (account, text) => askCode(account, text),
  accountNote: (text) => {
    // Where the user is now, and kept in Server (as NickServ's replies are).
    serverNote(text);
    if (state.current !== SERVER) serverNote(text, SERVER);
  },
});

// ---- buffers --------------------------------------------------------------------------

function buffer(name, kind) {
  const key = name === SERVER ? SERVER : casefold(name);
  let buf = state.buffers.get(key);
  if (!buf) {
    buf = {
      key, name, kind: kind || (name.startsWith("#") ? "room" : "query"),
      messages: [], msgids: new Set(), unread: 0, mentions: 0, topic: "",
      members: new Map(), joined: false, historyDone: false, loading: false, readCount: 0,
    };
    modern.extend(buf);
    state.buffers.set(key, buf);
    renderSidebar();
  }
  return buf;
}

function findBuffer(name) {
  return state.buffers.get(name === SERVER ? SERVER : casefold(name));
}

function ordered() {
  const list = [...state.buffers.values()];
  const rank = (b) => (b.kind === "server" ? 0 : b.kind === "room" ? 1 : 2);
  return list.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

// ---- messages ---------------------------------------------------------------------------

function addMessage(buf, message, { history = false } = {}) {
  if (message.msgid) {
    if (buf.msgids.has(message.msgid)) return; // already shown (history after a reconnect)
    buf.msgids.add(message.msgid);
  }
  const list = buf.messages;
  let index = list.length;
  while (index > 0 && list[index - 1].time > message.time) index -= 1;
  list.splice(index, 0, message);
  if (index < buf.readCount) buf.readCount += 1;
  if (list.length > MAX_MESSAGES) {
    const dropped = list.shift();
    buf.readCount = Math.max(0, buf.readCount - 1);
    if (dropped.msgid) buf.msgids.delete(dropped.msgid);
  }
  const visible = buf.key === state.current && !document.hidden;
  if (!history && !visible && (message.kind === "message" || message.kind === "action")) {
    buf.unread += 1;
    if (message.mention || buf.kind === "query") {
      buf.mentions += 1;
      notify(buf, message);
    }
    renderSidebar();
  } else if (!history && message.mention && document.hidden) {
    notify(buf, message);
  }
  if (buf.key !== state.current) return;
  if (index === list.length - 1 && !history) appendToLog(buf, message, list[index - 1]);
  else renderLog({ keepBottom: !history });
  if (visible) {
    buf.readCount = list.length;
    if (!history && !message.self) modern.readSoon(buf);
  }
}

function serverNote(text, target) {
  const buf = target ? buffer(target) : findBuffer(state.current) || buffer(SERVER, "server");
  addMessage(buf, { kind: "note", time: Date.now(), text });
}

function messageTime(msg) {
  const parsed = msg.tags.time ? Date.parse(msg.tags.time) : NaN;
  return Number.isNaN(parsed) ? Date.now() : parsed;
}

function isMention(text) {
  if (!state.nick) return false;
  const escaped = state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w-])${escaped}($|[^\\w-])`, "i").test(text);
}

// ---- rendering --------------------------------------------------------------------------

function rowFor(message, buf) {
  const row = messageNode(message);
  if (!buf || message.kind === "event" || message.kind === "note") return row;
  return decorate(row, message, modern.view(buf, message), {
    reply: () => modern.startReply(buf, message),
    react: (text) => modern.toggleReaction(buf, message, text),
    edit: () => modern.startEdit(buf, message),
    remove: () => modern.remove(buf, message),
  });
}

function renderLog({ keepBottom = true, anchorOldest = false } = {}) {
  const log = $("log");
  const buf = findBuffer(state.current);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const oldHeight = log.scrollHeight;
  const oldTop = log.scrollTop;
  log.replaceChildren();
  if (!buf) return;
  if (buf.kind !== "server" && buf.historyDone) {
    log.append(el("div", "start", `This is the beginning of ${buf.name}.`));
  }
  let previous = null;
  let run = [];
  const flush = () => {
    if (run.length) log.append(foldedNode(run));
    run = [];
  };
  const since = modern.unreadSince(buf);
  buf.messages.forEach((message, index) => {
    if (index === buf.readCount && index > 0 && index < buf.messages.length) {
      flush();
      log.append(el("div", "unread-marker", since ? `New messages — ${since.text}` : "New messages"));
    }
    if (modern.hidden(buf, message)) return;
    if (!sameDay(previous, message)) {
      flush();
      log.append(dayNode(new Date(message.time)));
    }
    if (message.kind === "event") run.push(message);
    else {
      flush();
      log.append(rowFor(message, buf));
    }
    previous = message;
  });
  flush();
  if (anchorOldest) log.scrollTop = oldTop + (log.scrollHeight - oldHeight);
  else if (atBottom || keepBottom) log.scrollTop = log.scrollHeight;
}

function appendToLog(buf, message, previous) {
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  if (!sameDay(previous, message)) log.append(dayNode(new Date(message.time)));
  if (message.kind === "event" && previous && previous.kind === "event" && sameDay(previous, message)) {
    renderLog();
    return;
  }
  log.append(message.kind === "event" ? foldedNode([message]) : rowFor(message, buf));
  if (atBottom || message.self) log.scrollTop = log.scrollHeight;
}

function renderSidebar() {
  const list = $("buffers");
  list.replaceChildren();
  ordered().forEach((buf, index) => {
    const item = el("li");
    const button = el("button", "buffer");
    button.type = "button";
    button.setAttribute("aria-label", buf.kind === "server" ? "Server" : buf.name);
    if (buf.key === state.current) button.setAttribute("aria-current", "page");
    button.append(el("span", "buffer-name", buf.kind === "server" ? "Server" : buf.name));
    if (buf.mentions) button.append(el("span", "badge mention-badge", String(buf.mentions)));
    else if (buf.unread) button.append(el("span", "badge", String(buf.unread)));
    const since = buf.unread ? modern.unreadSince(buf) : null;
    const hints = [since ? since.text : "", index < 9 ? `Alt-${index + 1}` : ""].filter(Boolean);
    if (hints.length) button.title = hints.join(" · ");
    if (buf.kind === "room" && !buf.joined) button.classList.add("parted");
    button.addEventListener("click", () => switchTo(buf.key));
    item.append(button);
    list.append(item);
  });
}

function renderHeader() {
  const buf = findBuffer(state.current);
  $("title").textContent = !buf || buf.kind === "server" ? "Server" : buf.name;
  $("topic").textContent = buf ? buf.topic : "";
  $("topic").title = buf ? buf.topic : "";
  document.title = `${buf && buf.kind !== "server" ? buf.name + " — " : ""}securechat`;
}

const PREFIX_RANK = { "~": 0, "&": 1, "@": 2, "%": 3, "+": 4, "": 5 };

function renderMembers() {
  const buf = findBuffer(state.current);
  const list = $("member-list");
  list.replaceChildren();
  const members = buf && buf.kind === "room" ? [...buf.members.entries()] : [];
  members.sort(([a, pa], [b, pb]) => (PREFIX_RANK[pa[0] || ""] ?? 5) - (PREFIX_RANK[pb[0] || ""] ?? 5) || a.localeCompare(b));
  $("members-title").textContent = `Members (${members.length})`;
  for (const [nick, prefixes] of members) {
    const item = el("li", "member");
    const role = prefixes.includes("@") ? "operator" : prefixes.includes("+") ? "voice" : "";
    item.append(el("span", "prefix", prefixes[0] || ""));
    const name = nickNode(nick);
    name.title = role ? `${nick} (${role})` : nick;
    item.append(name);
    item.addEventListener("click", () => openQuery(nick));
    list.append(item);
  }
}

function switchTo(key) {
  const buf = state.buffers.get(key);
  if (!buf) return;
  const previous = findBuffer(state.current);
  if (previous) previous.readCount = previous.messages.length;
  state.current = key;
  renderHeader();
  renderLog({ keepBottom: true });
  buf.unread = 0;
  buf.mentions = 0;
  buf.readCount = buf.messages.length;
  modern.markRead(buf);
  renderSidebar();
  renderMembers();
  renderTyping();
  document.body.classList.remove("show-sidebar");
  $("menu").setAttribute("aria-expanded", "false");
  if (buf.kind !== "server" && buf.messages.length < 20) maybeLoadHistory(buf);
  $("input").focus();
}

function openQuery(nick) {
  const buf = buffer(nick, "query");
  switchTo(buf.key);
}

// ---- notifications ----------------------------------------------------------------------

function notify(buf, message) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const title = buf.kind === "query" ? message.from : `${message.from} in ${buf.name}`;
  const note = new Notification(title, { body: message.text, tag: buf.key });
  note.onclick = () => {
    window.focus();
    switchTo(buf.key);
  };
}

// ---- history (draft/chathistory) ----------------------------------------------------------

function maybeLoadHistory(buf, always = false) {
  if (!state.caps.has("draft/chathistory") || buf.loading || buf.historyDone) return;
  if (buf.kind === "room" && !buf.joined && !always) return;
  // Only messages are in the history (not joins and parts): the oldest one is the anchor.
  const oldest = buf.messages.find((m) => m.msgid && m.kind !== "event" && m.kind !== "note");
  buf.loading = true;
  const ref = oldest ? `msgid=${oldest.msgid}` : "*";
  connection.send(
    oldest
      ? build("CHATHISTORY", "BEFORE", buf.name, ref, String(HISTORY_PAGE))
      : build("CHATHISTORY", "LATEST", buf.name, "*", String(HISTORY_PAGE)),
  );
}

// ---- IRC: connecting and registration -------------------------------------------------------

function connect() {
  const url = `wss://${location.host}/webirc`;
  connection = new Connection(url, {
    onopen: register,
    online: handle,
    onstate: showState,
  });
  connection.open();
}

function register() {
  state.caps = new Set();
  state.offered = new Set();
  state.capValues = new Map();
  state.nickTries = 0;
  state.account = null;
  state.registered = false;
  state.batches.clear();
  for (const buf of state.buffers.values()) buf.loading = false;
  connection.send(build("CAP", "LS", "302"));
  connection.send(build("NICK", state.nick));
  connection.send(build("USER", state.nick.toLowerCase(), "0", "*", state.nick));
}

function showState(status, detail) {
  const text = {
    connecting: "Connecting…",
    registering: "Logging in…",
    connected: "Connected",
    reconnecting: `Disconnected — retrying in ${detail} s`,
    disconnected: "Disconnected",
  }[status];
  $("state").textContent = text;
  $("state").dataset.state = status;
  if (status === "reconnecting" || status === "disconnected") {
    for (const buf of state.buffers.values()) buf.joined = false;
    renderSidebar();
  }
}

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function handleCap(msg) {
  const sub = (msg.params[1] || "").toUpperCase();
  if (sub === "LS") {
    const more = msg.params[2] === "*";
    const list = msg.params[more ? 3 : 2] || "";
    for (const item of list.split(" ")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      state.offered.add(eq === -1 ? item : item.slice(0, eq));
      if (eq !== -1) state.capValues.set(item.slice(0, eq), item.slice(eq + 1));
    }
    if (more) return;
    const want = WANTED_CAPS.filter((c) => state.offered.has(c) && (c !== "sasl" || state.password));
    if (want.length) connection.send(build("CAP", "REQ", want.join(" ")));
    else connection.send(build("CAP", "END"));
  } else if (sub === "ACK") {
    for (const c of (msg.params[2] || "").split(" ")) if (c) state.caps.add(c.replace(/^-/, ""));
    if (state.caps.has("sasl") && state.password && !state.register) {
      connection.send(build("AUTHENTICATE", "PLAIN"));
    } else if (!state.registered) connection.send(build("CAP", "END"));
  } else if (sub === "NAK") {
    if (!state.registered) connection.send(build("CAP", "END"));
  }
}

function welcome(msg) {
  state.registered = true;
  state.nick = msg.params[0];
  showState("connected");
  $("me").textContent = state.nick;
  $("login").hidden = true;
  $("chat").hidden = false;
  const rooms = [...state.buffers.values()].filter((b) => b.kind === "room" && b.wantJoin !== false);
  if (state.register && state.password) {
    modern.register(state.nick, state.password, state.email);
    state.register = false;
  }
  modern.askTargets();
  if (rooms.length) connection.send(build("JOIN", rooms.map((b) => b.name).join(",")));
  else if (!state.buffers.size || state.buffers.size === 1) {
    connection.send(build("JOIN", "#general"));
    state.pendingSwitch = "#general";
  }
  renderHeader();
  renderSidebar();
}

function loginFailed(text) {
  $("login-error").textContent = text;
  if (!state.registered) {
    connection.close();
    $("login").hidden = false;
    $("chat").hidden = true;
    $("connect").disabled = false;
  }
}

// ---- IRC: incoming lines ----------------------------------------------------------------------

function handle(msg) {
  const batch = msg.tags.batch && state.batches.get(msg.tags.batch);
  if (batch && msg.command !== "BATCH") {
    batch.lines.push(msg);
    return;
  }
  const handler = HANDLERS[msg.command];
  if (handler) handler(msg);
  else if (/^[0-9]{3}$/.test(msg.command)) numeric(msg);
}

function privmsg(msg, { history = false, into = null } = {}) {
  const [target, text = ""] = msg.params;
  const fromSelf = casefold(msg.nick) === casefold(state.nick);
  const other = target.startsWith("#") ? target : fromSelf ? target : msg.nick;
  if (!target.startsWith("#") && !msg.source.includes("!") && msg.command === "NOTICE") {
    serverNote(text); // a server notice
    return;
  }
  if (!target.startsWith("#") && msg.command === "NOTICE" && !findBuffer(other)) {
    // A notice from a service (NickServ): where the user is now, and kept in Server.
    serverNote(`-${msg.nick}- ${text}`);
    if (state.current !== SERVER) serverNote(`-${msg.nick}- ${text}`, SERVER);
    return;
  }
  const buf = buffer(other);
  const action = text.startsWith("\x01ACTION ") && text.endsWith("\x01");
  if (text.startsWith("\x01") && !action) return; // other CTCP: not shown
  const message = {
    kind: msg.command === "NOTICE" ? "notice" : action ? "action" : "message",
    from: msg.nick,
    text: action ? text.slice(8, -1) : text,
    time: messageTime(msg),
    msgid: msg.tags.msgid,
    self: fromSelf,
    mention: !fromSelf && isMention(text),
    replyTo: replyOf(msg.tags),
    account: msg.tags.account || "",
  };
  if (into) into.push(message);
  else {
    addMessage(buf, message, { history });
    modern.onMessage(buf, msg);
  }
}

function eventMessage(buf, msg, event, who, text, history = false) {
  addMessage(buf, { kind: "event", event, who, text, time: messageTime(msg), msgid: msg.tags.msgid }, { history });
}

function isMe(nick) {
  return casefold(nick) === casefold(state.nick);
}

const HANDLERS = {
  PING: (msg) => connection.send(build("PONG", ...msg.params)),
  CAP: handleCap,
  AUTHENTICATE: (msg) => {
    if (msg.params[0] === "+") connection.send(build("AUTHENTICATE", b64(`${state.nick}\0${state.nick}\0${state.password}`)));
  },
  "903": () => connection.send(build("CAP", "END")),
  "904": () => loginFailed("Wrong nickname or password."),
  "905": () => loginFailed("Password too long."),
  "001": welcome,
  "433": (msg) => {
    if (!state.registered && state.password && !state.register && state.nickTries < MAX_NICK_TRIES) {
      // Logging in to an account whose user may be on already (another device): the server
      // gives us that user's nick once SASL is done; meanwhile any free nick will do.
      state.nickTries += 1;
      connection.send(build("NICK", state.nick.slice(0, 27) + "_".repeat(state.nickTries)));
      return;
    }
    if (!state.registered) loginFailed(`The nickname ${msg.params[1]} is taken. Choose another or log in.`);
    else serverNote(`The nickname ${msg.params[1]} is taken.`);
  },
  "432": (msg) => (state.registered ? serverNote(msg.params.slice(-1)[0]) : loginFailed(`That nickname is not allowed: ${msg.params.slice(-1)[0]}`)),
  ERROR: (msg) => serverNote(`Connection closed: ${msg.params[0] || ""}`, SERVER),
  JOIN: (msg) => {
    const buf = buffer(msg.params[0], "room");
    if (isMe(msg.nick)) {
      buf.joined = true;
      buf.name = msg.params[0];
      buf.members.clear();
      if (state.pendingSwitch && casefold(state.pendingSwitch) === buf.key) {
        state.pendingSwitch = null;
        switchTo(buf.key);
      }
      renderSidebar();
    } else {
      buf.members.set(msg.nick, "");
      eventMessage(buf, msg, "join", msg.nick, `${msg.nick} joined`);
    }
    if (buf.key === state.current) renderMembers();
  },
  PART: (msg) => {
    const buf = buffer(msg.params[0], "room");
    const reason = msg.params[1] ? ` (${msg.params[1]})` : "";
    if (isMe(msg.nick)) {
      buf.joined = false;
      buf.wantJoin = false;
      eventMessage(buf, msg, "self", msg.nick, `You left ${buf.name}${reason}`);
      renderSidebar();
    } else {
      buf.members.delete(msg.nick);
      eventMessage(buf, msg, reason ? "other" : "part", msg.nick, `${msg.nick} left${reason}`);
    }
    if (buf.key === state.current) renderMembers();
  },
  KICK: (msg) => {
    const [room, victim, reason = ""] = msg.params;
    const buf = buffer(room, "room");
    buf.members.delete(victim);
    if (isMe(victim)) buf.joined = false;
    eventMessage(buf, msg, "kick", victim, `${msg.nick} removed ${victim}${reason ? ` (${reason})` : ""}`);
    renderSidebar();
    if (buf.key === state.current) renderMembers();
  },
  QUIT: (msg) => {
    for (const buf of state.buffers.values()) {
      if (buf.members.delete(msg.nick)) {
        eventMessage(buf, msg, "part", msg.nick, `${msg.nick} quit${msg.params[0] ? ` (${msg.params[0]})` : ""}`);
        if (buf.key === state.current) renderMembers();
      }
    }
  },
  NICK: (msg) => {
    const to = msg.params[0];
    if (isMe(msg.nick)) {
      state.nick = to;
      $("me").textContent = to;
      localStorage.setItem("securechat.nick", to);
    }
    for (const buf of state.buffers.values()) {
      if (buf.members.has(msg.nick)) {
        buf.members.set(to, buf.members.get(msg.nick));
        buf.members.delete(msg.nick);
        eventMessage(buf, msg, "nick", msg.nick, `${msg.nick} is now known as ${to}`);
      }
    }
    renderMembers();
  },
  TOPIC: (msg) => {
    const buf = buffer(msg.params[0], "room");
    buf.topic = msg.params[1] || "";
    eventMessage(buf, msg, "topic", msg.nick, `${msg.nick} set the topic: ${buf.topic}`);
    if (buf.key === state.current) renderHeader();
  },
  MODE: (msg) => {
    const target = msg.params[0];
    if (!target.startsWith("#")) return;
    const buf = buffer(target, "room");
    eventMessage(buf, msg, "mode", msg.nick, `${msg.nick} set mode ${msg.params.slice(1).join(" ")}`);
    if (/[ov]/.test(msg.params[1] || "")) connection.send(build("NAMES", target));
  },
  INVITE: (msg) => serverNote(`${msg.nick} invites you to ${msg.params[1]} — /join ${msg.params[1]}`),
  PRIVMSG: (msg) => privmsg(msg),
  TAGMSG: (msg) => modern.onTagmsg(msg),
  REDACT: (msg) => modern.onRedact(msg),
  MARKREAD: (msg) => modern.onMarkread(msg),
  REGISTER: (msg) => modern.onRegisterReply(msg),
  VERIFY: (msg) => modern.onRegisterReply(msg),
  NOTICE: (msg) => privmsg(msg),
  BATCH: (msg) => {
    const ref = msg.params[0].slice(1);
    if (msg.params[0].startsWith("+")) {
      const parent = msg.tags.batch || "";
      state.batches.set(ref, { type: msg.params[1], target: msg.params[2], lines: [], opener: msg, parent });
      return;
    }
    const batch = state.batches.get(ref);
    state.batches.delete(ref);
    if (batch) endBatch(batch);
  },
  "332": (msg) => {
    const buf = buffer(msg.params[1], "room");
    buf.topic = msg.params[2] || "";
    if (buf.key === state.current) renderHeader();
  },
  "331": (msg) => {
    const buf = buffer(msg.params[1], "room");
    buf.topic = "";
    if (buf.key === state.current) renderHeader();
  },
  "353": (msg) => {
    const buf = buffer(msg.params[2], "room");
    if (!buf.namesOpen) {
      buf.members.clear();
      buf.namesOpen = true;
    }
    for (const entry of (msg.params[3] || "").split(" ")) {
      if (!entry) continue;
      const match = entry.match(/^([~&@%+]*)(.+)$/);
      buf.members.set(match[2].split("!")[0], match[1]);
    }
  },
  "366": (msg) => {
    const buf = buffer(msg.params[1], "room");
    buf.namesOpen = false;
    if (buf.key === state.current) renderMembers();
  },
  FAIL: (msg) => {
    if (msg.params[0] === "CHATHISTORY") {
      const buf = findBuffer(msg.params[3] || "");
      if (buf) buf.loading = false;
    }
    serverNote(msg.params.slice(-1)[0]);
  },
};

function endBatch(batch) {
  if (batch.type === "draft/multiline") {
    const combined = modern.combine(batch);
    const parent = state.batches.get(batch.parent);
    if (combined && parent) parent.lines.push(combined); // a multiline message in history
    else if (combined) privmsg(combined);
    return;
  }
  if (batch.type === "draft/chathistory-targets") {
    modern.targets(batch);
    return;
  }
  if (batch.type !== "chathistory") {
    batch.lines.forEach((line) => handle({ ...line, tags: { ...line.tags, batch: undefined } }));
    return;
  }
  const buf = buffer(batch.target);
  const before = buf.messages.length;
  const block = [];
  for (const line of batch.lines) {
    if (line.command === "PRIVMSG" || line.command === "NOTICE") privmsg(line, { into: block });
  }
  insertHistory(buf, block);
  for (const line of batch.lines) {
    if (line.command === "REDACT") modern.redact(buf, line.params[1], line.nick, line.params[2] || "");
    else if (line.command === "TAGMSG" || line.command === "PRIVMSG") modern.reaction(buf, line);
  }
  const added = buf.messages.length - before;
  if (buf.loading) {
    buf.loading = false;
    if (batch.lines.length < HISTORY_PAGE) buf.historyDone = true;
  }
  if (buf.readCount === before && added) buf.readCount = buf.messages.length;
  modern.recount(buf);
  if (buf.key === state.current) renderLog({ anchorOldest: true });
}

// A page of history, in its own order, before everything newer than its first message
// (messages with equal times keep the server's order: the page comes first).
function insertHistory(buf, block) {
  const fresh = block.filter((m) => !m.msgid || !buf.msgids.has(m.msgid));
  if (!fresh.length) return;
  for (const m of fresh) if (m.msgid) buf.msgids.add(m.msgid);
  const first = fresh[0].time;
  let index = 0;
  while (index < buf.messages.length && buf.messages[index].time < first) index += 1;
  buf.messages.splice(index, 0, ...fresh);
  if (index < buf.readCount) buf.readCount += fresh.length;
}

function numeric(msg) {
  const code = msg.command;
  const rest = msg.params.slice(1);
  if (code === "900") state.account = msg.params[2] || null;
  if (code === "901") state.account = null;
  if (["002", "003", "004", "005", "250", "251", "252", "253", "254", "255", "265", "266", "375", "372", "376", "422", "396", "900", "901", "329", "333"].includes(code)) {
    if (code === "372" || code === "900" || code === "422") serverNote(rest.slice(-1)[0], SERVER);
    return;
  }
  if (["311", "312", "313", "317", "318", "319", "330", "671", "301", "378"].includes(code)) {
    if (code === "318") return;
    serverNote(rest.join(" "));
    return;
  }
  serverNote(rest.join(" "));
}

// ---- input --------------------------------------------------------------------------------

function context() {
  const buf = findBuffer(state.current);
  if (!buf || buf.kind === "server") return { target: null, room: null };
  return { target: buf.name, room: buf.kind === "room" ? buf.name : null };
}

function submit(text) {
  if (!text.trim()) return;
  const target = context().target;
  const plain = !text.startsWith("/") || text.startsWith("//");
  const composed = plain && target ? modern.compose(text.startsWith("//") ? text.slice(1) : text, target) : null;
  if (composed) {
    composed.forEach((line) => connection.send(line));
    return;
  }
  const slash = /^\/(\w+)\s*([\s\S]*)$/.exec(text);
  const handled = slash && !text.startsWith("//") ? modern.command(slash[1].toLowerCase(), slash[2].trim(), findBuffer(state.current)) : null;
  if (handled !== null) {
    if (handled) serverNote(handled);
    return;
  }
  const outcome = run(text, context());
  if (outcome.error) {
    serverNote(outcome.error);
    return;
  }
  for (const line of outcome.lines) connection.send(line);
  const local = outcome.local || {};
  if (local.open) buffer(local.open);
  if (local.switchTo) {
    const existing = findBuffer(local.switchTo);
    if (existing) switchTo(existing.key);
    else state.pendingSwitch = local.switchTo;
  }
  if (local.open && !local.switchTo) switchTo(findBuffer(local.open).key);
  if (local.sent && !state.caps.has("echo-message")) {
    const { to, text: body, action } = local.sent;
    addMessage(buffer(to), { kind: action ? "action" : "message", from: state.nick, text: body, time: Date.now(), self: true });
  }
  if (local.help) HELP.forEach((line) => serverNote(line));
  if (local.close) closeBuffer(local.close);
  if (local.quit) {
    connection.close();
    location.reload();
  }
}

function closeBuffer(name) {
  const buf = findBuffer(name);
  if (!buf || buf.kind === "server") return;
  state.buffers.delete(buf.key);
  switchTo(ordered()[0].key);
}

function complete(input) {
  const buf = findBuffer(state.current);
  const caret = input.selectionStart;
  let comp = state.completion;
  if (!comp || comp.value !== input.value) {
    const before = input.value.slice(0, caret);
    const start = before.search(/\S*$/);
    const word = before.slice(start).toLowerCase();
    if (!word || !buf) return;
    const nicks = [...buf.members.keys(), ...(buf.kind === "query" ? [buf.name] : [])];
    const matches = nicks.filter((n) => n.toLowerCase().startsWith(word) && !isMe(n)).sort();
    if (!matches.length) return;
    comp = { start, end: caret, matches, index: -1, value: "" };
  }
  comp.index = (comp.index + 1) % comp.matches.length;
  const suffix = comp.start === 0 ? ": " : " ";
  const insert = comp.matches[comp.index] + suffix;
  const value = input.value.slice(0, comp.start) + insert + input.value.slice(comp.end);
  comp.end = comp.start + insert.length;
  input.value = value;
  input.setSelectionRange(comp.end, comp.end);
  comp.value = value;
  state.completion = comp;
}

// ---- typing, the composer's mode, account confirmation -----------------------------------------

function renderTyping() {
  const buf = findBuffer(state.current);
  $("typing").textContent = buf && buf.typing ? describeTyping(buf.typing.active()) : "";
}

// "Replying to bob: …" / "Editing your message" above the input; null: back to plain.
function showComposerMode(what, text) {
  $("compose-mode").hidden = what === null;
  $("compose-what").textContent = what || "";
  if (text !== null) $("input").value = text;
  if (what !== null) $("input").focus();
}

function askCode(account, text) {
  $("verify-text").textContent = text;
  $("verify-form").dataset.account = account;
  $("verify").showModal();
  $("verify-code").focus();
}

function setCreateMode(on) {
  $("create-fields").hidden = !on;
  $("register").checked = on;
  $("login-title").textContent = on ? "Create an account" : "securechat";
  $("connect").textContent = on ? "Create account" : "Connect";
  $("create-toggle").textContent = on ? "I have an account" : "Create an account";
  $("password").required = on;
  $("password").autocomplete = on ? "new-password" : "current-password";
}

function sendComposer() {
  const input = $("input");
  submit(input.value);
  input.value = "";
  state.completion = null;
}

// ---- quick switcher (Ctrl-K) --------------------------------------------------------------------

function openSwitcher() {
  const dialog = $("switcher");
  $("switcher-input").value = "";
  fillSwitcher("");
  dialog.showModal();
  $("switcher-input").focus();
}

function switcherMatches(query) {
  const q = query.toLowerCase().replace(/^#/, "");
  return ordered().filter((b) => b.kind !== "server" && b.name.toLowerCase().replace(/^#/, "").includes(q));
}

function fillSwitcher(query) {
  const list = $("switcher-list");
  list.replaceChildren();
  switcherMatches(query).forEach((buf, index) => {
    const item = el("li", "switcher-item", buf.name);
    item.setAttribute("role", "option");
    item.setAttribute("aria-selected", index === 0 ? "true" : "false");
    item.addEventListener("click", () => {
      $("switcher").close();
      switchTo(buf.key);
    });
    list.append(item);
  });
}

// ---- start --------------------------------------------------------------------------------------

function start() {
  const savedNick = localStorage.getItem("securechat.nick");
  const savedPassword = localStorage.getItem("securechat.password");
  if (savedNick) $("nick").value = savedNick;
  if (savedPassword) {
    $("password").value = savedPassword;
    $("remember").checked = true;
  }
  buffer(SERVER, "server");
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.nick = $("nick").value.trim();
    state.password = $("password").value;
    state.register = $("register").checked && !!state.password;
    state.email = $("email").value.trim();
    if (!state.nick) return;
    if (state.register && /\s/.test(state.password)) {
      // NickServ REGISTER takes one word: a spaced password would be cut at the space.
      $("login-error").textContent = "A password to register cannot contain spaces.";
      return;
    }
    localStorage.setItem("securechat.nick", state.nick);
    if ($("remember").checked && state.password) localStorage.setItem("securechat.password", state.password);
    else localStorage.removeItem("securechat.password");
    $("login-error").textContent = "";
    $("connect").disabled = true;
    connect();
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendComposer();
  });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Tab" && !event.shiftKey) {
      event.preventDefault();
      complete(event.target);
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault(); // Shift+Enter writes a new line; a pasted block keeps its lines
      sendComposer();
    } else if (event.key === "Escape" && modern.mode) {
      event.preventDefault();
      modern.cancel();
      event.target.value = "";
    } else if (event.key === "ArrowUp" && !event.target.value) {
      const buf = findBuffer(state.current); // Up in an empty input edits your last message
      if (buf && buf.kind !== "server" && modern.editLast(buf)) event.preventDefault();
    }
  });
  $("input").addEventListener("input", (event) => modern.typed(event.target.value));
  $("compose-cancel").addEventListener("click", () => {
    modern.cancel();
    $("input").value = "";
  });
  $("create-toggle").addEventListener("click", () => setCreateMode($("create-fields").hidden));
  $("verify-form").addEventListener("submit", (event) => {
    event.preventDefault();
    modern.verify(event.target.dataset.account, $("verify-code").value.trim());
    $("verify").close();
  });
  setInterval(() => modern.tick(), 1000); // typing: paused, done, and others' that went stale
  document.addEventListener("keydown", (event) => {
    if (event.altKey && /^[1-9]$/.test(event.key)) {
      const buf = ordered()[Number(event.key) - 1];
      if (buf) {
        event.preventDefault();
        switchTo(buf.key);
      }
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      openSwitcher();
    }
  });
  $("switcher-input").addEventListener("input", (event) => fillSwitcher(event.target.value));
  $("switcher-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const [first] = switcherMatches($("switcher-input").value);
    $("switcher").close();
    if (first) switchTo(first.key);
  });
  $("log").addEventListener("scroll", () => {
    const buf = findBuffer(state.current);
    if (buf && buf.kind !== "server" && $("log").scrollTop < 60) maybeLoadHistory(buf);
  });
  $("join-button").addEventListener("click", () => {
    const input = $("input");
    input.value = "/join #";
    input.focus();
  });
  $("notify-button").addEventListener("click", async () => {
    if (!("Notification" in window)) return;
    await Notification.requestPermission();
    $("notify-button").hidden = Notification.permission === "granted";
  });
  if ("Notification" in window && Notification.permission === "granted") $("notify-button").hidden = true;
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("show-sidebar");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  $("members-button").addEventListener("click", () => {
    const open = document.body.classList.toggle("show-members");
    $("members-button").setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("visibilitychange", () => {
    const buf = findBuffer(state.current);
    if (!document.hidden && buf) {
      buf.unread = 0;
      buf.mentions = 0;
      modern.markRead(buf);
      renderSidebar();
    }
  });
}

start();
