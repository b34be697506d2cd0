"""Casefolding and validation of nicknames and room names."""

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.protocol.names import (
    ROOM_NAME_RULE,
    casefold,
    is_valid_nick,
    is_valid_room,
    mask_matches,
    room_name_problem,
)


def test_ascii_casefold_folds_only_letters() -> None:
    assert casefold("NiCk[]") == "nick[]"


def test_valid_nicks() -> None:
    for nick in ["alice", "a-b", "[x]", "_under", "x" * 30]:
        assert is_valid_nick(nick), nick


def test_invalid_nicks() -> None:
    for nick in ["", "1abc", "-a", "a b", "a,b", "a!b", "#room", "x" * 31, "é"]:
        assert not is_valid_nick(nick), nick


def test_room_names() -> None:
    assert is_valid_room("#lobby")
    assert is_valid_room("#café")
    for name in ["lobby", "#", "#a b", "#a,b", "#a\x07", "#" + "x" * 50]:
        assert not is_valid_room(name), name


def test_mask_matching_is_case_insensitive_glob() -> None:
    assert mask_matches("*!*@10.0.*", "Nick!~u@10.0.0.1")
    assert mask_matches("NICK!*@*", "nick!u@h")
    assert not mask_matches("a?c!*@*", "abbc!u@h")


# ---- room names: look-alike, invisible, bidi and control characters (review L1) -------------


def test_room_names_of_one_script_are_valid() -> None:
    for name in ["#café", "#москва", "#αθήνα", "#東京", "#日本語チャット", "#c++", "#a-b_c.d"]:
        assert room_name_problem(name) is None, name


def test_room_names_may_mix_latin_with_cjk_as_uts39_allows() -> None:
    for name in ["#python中文", "#rustの会", "#seoul한국"]:
        assert room_name_problem(name) is None, name


def test_script_specific_combining_marks_are_valid() -> None:
    assert room_name_problem("#हिन्दी") is None  # Devanagari vowel signs and virama


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("#lobby\u200b", "invisible"),  # zero-width space (Cf)
        ("#\u200blobby", "invisible"),
        ("#\u202eybbol", "invisible"),  # right-to-left override (Cf, bidi)
        ("#lob\x85by", "invisible"),  # C1 control (Cc)
        ("#lob\u2028by", "invisible"),  # line separator (Zl)
        ("#lob\u00a0by", "invisible"),  # no-break space (Zs)
        ("#\ufefflobby", "invisible"),  # byte order mark (Cf)
        ("#lob\u034fby", "combining mark"),  # combining grapheme joiner: invisible (Mn)
        ("#lobb\u0338y", "combining mark"),  # a generic overlay on a Latin letter
        ("#e\u0301cole", "NFKC"),  # a decomposed accent: "é" must be precomposed
        ("#l\u043ebby", "mix scripts"),  # Cyrillic o among Latin letters
        ("#\u217cobby", "number-like"),  # small Roman numeral fifty, looks like l
        ("#\uff4cobby", "NFKC"),  # fullwidth l
        ("#lobby\u2615", "symbol"),  # hot beverage (So)
    ],
)
def test_room_names_with_look_alike_or_invisible_characters_are_refused(
    name: str, why: str
) -> None:
    problem = room_name_problem(name)
    assert problem is not None and why in problem, (name, problem)
    assert not is_valid_room(name)


def test_room_name_rule_is_one_exported_sentence() -> None:
    assert "one script" in ROOM_NAME_RULE and "invisible" in ROOM_NAME_RULE


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=20))
def test_a_valid_room_name_has_no_invisible_control_or_space_character(text: str) -> None:
    name = "#" + text
    if is_valid_room(name):
        assert all(unicodedata.category(c)[0] not in "CZ" for c in name)
        assert unicodedata.normalize("NFKC", name) == name
