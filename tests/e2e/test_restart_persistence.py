"""`securechat serve` stopped and started again on its data directory keeps accounts,
registered rooms and history, as a user running it sees them."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

from securechat.certs import generate_dev_certs
from tests.e2e.test_serve import ServeProcess
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
