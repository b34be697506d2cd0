"""The full-screen client (Textual): renders the session's state and maps keys to actions.

Rules:
- Nothing here decides anything about the protocol: input goes to
  ``Client.submit``, keys call the session's navigation methods, and after any
  change the screen is redrawn from the session's buffers.
- Incoming lines never touch the input line; the scrollback grows by the lines
  added since the last redraw, and only follows the end when it was already
  there (so reading back with PageUp is not interrupted).
- Keys are the ones irssi and WeeChat users have in their fingers: Alt-1…9,
  Ctrl-N/Ctrl-P, Alt-a, PageUp/PageDown, Up/Down for input history, Tab.
  PageUp at the top of the scrollback fetches older history from the server.
- History lines are dimmed (and dated when not from today), live lines in full
  colour; a wrapped line continues under the text, not under the time. The input
  history keeps passwords masked (``/login ********``).
- It fits an 80x24 terminal: 16 columns of buffers, 14 of nicks, 50 of scrollback.
- Every line typed or pasted is sent exactly once, in order. Enter is handled by
  the input itself, in the order its keys arrived: a fast burst of keys (a
  terminal delivers ``a`` Enter ``b`` Enter at once) is never merged. A paste of
  more than ``paste_confirm_lines`` lines asks first (Enter sends, Esc cancels).
- A mention or a private message rings the bell or raises a desktop notification
  (OSC 777 and OSC 9; ``notify``), and lines arriving while scrolled up are
  counted in the status bar until PageDown reaches them.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, RichLog, Static

from securechat.client.buffers import Buffer, Kind, Line, Style, printable
from securechat.client.commands import mask_input
from securechat.client.decor import Decor, Decorator
from securechat.client.net import Client
from securechat.client.session import Session
from securechat.client.trust import ConnectError, Streams, TrustError, open_trusted
from securechat.client.typing import describe as describe_typing
from securechat.protocol.names import casefold

NICK_COLOURS = (
    "cyan",
    "green",
    "yellow",
    "magenta",
    "bright_blue",
    "bright_cyan",
    "bright_green",
    "bright_magenta",
    "orange1",
    "deep_pink2",
    "spring_green2",
    "gold1",
)
HISTORY_SIZE = 200
MAX_HANGING_INDENT = 24  # a longer time+nick prefix wraps plainly: the text needs the room
DEFAULT_PASTE_CONFIRM_LINES = 3


@dataclass(slots=True, frozen=True)
class Options:
    """What the settings file says about the screen (config keys of the same names)."""

    notify: str = "bell"  # "bell" | "desktop" (OSC 777 / OSC 9 notification) | "none"
    paste_confirm_lines: int = DEFAULT_PASTE_CONFIRM_LINES  # longer pastes ask first


def nick_colour(nick: str) -> str:
    """The same colour for the same nick, in every run and on every machine."""
    return NICK_COLOURS[zlib.crc32(casefold(nick).encode()) % len(NICK_COLOURS)]


def render_line(line: Line, today: date | None = None, decor: Decor | None = None) -> Text:
    """``12:04 <alice> hello`` with the nick in its colour and mentions highlighted.

    History is dimmed; history from another day than ``today`` shows its date.
    """
    prefix, body = render_parts(line, today, decor)
    return prefix.append_text(body)


def render_entry(
    line: Line, today: date | None = None, decor: Decor | None = None
) -> RenderableType:
    """A line for the scrollback: wrapped text continues under the text, not under the time.

    A reply starts with the quote it answers, reactions follow on their own line, and
    the lines of a multiline message stay together under the text.
    """
    prefix, body = render_parts(line, today, decor)
    if prefix.cell_len > MAX_HANGING_INDENT:
        return prefix.append_text(body)
    grid = Table.grid(padding=0, expand=True)
    grid.add_column(width=prefix.cell_len, no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    grid.add_row(prefix, body)
    return grid


def render_parts(
    line: Line, today: date | None = None, decor: Decor | None = None
) -> tuple[Text, Text]:
    """The time and nick part and the text part of a line, styled."""
    local = line.time.astimezone()
    dated = line.history and local.date() != (today or datetime.now().astimezone().date())
    # Not Text(stamp, style="dim"): a Text's own style applies to all of it, so every
    # line would be dim. Each span gets its style; history alone is dimmed whole.
    text = Text()
    text.append(local.strftime("%m-%d %H:%M " if dated else "%H:%M "), style="dim")
    nick = Text(line.nick, style=f"bold {nick_colour(line.nick)}")
    if line.style is Style.MESSAGE:
        text.append_text(Text.assemble("<", nick, "> "))
    elif line.style is Style.ACTION:
        text.append_text(Text.assemble("* ", nick, " "))
    elif line.style is Style.NOTICE:
        text.append_text(Text.assemble("-", nick, "- "))
    else:
        text.append("-!- ", style="red" if line.style is Style.ERROR else "blue")
    body_style = {Style.ERROR: "red", Style.EVENT: "dim", Style.INFO: ""}.get(line.style, "")
    if line.highlight:
        # A mention in history is shown, but not as loudly as a new one.
        body_style = "bold" if line.history else "bold white on dark_red"
    if line.redacted:
        body_style = "dim italic"
    body = Text(line.text, style=body_style)
    if decor is not None:
        body = _decorated(body, decor)
    if line.history:
        text.stylize("dim")
        body.stylize("dim")
    return text, body


def _decorated(body: Text, decor: Decor) -> Text:
    """The quote above, "(edited)" after, and reactions under a message's text."""
    out = Text()
    if decor.quote:
        out.append(f"↪ {decor.quote}\n", style="dim italic")
    out.append_text(body)
    if decor.edited:
        out.append(" (edited)", style="dim")
    if decor.reactions:
        out.append(f"\n{decor.reactions}", style="bold")
    return out


def render_buffer_list(session: Session) -> Text:
    text = Text()
    for index, buffer in enumerate(session.ordered, start=1):
        shown = buffer is session.shown
        style = "reverse" if shown else ("bold" if buffer.unread else "")
        text.append(f"{index:>2} {printable(buffer.name)}", style=style)
        if buffer.mentions:
            text.append(f" {buffer.mentions}!", style="bold white on dark_red")
        elif buffer.unread:
            text.append(f" {buffer.unread}", style="bold yellow")
        text.append("\n")
    return text


def render_nicks(session: Session, buffer: Buffer) -> Text:
    if buffer.kind is not Kind.ROOM:
        return Text()
    members = session.sorted_members(buffer)
    text = Text(f"{len(members)} here\n", style="dim")
    for member in members:
        text.append(member.prefixes[:1] or " ", style="bold")
        text.append(f"{member.nick}\n", style=nick_colour(member.nick))
    return text


def render_topic(session: Session, label: str) -> Text:
    buffer = session.shown
    name = printable(buffer.name)
    if buffer.kind is Kind.ROOM:
        topic = printable(buffer.topic) or "(no topic)"
        return Text.assemble((name, "bold"), ": ", topic)
    if buffer.kind is Kind.PRIVATE:
        return Text.assemble("Private conversation with ", (name, f"bold {nick_colour(name)}"))
    return Text(f"{label} — type /help for commands, /join ROOM to start")


def render_status(client: Client, below: int = 0) -> Text:
    session = client.session
    position = session.ordered.index(session.shown) + 1
    if session.registered:
        state = Text("connected", style="green")
    elif client.connected:
        state = Text("registering…", style="yellow")
    else:
        state = Text("disconnected — reconnecting", style="bold red")
    active = [
        str(i)
        for i, b in enumerate(session.ordered, start=1)
        if b.unread and b is not session.shown
    ]
    text = Text.assemble(f"[{session.nick}] [{position}:{printable(session.shown.name)}] ", state)
    if session.away:
        text.append("  [away]", style="yellow")
    if session.account is not None:
        text.append(f"  logged in as {printable(session.account)}", style="green")
    if active:
        text.append(f"  Act: {','.join(active)}", style="bold yellow")
    typing = describe_typing(session.shown.typing.active())
    if typing:
        text.append(f"  {printable(typing)}", style="italic cyan")
    if below:
        text.append(f"  ▼ {below} new below (PageDown)", style="bold reverse")
    return text


def notification(buffer: Buffer, line: Line) -> str:
    """OSC 777 (rxvt, foot, VTE terminals) and OSC 9 (iTerm2, kitty, WezTerm) notifications.

    A terminal ignores the one it does not know. The text is from the network: only
    printable characters, and none that would end the sequence early.
    """
    where = printable(buffer.name)
    said = printable(f"<{line.nick}> {line.text}" if line.nick else line.text)
    title, body = (_osc_safe(t)[:200] for t in (f"securechat {where}", said))
    return f"\x1b]777;notify;{title};{body}\x1b\\\x1b]9;{title}: {body}\x1b\\"


def _osc_safe(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in ";\x1b\x07\x9c")


class ChatInput(Input):
    """The input line, with history (Up/Down) and Tab completion from the session.

    Enter, Up, Down and Tab are handled here, in the order keys reach the input. As
    bindings they would run when the key has bubbled up to the app, after keys that
    came later were already typed in: a burst of lines would be sent merged.
    """

    PLACEHOLDER = "Type a message or /help"

    @dataclass
    class Pasted(Message):
        """Several lines pasted at once (a bracketed paste with line breaks).

        ``question`` is set when the input now waits for Enter / Esc before sending them.
        """

        lines: list[str]
        question: str | None = None

    @dataclass
    class PasteAnswered(Message):
        """The answer to "Send N lines?": ``send`` True for Enter, False for Esc."""

        lines: list[str]
        send: bool

    def __init__(
        self, session: Session, paste_confirm_lines: int = DEFAULT_PASTE_CONFIRM_LINES
    ) -> None:
        super().__init__(placeholder=self.PLACEHOLDER, id="input")
        self.session = session
        self.paste_confirm_lines = paste_confirm_lines
        self.history: list[str] = []
        self.position = 0
        self.pending: list[str] | None = None  # a paste waiting for Enter / Esc

    async def _on_key(self, event: events.Key) -> None:
        handled = {
            "enter": self._submit,
            "up": lambda: self.action_history(-1),
            "down": lambda: self.action_history(1),
            "tab": self.action_complete,
        }
        if self.pending is not None:
            event.stop()
            event.prevent_default()
            if event.key in ("enter", "escape"):
                self._answer(event.key == "enter")
            return
        action = handled.get(event.key)
        if action is not None:  # else Input's own handler runs next (Textual walks the MRO)
            event.stop()
            event.prevent_default()
            action()

    def _submit(self) -> None:
        self.session.typing_over()  # sending ends typing: clearing the input is not "done"
        text, self.value = self.value, ""
        self.remember(text)
        self.post_message(self.Submitted(self, text))

    def ask(self, lines: list[str], question: str) -> None:
        self.pending = lines
        self.placeholder = question
        self.value = ""

    def _answer(self, send: bool) -> None:
        lines, self.pending = self.pending or [], None
        self.placeholder = self.PLACEHOLDER
        self.post_message(self.PasteAnswered(lines, send))

    def _on_paste(self, event: events.Paste) -> None:
        # prevent_default: Input's own handler would keep the first line and drop the rest.
        event.stop()
        event.prevent_default()
        text = event.text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
        if self.pending is not None or not text:
            return
        if "\n" not in text:
            self.insert_text_at_cursor(text)  # one line: into the input, to edit or send
            return
        cursor = self.cursor_position
        lines = (self.value[:cursor] + text + self.value[cursor:]).split("\n")
        self.value = ""
        if len(lines) <= self.paste_confirm_lines:
            self.post_message(self.Pasted(lines))
            return
        # Asked here, at once: keys typed after the paste must wait for the answer too.
        where = printable(self.session.shown.name)
        question = f"Send {len(lines)} lines to {where}? Enter / Esc"
        self.ask(lines, question)
        self.post_message(self.Pasted(lines, question))

    def remember(self, text: str) -> None:
        text = mask_input(text)  # Up must never bring a password back on screen
        if text and (not self.history or self.history[-1] != text):
            self.history = [*self.history, text][-HISTORY_SIZE:]
        self.position = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self.position = max(0, min(len(self.history), self.position + step))
        self.value = self.history[self.position] if self.position < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        edit = self.session.complete(self.value, self.cursor_position)
        if edit is not None:
            self.value = edit.text
            self.cursor_position = edit.cursor


def _read_alt_digits_as_alt_keys() -> None:
    """Make Alt-1…9 arrive as ``alt+1``… in every terminal.

    xterm, tmux, GNOME Terminal and most Linux terminals send Alt-3 as ESC ``3``;
    Textual reads those bytes as the character a macOS Option key would type
    (``£``), so the irssi keys would insert symbols instead of switching buffers.
    Dropping those few entries lets Textual's generic "ESC + key = Alt + key" apply.
    """
    try:
        from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
    except ImportError:  # a Textual without that table: nothing to undo
        return
    for digit in "0123456789":
        ANSI_SEQUENCES_KEYS.pop(f"\x1b{digit}", None)  # type: ignore[attr-defined]


_read_alt_digits_as_alt_keys()

_ALT_DIGITS = [
    Binding(f"alt+{d}", f"show({d - 1})", show=False, priority=True) for d in range(1, 10)
]


class ChatApp(App[int]):
    """One session on screen. ``failure`` holds the message when it ended on an error."""

    TITLE = "securechat"
    ENABLE_COMMAND_PALETTE = False  # Ctrl-P is "previous buffer" here, as in irssi
    CSS = """
    #topic { height: 1; background: $boost; color: $text; padding: 0 1; }
    #main { height: 1fr; }
    #buffers { width: 16; height: 100%; border-right: solid $primary-darken-2; }
    #log { width: 1fr; scrollbar-size-vertical: 1; }
    #nicks { width: 14; height: 100%; border-left: solid $primary-darken-2; }
    #status { height: 1; background: $boost; padding: 0 1; }
    #input { height: 1; border: none; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next(1)", "next buffer", priority=True),
        Binding("ctrl+p", "next(-1)", "previous buffer", priority=True),
        Binding("alt+a", "active", "next active buffer", priority=True),
        Binding("pageup", "page(-1)", show=False, priority=True),
        Binding("pagedown", "page(1)", show=False, priority=True),
        Binding("ctrl+c", "quit_chat", "quit", priority=True),
        *_ALT_DIGITS,
    ]

    def __init__(
        self, client: Client, streams: Streams | None = None, options: Options | None = None
    ) -> None:
        super().__init__()
        self.client = client
        self.session = client.session
        self.streams = streams
        self.options = options or Options()
        self.failure: str | None = None
        self.alerts_sent: list[str] = []  # what was written to the terminal to alert (bell, OSC)
        self.below = 0  # lines added while scrolled up, not yet seen
        self._drawn: tuple[str, int, int] = ("", -1, 0)  # buffer key, generation, lines drawn

    def compose(self) -> ComposeResult:
        yield Static(id="topic")
        with Horizontal(id="main"):
            yield Static(id="buffers")
            # min_width: RichLog's default (78) would overflow the log at 80 columns.
            yield RichLog(id="log", wrap=True, markup=False, auto_scroll=False, min_width=20)
            yield Static(id="nicks")
        yield Static(id="status")
        yield ChatInput(self.session, self.options.paste_confirm_lines)

    def on_mount(self) -> None:
        self.client.on_change = self.redraw
        self.query_one(ChatInput).focus()
        self.redraw()
        self.run_client()
        self.set_interval(1.0, self.client.tick)  # typing: paused, done, and stale typers

    def on_input_changed(self, event: Input.Changed) -> None:
        self.client.typed(event.value)

    @work(exclusive=True, group="client")
    async def run_client(self) -> None:
        try:
            await self.client.run(self.streams)
        except (TrustError, ConnectError) as exc:
            self.failure = str(exc)
        if self.client.gave_up is not None and not self.session.quitting:
            self.redraw()  # the warning is on screen; the scrollback stays until /quit
            return
        self.exit(1 if self.failure else 0)

    # ---- drawing ------------------------------------------------------------------------

    def redraw(self) -> None:
        session = self.session
        self.client.send_pending()  # e.g. MARKREAD for a buffer just shown
        self.session.drain()  # the scrollback is drawn from buffers, not from this feed
        self.query_one("#topic", Static).update(render_topic(session, self.client.endpoint.label))
        self.query_one("#buffers", Static).update(render_buffer_list(session))
        # The nick list keeps its place even where it is empty: a log that changed width
        # would keep lines wrapped for the old width.
        self.query_one("#nicks", Static).update(render_nicks(session, session.shown))
        self._draw_log()
        self.query_one("#status", Static).update(render_status(self.client, self.below))
        self._alert(session.drain_alerts())

    def _alert(self, alerts: list[tuple[Buffer, Line]]) -> None:
        """One bell or notification per redraw, however many mentions it brought."""
        if not alerts or self.options.notify == "none":
            return
        buffer, line = alerts[-1]
        sequence = notification(buffer, line) if self.options.notify == "desktop" else ""
        self.alerts_sent.append(sequence + "\a")
        if self._driver is not None and not self.is_headless:
            self._driver.write(sequence + "\a")

    def on_resize(self) -> None:
        # Lines are wrapped when written: after a resize, write them again at the new width.
        self._drawn = ("", -1, 0)
        self.call_after_refresh(self._draw_log)

    def _draw_log(self) -> None:
        log = self.query_one(RichLog)
        buffer = self.session.shown
        key, generation, drawn = self._drawn
        if (key, generation) != (buffer.key, buffer.generation):
            log.clear()
            drawn = buffer.appended - len(buffer.lines)
        fresh = min(buffer.appended - drawn, len(buffer.lines))
        follow = log.is_vertical_scroll_end or key != buffer.key
        decorator = Decorator(buffer, self.session.nick)
        for line in list(buffer.lines)[len(buffer.lines) - fresh :]:
            decor = decorator.decor(line)
            if not decor.hidden:
                log.write(render_entry(line, decor=decor), scroll_end=follow)
        self.below = 0 if follow else self.below + max(fresh, 0)
        self._drawn = (buffer.key, buffer.generation, buffer.appended)

    # ---- input and keys -----------------------------------------------------------------

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        # The input has already been cleared (and remembered) when Enter reached it.
        if event.value:
            self.client.submit(event.value)
        if self.session.quitting:
            await self.client.quit()
            if self.client.gave_up is not None:
                self.exit(0)  # the client stopped already: nothing else will end the app

    def on_chat_input_pasted(self, event: ChatInput.Pasted) -> None:
        if event.question is None:
            self.client.submit_paste(event.lines)
            return
        self.session.note(f"{event.question} (Enter sends them, Esc cancels)", self.client.clock())
        self.redraw()

    async def on_chat_input_paste_answered(self, event: ChatInput.PasteAnswered) -> None:
        if event.send:
            self.client.submit_paste(event.lines)
        else:
            self.session.note("Paste cancelled: nothing was sent.", self.client.clock())
            self.redraw()
        if self.session.quitting:
            await self.client.quit()

    def action_next(self, step: int) -> None:
        self.session.show_next(step)
        self.redraw()

    def action_show(self, index: int) -> None:
        if self.session.show_index(index):
            self.redraw()

    def action_active(self) -> None:
        if self.session.show_active():
            self.redraw()

    def action_page(self, step: int) -> None:
        log = self.query_one(RichLog)
        if step < 0 and log.scroll_y <= 0:
            self.client.page_history()  # at the top already: fetch what came before
        elif step < 0:
            log.scroll_page_up(animate=False)
        else:
            log.scroll_page_down(animate=False)
            self.call_after_refresh(self._saw_bottom)

    def _saw_bottom(self) -> None:
        if self.below and self.query_one(RichLog).is_vertical_scroll_end:
            self.below = 0
            self.query_one("#status", Static).update(render_status(self.client))

    async def action_quit_chat(self) -> None:
        await self.client.quit()
        self.exit(0)


async def run(client: Client, options: Options | None = None) -> int:
    """Settle trust on the plain terminal (it may ask a question), then go full screen."""
    streams = await open_trusted(client.endpoint, client.trust)
    app = ChatApp(client, streams, options)
    await app.run_async()
    if app.failure:
        print(app.failure, file=sys.stderr)
        return 1
    return 0
