"""The wire format: parsing and serializing single lines."""

from hypothesis import given
from hypothesis import strategies as st

from securechat.protocol.message import (
    Message,
    build,
    escape_tag_value,
    format_body,
    parse,
    safe_param,
    truncate_utf8,
    unescape_tag_value,
)


def test_parses_source_command_and_trailing() -> None:
    msg = parse(b":nick!u@h PRIVMSG #room :hello there\r\n")
    assert msg == Message("PRIVMSG", ("#room", "hello there"), "nick!u@h")


def test_command_is_uppercased() -> None:
    assert parse("privmsg a :b") == Message("PRIVMSG", ("a", "b"))


def test_only_the_first_space_colon_starts_trailing() -> None:
    msg = parse("PRIVMSG #a :x :y")
    assert msg is not None and msg.params == ("#a", "x :y")


def test_colon_inside_a_middle_param_is_kept() -> None:
    msg = parse("MODE #a +b a:b")
    assert msg is not None and msg.params == ("#a", "+b", "a:b")


def test_empty_trailing_is_a_param() -> None:
    msg = parse("TOPIC #a :")
    assert msg is not None and msg.params == ("#a", "")


def test_tags_are_parsed_and_unescaped() -> None:
    msg = parse(r"@msgid=abc;+draft/x=a\sb\:c;flag :s CMD")
    assert msg is not None
    assert msg.tags == {"msgid": "abc", "+draft/x": "a b;c", "flag": ""}


def test_line_without_command_is_none() -> None:
    assert parse(b"   ") is None
    assert parse(b":source-only") is None
    assert parse(b"@a=b") is None


def test_invalid_utf8_is_replaced_not_raised() -> None:
    msg = parse(b"PRIVMSG #a :\xff\xfe ok")
    assert msg is not None and msg.params[1] == "\ufffd\ufffd ok"


def test_tag_escape_round_trip() -> None:
    value = "a; b\\c\r\n"
    assert unescape_tag_value(escape_tag_value(value)) == value


def test_unknown_tag_escape_drops_the_backslash() -> None:
    assert unescape_tag_value(r"a\bc\\") == "abc\\"


def test_build_always_writes_the_last_param_as_trailing() -> None:
    assert build("PRIVMSG", ["#a", "hi"]) == b"PRIVMSG #a :hi\r\n"
    assert build("PRIVMSG", ["#a", "hi there"]) == b"PRIVMSG #a :hi there\r\n"
    assert build("PRIVMSG", ["#a", ""]) == b"PRIVMSG #a :\r\n"
    assert build("PRIVMSG", ["#a", ":)"]) == b"PRIVMSG #a ::)\r\n"


def test_build_never_emits_cr_lf_or_nul() -> None:
    line = build("PRIVMSG", ["#a\r\nQUIT", "x\r\nQUIT :y\0"], "s\n")
    assert line.count(b"\r\n") == 1 and line.endswith(b"\r\n") and b"\0" not in line


def test_build_with_tags() -> None:
    line = build("PRIVMSG", ["#a", "hi"], "n!u@h", {"msgid": "1", "time": "t x"})
    assert line == b"@msgid=1;time=t\\sx :n!u@h PRIVMSG #a :hi\r\n"


def test_build_truncates_body_to_512_bytes_on_a_character_boundary() -> None:
    line = build("PRIVMSG", ["#a", "é" * 600])
    assert len(line) <= 512 and line.endswith(b"\r\n")
    line.decode()  # still valid UTF-8


def test_safe_param_makes_a_token_a_valid_middle_param() -> None:
    assert safe_param("a b") == "a_b"
    assert safe_param(":x") == "_x"
    assert safe_param("") == "*"


def test_middle_params_with_spaces_are_made_safe() -> None:
    assert format_body("X", ["a b", "c d"]) == "X a_b :c d"


def test_truncate_utf8_keeps_whole_characters() -> None:
    assert truncate_utf8("aé", 2) == "a"


@given(st.binary(max_size=600))
def test_parse_never_raises(data: bytes) -> None:
    parse(data)


@given(
    st.sampled_from(["PRIVMSG", "NOTICE", "TOPIC"]),
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4),
)
def test_build_then_parse_keeps_one_line(command: str, params: list[str]) -> None:
    line = build(command, params)
    assert line.count(b"\n") == 1 and line.endswith(b"\r\n")
    parsed = parse(line)
    assert parsed is not None and parsed.command == command


def test_only_ascii_spaces_separate_words() -> None:
    msg = parse("KICK #a bob\tcarol\u00a0dave :x")
    assert msg is not None and msg.params == ("#a", "bob\tcarol\u00a0dave", "x")


def test_build_drops_a_tag_whose_key_could_break_the_line() -> None:
    line = build("PRIVMSG", ["#a", "hi"], "n!u@h", {"+ok": "1", "+a\rQUIT": "x", "+b c": "y"})
    assert line == b"@+ok=1 :n!u@h PRIVMSG #a :hi\r\n"


def test_build_keeps_vendor_and_client_only_tag_keys() -> None:
    line = build("TAGMSG", ["#a"], None, {"+example.com/react": "x", "draft/label": "1"})
    assert line.startswith(b"@+example.com/react=x;draft/label=1 ")


def test_build_omits_the_tag_section_when_every_tag_is_dropped() -> None:
    assert build("PRIVMSG", ["#a", "hi"], None, {"+a\rb": "x"}) == b"PRIVMSG #a :hi\r\n"


def test_build_makes_even_a_command_safe() -> None:
    assert build("\n:X Y", ["a"]) == b"_:X_Y :a\r\n"
