"""Pins, fingerprints, endpoints and the words a user reads when trust fails."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from securechat.client.trust import (
    Endpoint,
    KnownHosts,
    changed_message,
    config_dir,
    normalize_fingerprint,
    trust_command,
    untrusted_message,
)

FP_A = "a" * 64
FP_B = "b" * 64


def test_endpoint_defaults_to_port_6697() -> None:
    assert Endpoint.parse("chat.example.org") == Endpoint("chat.example.org", 6697)


def test_endpoint_with_port() -> None:
    assert Endpoint.parse("localhost:7000") == Endpoint("localhost", 7000)


def test_endpoint_bracketed_ipv6_with_port() -> None:
    endpoint = Endpoint.parse("[::1]:7000")
    assert endpoint == Endpoint("::1", 7000) and endpoint.label == "[::1]:7000"


def test_endpoint_bare_ipv6() -> None:
    assert Endpoint.parse("::1") == Endpoint("::1", 6697)


@pytest.mark.parametrize("text", ["host:abc", "host:0", "host:70000", "a b", ""])
def test_bad_endpoints_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Endpoint.parse(text)


def test_fingerprint_with_colons_and_prefix_is_normalized() -> None:
    colons = ":".join(["AB"] * 32)
    assert normalize_fingerprint(f"SHA256:{colons}") == "ab" * 32


def test_fingerprint_of_the_wrong_length_is_refused() -> None:
    assert normalize_fingerprint("abcd") is None


def test_config_dir_honours_xdg_config_home(tmp_path: Path) -> None:
    assert config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "securechat"


def test_config_dir_defaults_to_dot_config() -> None:
    assert config_dir({}) == Path.home() / ".config" / "securechat"


def test_known_hosts_without_a_file_has_no_pins(tmp_path: Path) -> None:
    assert KnownHosts(tmp_path / "known_hosts").get(Endpoint("localhost")) is None


def test_known_hosts_remembers_a_pin_in_a_private_file(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "sub" / "known_hosts")
    known.set(Endpoint("localhost", 6697), FP_A)
    assert KnownHosts(known.path).get(Endpoint("localhost", 6697)) == FP_A
    assert stat.S_IMODE(known.path.stat().st_mode) == 0o600


def test_known_hosts_pins_are_per_port(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    known.set(Endpoint("localhost", 6697), FP_A)
    assert known.get(Endpoint("localhost", 7000)) is None


def test_setting_a_pin_again_replaces_it_and_keeps_others(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    known.set(Endpoint("a"), FP_A)
    known.set(Endpoint("b"), FP_A)
    known.set(Endpoint("a"), FP_B)
    assert (known.get(Endpoint("a")), known.get(Endpoint("b"))) == (FP_B, FP_A)
    assert known.path.read_text().count("a:6697") == 1


def test_known_hosts_ignores_comments_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"# comment\nnonsense\nlocalhost:6697 {FP_A}  # mine\n")
    assert KnownHosts(path).get(Endpoint("localhost")) == FP_A


def test_untrusted_message_gives_reason_fingerprint_and_command() -> None:
    text = untrusted_message(Endpoint("localhost", 6697), "unknown CA", FP_A)
    assert "unknown CA" in text and FP_A in text
    assert f"securechat connect localhost:6697 --trust-fingerprint {FP_A}" in text
    assert "Nothing was sent" in text


def test_changed_message_shows_both_fingerprints_and_how_to_replace() -> None:
    path = Path("/home/u/.config/securechat/known_hosts")
    text = changed_message(Endpoint("localhost"), FP_A, FP_B, path)
    assert "HAS CHANGED" in text and FP_A in text and FP_B in text
    assert trust_command(Endpoint("localhost"), FP_B) in text and str(path) in text
