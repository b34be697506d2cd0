"""Two `securechat connect --plain` processes against a `securechat serve` process.

Everything runs as a user would run it: console commands, real TLS on
loopback, a port chosen by the server. Each wait reads output until the line
it expects arrives, with a timeout; nothing sleeps.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

TIMEOUT = 15.0
LINE = r"^\[\d\d:\d\d\] "  # the timestamp every plain-mode line starts with


class Proc:
    """A child process whose output lines are read by a thread and awaited with ``expect``."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], stdin: bool) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert self.popen.stdout is not None and self.popen.stderr is not None
        for stream in (self.popen.stdout, self.popen.stderr):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}") from None
            if line is None:
                continue  # one stream ended; the other may still hold the line
            self.seen.append(line)
            if match := regex.search(line):
                return match

    def send(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text + "\n")
        self.popen.stdin.flush()

    def close_input(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.close()

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class World:
    """The server and clients of one test, all stopped at the end."""

    def __init__(self, tmp_path: Path, cert_files: tuple[Path, Path], ca_file: Path) -> None:
        self.tmp_path = tmp_path
        self.cert, self.key = cert_files
        self.ca = ca_file
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
        self.procs: list[Proc] = []
        self.port = 0

    def _start(self, args: list[str], stdin: bool = False) -> Proc:
        proc = Proc([sys.executable, "-m", "securechat", *args], self.tmp_path, self.env, stdin)
        self.procs.append(proc)
        return proc

    def serve(self, port: int = 0) -> Proc:
        where = ["--host", "127.0.0.1", "--port", str(port), "--web-port", "0"]
        server = self._start(["serve", *where, "--cert", str(self.cert), "--key", str(self.key)])
        self.port = int(server.expect(r"listening on 127\.0\.0\.1:(\d+)")[1])
        return server

    def connect(self, nick: str, *extra: str) -> Proc:
        return self._start(
            ["connect", f"127.0.0.1:{self.port}", "--nick", nick, "--plain", *extra], stdin=True
        )

    def chat_client(self, nick: str, room: str) -> Proc:
        client = self.connect(nick, "--ca", str(self.ca))
        client.send(f"/join {room}")
        client.expect(rf"{LINE}{room} -!- You joined {room}$")
        return client

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture
def world(tmp_path: Path, cert_files: tuple[Path, Path], ca_file: Path) -> Iterator[World]:
    world = World(tmp_path, cert_files, ca_file)
    yield world
    world.stop()


def test_two_clients_talk_in_a_room(world: World) -> None:
    world.serve()
    alice = world.chat_client("alice", "#room")
    bob = world.chat_client("bob", "#room")
    alice.expect(rf"{LINE}#room -!- bob \(.*\) joined #room$")
    bob.send("hello alice")
    alice.expect(rf"{LINE}#room <bob> hello alice$")
    alice.send("/me waves")
    bob.expect(rf"{LINE}#room \* alice waves$")


def test_two_clients_talk_privately(world: World) -> None:
    world.serve()
    alice = world.chat_client("alice", "#room")
    bob = world.chat_client("bob", "#room")
    alice.send("/msg bob just between us")
    bob.expect(rf"{LINE}alice <alice> just between us$")
    bob.send("/msg alice agreed")
    alice.expect(rf"{LINE}bob <bob> agreed$")


def test_end_of_input_quits_and_exits_zero(world: World) -> None:
    world.serve()
    alice = world.chat_client("alice", "#room")
    bob = world.chat_client("bob", "#room")
    alice.close_input()
    assert alice.wait() == 0
    bob.expect(rf"{LINE}#room -!- alice quit")


def test_piped_commands_run_in_order_after_registration(world: World) -> None:
    world.serve()
    bob = world.chat_client("bob", "#ops")
    alice = world.connect("alice", "--ca", str(world.ca))
    alice.send("/join #ops")
    alice.send("deploy done")
    alice.close_input()
    bob.expect(rf"{LINE}#ops <alice> deploy done$")
    assert alice.wait() == 0


def test_server_restart_is_survived_with_reconnect_and_rejoin(world: World) -> None:
    server = world.serve()
    alice = world.chat_client("alice", "#room")
    bob = world.chat_client("bob", "#room")
    server.stop()
    for client in (alice, bob):
        client.expect(rf"{LINE}#room -!- Disconnected")
    world.serve(port=world.port)
    for client in (alice, bob):
        client.expect(rf"{LINE}#room -!- You joined #room$")
    bob.send("still here?")
    alice.expect(rf"{LINE}#room <bob> still here\?$")


def test_untrusted_certificate_without_a_terminal_is_refused(world: World) -> None:
    world.serve()
    alice = world.connect("alice")  # no --ca, and no certs/ca.pem in the working directory
    alice.close_input()
    match = alice.expect(r"--trust-fingerprint ([0-9a-f]{64})")
    assert alice.wait() != 0
    pinned = world.connect("alice", "--trust-fingerprint", match[1])
    pinned.expect(r"-!- Connected to 127\.0\.0\.1:\d+ \(TLS\)")


def test_register_then_log_in_from_a_password_file_and_see_history(world: World) -> None:
    world.serve()
    password = "correct-horse"
    bob = world.chat_client("bob", "#room")
    bob.send(f"/register {password}")
    bob.expect(rf"{LINE}\S+ -!- You are now logged in as bob\.$")
    # Registered, so its history outlives the room (an unregistered room's ends with it).
    bob.send("/msg ChanServ REGISTER #room")
    bob.expect(r"#room is registered to bob")
    bob.send("said before you came back")
    bob.expect(rf"{LINE}#room <bob> said before you came back$")
    bob.close_input()
    assert bob.wait() == 0
    secret = world.tmp_path / "password"
    secret.write_text(password + "\n")
    again = world.connect("bob", "--ca", str(world.ca), "--password-file", str(secret))
    again.expect(rf"{LINE}\S+ -!- You are now logged in as bob\.$")  # SASL, while registering
    again.send("/join #room")
    again.expect(rf"{LINE}#room \[history\] <bob> said before you came back$")
    assert not any(password in line for line in bob.seen + again.seen)
