// The IRC wire format (Modern IRC "Messages", IRCv3 message-tags) and one WebSocket
// connection that reconnects with backoff. No DOM here.

const TAG_ESCAPES = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };

export function casefold(name) {
  // CASEMAPPING=ascii: only A-Z fold.
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function unescapeTag(value) {
  return value.replace(/\\(.?)/g, (_, c) => (c in TAG_ESCAPES ? TAG_ESCAPES[c] : c));
}

export function parse(line) {
  const msg = { tags: {}, source: "", nick: "", command: "", params: [] };
  let rest = line;
  if (rest.startsWith("@")) {
    const space = rest.indexOf(" ");
    for (const pair of rest.slice(1, space).split(";")) {
      const eq = pair.indexOf("=");
      if (eq === -1) msg.tags[pair] = "";
      else msg.tags[pair.slice(0, eq)] = unescapeTag(pair.slice(eq + 1));
    }
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  if (rest.startsWith(":")) {
    const space = rest.indexOf(" ");
    msg.source = rest.slice(1, space);
    msg.nick = msg.source.split("!")[0];
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  while (rest.length) {
    if (rest.startsWith(":")) {
      msg.params.push(rest.slice(1));
      break;
    }
    const space = rest.indexOf(" ");
    if (space === -1) {
      msg.params.push(rest);
      break;
    }
    msg.params.push(rest.slice(0, space));
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  if (!msg.command) msg.command = (msg.params.shift() || "").toUpperCase();
  return msg;
}

export function build(command, ...params) {
  // A line never carries CR, LF or NUL, whatever the user typed.
  const clean = params.map((p) => String(p).replace(/[\r\n\0]/g, " "));
  const last = clean.length ? clean[clean.length - 1] : null;
  if (last !== null && (last === "" || last.includes(" ") || last.startsWith(":"))) {
    clean[clean.length - 1] = ":" + last;
  }
  return [command, ...clean].join(" ");
}

const TAG_VALUE_ESCAPES = { ";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n" };

// A line with message tags in front (IRCv3 message-tags: values escaped).
export function buildTagged(tags, command, ...params) {
  const items = Object.entries(tags).map(([key, value]) =>
    value === "" || value === undefined ? key : `${key}=${String(value).replace(/[; \\\r\n]/g, (c) => TAG_VALUE_ESCAPES[c])}`,
  );
  const line = build(command, ...params);
  return items.length ? `@${items.join(";")} ${line}` : line;
}

// One connection at a time; after an unexpected close, a new one after 1, 2, 4 ... 30 s.
export class Connection {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers; // onopen(), online(msg), onstate(state, detail)
    this.socket = null;
    this.wanted = false;
    this.attempt = 0;
    this.timer = null;
  }

  open() {
    this.wanted = true;
    clearTimeout(this.timer);
    this.handlers.onstate("connecting");
    const socket = new WebSocket(this.url, ["text.ircv3.net", "binary.ircv3.net"]);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.handlers.onstate("registering");
      this.handlers.onopen();
    };
    socket.onmessage = (event) => {
      const data =
        typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data);
      this.handlers.online(parse(data));
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (!this.wanted) {
        this.handlers.onstate("disconnected");
        return;
      }
      const delay = Math.min(30, 2 ** this.attempt) * 1000;
      this.attempt += 1;
      this.handlers.onstate("reconnecting", Math.round(delay / 1000));
      this.timer = setTimeout(() => this.open(), delay);
    };
  }

  send(line) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(line);
  }

  close() {
    this.wanted = false;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
  }
}
