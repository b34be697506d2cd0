from __future__ import annotations

from securechat.bench.nicks import base36, nick, run_tag


def test_base36() -> None:
    assert [base36(n) for n in (0, 9, 10, 35, 36, 46655)] == ["0", "9", "a", "z", "10", "zzz"]


def test_nicks_fit_rfc_length_and_start_with_a_letter() -> None:
    tag = run_tag()
    assert len(tag) == 2 and tag.isalpha()
    name = nick("c", tag, 9999)
    assert name[0].isalpha() and len(name) <= 9
