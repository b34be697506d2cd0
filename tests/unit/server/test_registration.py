"""Registration: NICK, USER, PASS, CAP gating and the welcome burst."""

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def test_nick_and_user_register_with_the_welcome_burst() -> None:
    h = Harness()
    client = h.connect().send("NICK alice").send("USER a 0 * :Alice A")
    commands = client.commands()
    for numeric in [
        n.RPL_WELCOME,
        n.RPL_YOURHOST,
        n.RPL_CREATED,
        n.RPL_MYINFO,
        n.RPL_ISUPPORT,
        n.RPL_LUSERCLIENT,
        n.RPL_LUSERME,
        n.ERR_NOMOTD,
    ]:
        assert numeric in commands


def test_isupport_advertises_required_tokens() -> None:
    h = Harness()
    client = h.connect().send("NICK alice").send("USER a 0 * :Alice")
    tokens = [t for m in client.take() if m.command == n.RPL_ISUPPORT for t in m.params[1:-1]]
    names = {t.split("=")[0] for t in tokens}
    assert {
        "CASEMAPPING",
        "CHANTYPES",
        "NICKLEN",
        "CHANNELLEN",
        "PREFIX",
        "CHANMODES",
        "TARGMAX",
        "NETWORK",
    } <= names
    nicklen = next(t for t in tokens if t.startswith("NICKLEN="))
    assert int(nicklen.split("=")[1]) >= 30


def test_motd_is_sent_when_configured() -> None:
    h = Harness(motd=["hello", "world"])
    client = h.connect().send("NICK alice").send("USER a 0 * :Alice")
    motd = [m.params[-1] for m in client.take() if m.command == n.RPL_MOTD]
    assert motd == ["- hello", "- world"]


def test_cap_ls_holds_registration_until_cap_end() -> None:
    h = Harness()
    client = h.connect().send("CAP LS 302").send("NICK alice").send("USER a 0 * :A")
    assert not client.has(n.RPL_WELCOME)
    client.send("CAP END")
    assert client.has(n.RPL_WELCOME)


def test_invalid_nick_gets_432() -> None:
    client = Harness().connect().send("NICK 1bad")
    assert client.last(n.ERR_ERRONEUSNICKNAME).params[1] == "1bad"


def test_taken_nick_gets_433_case_insensitively() -> None:
    h = Harness()
    h.register("Alice")
    client = h.connect().send("NICK aLICE")
    assert client.has(n.ERR_NICKNAMEINUSE)


def test_commands_before_registration_get_451() -> None:
    client = Harness().connect().send("JOIN #a")
    assert client.has(n.ERR_NOTREGISTERED)


def test_unknown_command_before_registration_gets_451() -> None:
    assert Harness().connect().send("FOO").has(n.ERR_NOTREGISTERED)


def test_user_with_too_few_params_gets_461() -> None:
    client = Harness().connect().send("USER a 0")
    assert client.last(n.ERR_NEEDMOREPARAMS).params[1] == "USER"


def test_reregistration_gets_462() -> None:
    h = Harness()
    alice = h.register("alice")
    alice.send("USER a 0 * :again")
    assert alice.has(n.ERR_ALREADYREGISTERED)


def test_server_password_is_required_when_configured() -> None:
    h = Harness(password="sesame")
    client = h.connect().send("NICK alice").send("USER a 0 * :A")
    assert client.has(n.ERR_PASSWDMISMATCH) and client.closed == "Bad password"


def test_right_server_password_registers() -> None:
    h = Harness(password="sesame")
    client = h.connect().send("PASS sesame").send("NICK alice").send("USER a 0 * :A")
    assert client.has(n.RPL_WELCOME)


def test_nick_change_reaches_each_room_peer_once() -> None:
    h = Harness()
    alice, bob, carol = h.register("alice"), h.register("bob"), h.register("carol")
    for client in (alice, bob):
        client.send("JOIN #a,#b")
    carol.send("JOIN #a")
    for client in (alice, bob, carol):
        client.take()
    alice.send("NICK alicia")
    assert [m.params for m in alice.take() if m.command == "NICK"] == [("alicia",)]
    assert [m.source for m in bob.take() if m.command == "NICK"] == ["alice!~alice@127.0.0.1"]
    assert carol.commands().count("NICK") == 1


def test_nick_change_to_own_nick_in_other_case_is_allowed() -> None:
    h = Harness()
    alice = h.register("alice")
    alice.send("NICK ALICE")
    assert alice.last("NICK").params == ("ALICE",)
    assert h.core.nicks.get("alice") is not None


def test_released_nick_can_be_taken() -> None:
    h = Harness()
    alice = h.register("alice")
    alice.send("NICK other")
    assert h.connect().send("NICK alice").send("USER x 0 * :x").has(n.RPL_WELCOME)
