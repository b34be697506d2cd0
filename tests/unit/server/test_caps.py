"""IRCv3 capability negotiation."""

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def test_cap_ls_lists_supported_caps() -> None:
    client = Harness().connect().send("CAP LS 302")
    caps = client.last("CAP").params[-1].split()
    assert {"cap-notify", "echo-message", "message-tags", "multi-prefix", "server-time"} <= set(
        caps
    )


def test_cap_req_of_known_caps_is_acked() -> None:
    client = Harness().connect().send("CAP LS 302").send("CAP REQ :server-time echo-message")
    ack = client.last("CAP")
    assert ack.params[1] == "ACK" and ack.params[2] == "server-time echo-message"


def test_cap_req_with_one_unknown_cap_is_nakked_whole() -> None:
    h = Harness()
    client = h.connect().send("CAP LS 302").send("CAP REQ :server-time bogus")
    assert client.last("CAP").params[1] == "NAK"
    client.send("CAP LIST")
    assert "server-time" not in client.last("CAP").params[-1]


def test_cap_req_can_remove_a_cap() -> None:
    client = Harness().connect().send("CAP REQ :server-time").send("CAP REQ :-server-time")
    client.send("CAP LIST")
    assert "server-time" not in client.last("CAP").params[-1].split()


def test_cap_req_before_nick_also_holds_registration() -> None:
    client = Harness().connect().send("CAP REQ :echo-message").send("NICK a").send("USER a 0 * :a")
    assert not client.has(n.RPL_WELCOME)
    client.send("CAP END")
    assert client.has(n.RPL_WELCOME)


def test_unknown_cap_subcommand_gets_410() -> None:
    assert Harness().connect().send("CAP FOO").has(n.ERR_INVALIDCAPCMD)
