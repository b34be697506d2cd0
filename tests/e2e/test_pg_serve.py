"""`securechat serve --database postgresql://…` as an operator runs it: a subprocess on a real
PostgreSQL (tests/pg.py), restarted on the same database; and every way the URL or the
database can be wrong at start, each one line and exit 2, the password never shown."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path

import pytest

from securechat.certs import generate_dev_certs
from tests.e2e.test_serve import ROOT, STARTUP_TIMEOUT, ServeProcess, securechat
from tests.pg import PASSWORD as PG_PASSWORD
from tests.pg import PgCluster
from tests.support import IrcClient

PASSWORD = "correct-horse"


def certificate_flags(certs: Path) -> tuple[str, ...]:
    return ("--cert", str(certs / "server.pem"), "--key", str(certs / "server.key"))


def serve(certs: Path, url: str) -> ServeProcess:
    return ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--database", url), *certificate_flags(certs)
    )


def test_serve_keeps_accounts_rooms_and_history_in_postgresql_across_a_restart(
    tmp_path: Path, pg_url: str
) -> None:
    certs = generate_dev_certs(tmp_path / "certs")
    context = ssl.create_default_context(cafile=str(certs.ca_cert))

    first = serve(tmp_path / "certs", pg_url)
    alice = IrcClient.connect("127.0.0.1", first.port, context).register("alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    alice.join("#home")
    alice.send("PRIVMSG ChanServ :REGISTER #home")
    alice.expect(r"#home is registered to alice")
    alice.send("PRIVMSG #home :remember me")
    alice.send("PING :sync")
    alice.expect(r" PONG ")
    code, _ = first.stop()
    assert code == 0

    second = serve(tmp_path / "certs", pg_url)
    try:
        again = IrcClient.connect("127.0.0.1", second.port, context)
        again.send("CAP LS 302")
        again.send("CAP REQ :sasl batch server-time draft/chathistory")
        again.expect(r" CAP \S+ ACK ")
        again.send("NICK alice")
        again.send("USER alice 0 * :alice")
        again.send("AUTHENTICATE PLAIN")
        again.expect(r"^AUTHENTICATE \+")
        again.send("AUTHENTICATE " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
        again.expect(r" 903 ")
        again.send("CAP END")
        again.expect(r" 001 ")
        again.send("JOIN #home")
        assert again.expect(r" MODE #home ").params == ("#home", "+o", "alice")
        again.send("CHATHISTORY LATEST #home * 10")
        assert again.expect(r"PRIVMSG #home").params[-1] == "remember me"
        again.close()
    finally:
        second.stop()


def sasl_login(port: int, context: ssl.SSLContext, nick: str) -> IrcClient:
    caps = ("batch", "server-time", "message-tags", "draft/chathistory")
    return IrcClient.connect("127.0.0.1", port, context).login_plain(nick, PASSWORD, caps)


def test_two_serve_processes_on_one_database_share_accounts_and_history(
    tmp_path: Path, pg_url: str
) -> None:
    """No cluster: two independent `securechat serve` processes, one PostgreSQL. An account
    registered through one logs in through the other, and each sees the other's messages in
    CHATHISTORY with the msgids they were sent with, all distinct."""
    certs = generate_dev_certs(tmp_path / "certs")
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    first, second = serve(tmp_path / "certs", pg_url), serve(tmp_path / "certs", pg_url)
    try:
        alice = IrcClient.connect("127.0.0.1", first.port, context).register(
            "alice", ("batch", "server-time", "message-tags", "echo-message", "draft/chathistory")
        )
        alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        alice.expect(r" 900 ")
        alice.join("#both")
        alice.send("PRIVMSG #both :sent through the first")
        mine = alice.expect(r"PRIVMSG #both :sent through the first").tags["msgid"]

        other = sasl_login(second.port, context, "alice")  # the same account, other process
        other.join("#both")
        other.send("PRIVMSG #both :sent through the second")
        other.send("PING :stored")
        other.expect(r"PONG \S+ :?stored")
        seen: list[list[tuple[str, str]]] = []
        for conn in (alice, other):
            conn.send("CHATHISTORY LATEST #both * 10")
            conn.expect(r" BATCH \+\S+ chathistory :?#both")
            lines = []
            while (line := conn.expect(r" BATCH :?-|PRIVMSG #both")).command != "BATCH":
                lines.append((line.tags["msgid"], line.params[-1]))
            seen.append(lines)
        assert seen[0] == seen[1]
        assert [text for _, text in seen[0]] == [
            "sent through the first",
            "sent through the second",
        ]
        assert seen[0][0][0] == mine and len({msgid for msgid, _ in seen[0]}) == 2
    finally:
        first.stop()
        second.stop()


def refused(tmp_path: Path, url: str) -> str:
    """Start `securechat serve --database url`, expecting a refusal: its one error line."""
    certs = tmp_path / "certs"
    if not certs.exists():
        generate_dev_certs(certs)
    result = subprocess.run(
        securechat(
            "serve",
            *("--host", "127.0.0.1", "--port", "0", "--database", url),
            *certificate_flags(certs),
        ),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://chat@localhost/securechat", "unknown scheme 'mysql'"),
        ("sqlite:///var/lib/securechat.db", "SQLite is chosen with data_dir"),
        ("/var/lib/securechat.db", "is not a URL"),
        ("postgresql://localhost:notaport/securechat", "Port could not be cast"),
    ],
)
def test_a_url_that_is_not_postgresql_is_one_line_and_exit_2(
    tmp_path: Path, url: str, reason: str
) -> None:
    assert reason in refused(tmp_path, url)


def test_an_unreachable_postgresql_is_one_line_naming_the_url(tmp_path: Path) -> None:
    url = f"postgresql:///securechat?host={tmp_path}/nothing-listens-here"
    line = refused(tmp_path, url)
    assert f"cannot connect to database {url}" in line
    assert "No such file or directory" in line


def test_a_wrong_password_is_one_line_with_the_password_masked(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    url = pg_cluster.password_url("postgres", "not-the-password")
    line = refused(tmp_path, url)
    assert "password authentication failed" in line
    assert "not-the-password" not in line and "secretive:***@" in line


def test_a_missing_database_is_one_line_naming_it(tmp_path: Path, pg_cluster: PgCluster) -> None:
    url = pg_cluster.url("no_such_database")
    line = refused(tmp_path, url)
    assert 'database "no_such_database" does not exist' in line


def test_the_right_password_logs_in(tmp_path: Path, pg_cluster: PgCluster, pg_url: str) -> None:
    """The role with a password can use a database it owns (the URL carries the password)."""
    name = pg_url.split("?")[0].rsplit("/", 1)[1]
    url = pg_cluster.password_url(name, PG_PASSWORD)
    pg_cluster.grant_all(name)
    server = serve(generate_dev_certs(tmp_path / "certs").ca_cert.parent, url)
    code, log = server.stop()
    assert code == 0
    assert PG_PASSWORD not in "".join(server.startup_log) + log
