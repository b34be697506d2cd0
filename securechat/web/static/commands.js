// What the user types, turned into IRC lines: the terminal client's slash commands.
// run(text, ctx) returns { lines: [...], local: {...} | null, error: string | null }.
import { build } from "./irc.js";

export const HELP = [
  "/join #room [key] — join or create a room",
  "/part [#room] [reason] — leave a room",
  "/msg nick text — private message (opens a conversation)",
  "/query nick — open a conversation",
  "/me action — an action (/me waves)",
  "/nick newnick — change your nick",
  "/topic [text] — show or set the room's topic",
  "/away [reason] — mark yourself away; /away alone comes back",
  "/invite nick [#room] — invite someone",
  "/kick nick [reason] — remove someone from the room",
  "/mode target modes [args] — change modes (+o nick, +m, +i ...)",
  "/whois nick — who is that",
  "/notice target text — a notice",
  "/close — close this conversation (leaves a room)",
  "/quote LINE — send a raw IRC line",
  "/reply -1|nick text — reply to a message (or its Reply button)",
  "/react [-N|nick] emoji — react (or click React under a message); /unreact takes it back",
  "/edit [-N] text — correct your message (or Up in an empty input); /delete [-N] removes it",
  "/markread — mark this conversation read on all your devices",
  "/quit [reason] — disconnect",
  "Keys: Tab completes nicks, Alt-1…9 switch rooms, Ctrl-K finds a room, Shift+Enter a new line, Esc cancels a reply or edit",
];

function ok(lines, local = null) {
  return { lines, local, error: null };
}

function fail(error) {
  return { lines: [], local: null, error };
}

function needTarget(ctx) {
  return ctx.target ? null : fail("Open a room or conversation first.");
}

const COMMANDS = {
  join(args) {
    if (!args[0]) return fail("Usage: /join #room [key]");
    const room = args[0].startsWith("#") ? args[0] : "#" + args[0];
    return ok([args[1] ? build("JOIN", room, args[1]) : build("JOIN", room)], { switchTo: room });
  },
  part(args, rest, ctx) {
    const room = args[0] && args[0].startsWith("#") ? args[0] : ctx.room;
    if (!room) return fail("Usage: /part #room [reason]");
    const reason = room === args[0] ? rest.slice(args[0].length).trim() : rest;
    return ok([reason ? build("PART", room, reason) : build("PART", room)]);
  },
  msg(args, rest) {
    if (args.length < 2) return fail("Usage: /msg nick text");
    const text = rest.slice(args[0].length).trim();
    return ok([build("PRIVMSG", args[0], text)], { open: args[0], sent: { to: args[0], text } });
  },
  query(args) {
    if (!args[0]) return fail("Usage: /query nick");
    return ok([], { open: args[0], switchTo: args[0] });
  },
  me(args, rest, ctx) {
    return (
      needTarget(ctx) ||
      ok([build("PRIVMSG", ctx.target, `\x01ACTION ${rest}\x01`)], {
        sent: { to: ctx.target, text: rest, action: true },
      })
    );
  },
  nick(args) {
    return args[0] ? ok([build("NICK", args[0])]) : fail("Usage: /nick newnick");
  },
  topic(args, rest, ctx) {
    if (!ctx.room) return fail("/topic works in a room.");
    return ok([rest ? build("TOPIC", ctx.room, rest) : build("TOPIC", ctx.room)]);
  },
  away(args, rest) {
    return ok([rest ? build("AWAY", rest) : build("AWAY")]);
  },
  invite(args, rest, ctx) {
    const room = args[1] || ctx.room;
    if (!args[0] || !room) return fail("Usage: /invite nick [#room]");
    return ok([build("INVITE", args[0], room)]);
  },
  kick(args, rest, ctx) {
    if (!args[0] || !ctx.room) return fail("Usage: /kick nick [reason] (in a room)");
    const reason = rest.slice(args[0].length).trim();
    return ok([reason ? build("KICK", ctx.room, args[0], reason) : build("KICK", ctx.room, args[0])]);
  },
  mode(args, rest, ctx) {
    if (!args.length) return ctx.room ? ok([build("MODE", ctx.room)]) : fail("Usage: /mode target modes");
    const target = args[0].startsWith("#") || !ctx.room ? args : [ctx.room, ...args];
    return ok([build("MODE", ...target)]);
  },
  whois(args) {
    return args[0] ? ok([build("WHOIS", args[0])]) : fail("Usage: /whois nick");
  },
  notice(args, rest) {
    if (args.length < 2) return fail("Usage: /notice target text");
    return ok([build("NOTICE", args[0], rest.slice(args[0].length).trim())]);
  },
  close(args, rest, ctx) {
    return ok(ctx.room ? [build("PART", ctx.room)] : [], { close: ctx.target });
  },
  quote(args, rest) {
    return rest ? ok([rest.replace(/[\r\n\0]/g, " ")]) : fail("Usage: /quote LINE");
  },
  quit(args, rest) {
    return ok([build("QUIT", rest || "Leaving")], { quit: true });
  },
  help() {
    return ok([], { help: true });
  },
};
COMMANDS.j = COMMANDS.join;
COMMANDS.leave = COMMANDS.part;
COMMANDS.q = COMMANDS.query;
COMMANDS.raw = COMMANDS.quote;

export function run(text, ctx) {
  if (!text.startsWith("/") || text.startsWith("//")) {
    const body = text.startsWith("//") ? text.slice(1) : text;
    return needTarget(ctx) || ok([build("PRIVMSG", ctx.target, body)], { sent: { to: ctx.target, text: body } });
  }
  const rest = text.slice(1);
  const space = rest.indexOf(" ");
  const name = (space === -1 ? rest : rest.slice(0, space)).toLowerCase();
  const argText = space === -1 ? "" : rest.slice(space + 1).trim();
  const handler = COMMANDS[name];
  if (!handler) return fail(`Unknown command /${name} — /help lists them.`);
  return handler(argText ? argText.split(/\s+/) : [], argText, ctx);
}

export const NAMES = Object.keys(COMMANDS);
