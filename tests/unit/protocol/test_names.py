"""Casefolding and validation of nicknames and room names."""

from securechat.protocol.names import casefold, is_valid_nick, is_valid_room, mask_matches


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
