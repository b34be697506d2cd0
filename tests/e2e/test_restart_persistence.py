"""`securechat serve` stopped and started again on its data directory keeps accounts,
registered rooms and history, as a user running it sees them."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path

from securechat.certs import generate_dev_certs
from securechat.server.main import DATABASE_FILE
from securechat.server.store import HistoryRecord, Store
from tests.e2e.test_serve import ROOT, STARTUP_TIMEOUT, ServeProcess, securechat
from tests.support import IrcClient

PASSWORD = "correct-horse"


def serve(certs_dir: Path, data_dir: Path) -> ServeProcess:
    return ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)),
        *("--cert", str(certs_dir / "server.pem"), "--key", str(certs_dir / "server.key")),
    )


def test_accounts_rooms_and_history_survive_a_restart(tmp_path: Path) -> None:
    certs = generate_dev_certs(tmp_path / "certs")
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    data_dir = tmp_path / "data"

    first = serve(tmp_path / "certs", data_dir)
    alice = IrcClient.connect("127.0.0.1", first.port, context).register("alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    alice.join("#home")
    alice.send("PRIVMSG ChanServ :REGISTER #home")
    alice.expect(r"#home is registered to alice")
    alice.send("TOPIC #home :our place")
    alice.expect(r" TOPIC #home ")
    alice.send("PRIVMSG #home :remember me")
    alice.send("PING :sync")  # by the PONG the message is queued for commit: stop waits for it
    alice.expect(r" PONG ")
    code, _ = first.stop()
    assert code == 0

    second = serve(tmp_path / "certs", data_dir)
    try:
        again = IrcClient.connect("127.0.0.1", second.port, context)
        again.send("CAP LS 302")
        again.send("CAP REQ :sasl batch server-time")
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
        assert again.expect(r" 332 ").params[-1] == "our place"
        assert again.expect(r"PRIVMSG #home").params[-1] == "remember me"
        again.close()
    finally:
        second.stop()


def serve_once(certs_dir: Path, data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run `securechat serve` expecting it to refuse to start."""
    return subprocess.run(
        securechat(
            "serve",
            *("--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)),
            *("--cert", str(certs_dir / "server.pem"), "--key", str(certs_dir / "server.key")),
            *flags,
        ),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        cwd=ROOT,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if "error" in line]


def test_an_empty_database_file_is_refused_until_init_database_is_given(tmp_path: Path) -> None:
    """A 0-byte file is what a lost database looks like: starting on it as a new one would drop
    every account without a word. One line, exit 2; --init-database starts a new database."""
    generate_dev_certs(tmp_path / "certs")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / DATABASE_FILE).write_bytes(b"")

    refused = serve_once(tmp_path / "certs", data_dir)
    assert refused.returncode == 2
    (error,) = error_lines(refused)
    assert "empty (0 bytes)" in error and "--init-database" in error
    assert (data_dir / DATABASE_FILE).stat().st_size == 0  # left as it was

    started = ServeProcess(
        *("--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)),
        *(
            "--cert",
            str(tmp_path / "certs/server.pem"),
            "--key",
            str(tmp_path / "certs/server.key"),
        ),
        "--init-database",
    )
    context = ssl.create_default_context(cafile=str(tmp_path / "certs/ca.pem"))
    IrcClient.connect("127.0.0.1", started.port, context).register("alice").close()
    code, _ = started.stop()
    assert code == 0 and (data_dir / DATABASE_FILE).stat().st_size > 0


def test_a_damaged_database_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    """Garbage over pages in the middle of the file (the header intact) is found by the
    quick_check at start, not by the first login that reads those pages."""
    generate_dev_certs(tmp_path / "certs")
    data_dir = tmp_path / "data"
    with Store.open(data_dir / DATABASE_FILE) as store:
        store.append_history(
            [
                HistoryRecord(f"m{n}", "#r", "#r", "a!a@h", None, 1.0 + n, "PRIVMSG", "x" * 200)
                for n in range(2000)
            ]
        )
    database = data_dir / DATABASE_FILE
    size = database.stat().st_size
    with database.open("r+b") as raw:
        raw.seek(size // 2)
        raw.write(b"\xa5" * 16384)

    refused = serve_once(tmp_path / "certs", data_dir)
    assert refused.returncode == 2
    (error,) = error_lines(refused)
    assert str(database) in error
