"""Reaction counting (client-tags/react.md): add, take back, redact, bounds."""

from __future__ import annotations

from securechat.client.reactions import MAX_REACTIONS, Reactions, summary, valid_reaction


def test_reactions_are_counted_per_text_in_order_of_first_appearance() -> None:
    reactions = Reactions()
    assert reactions.add("bob", "👍", "r1")
    assert reactions.add("carol", "🎉", "r2")
    assert reactions.add("dave", "👍", "r3")
    counts = reactions.counts("alice")
    assert [(c.text, c.count, c.nicks) for c in counts] == [
        ("👍", 2, ("bob", "dave")),
        ("🎉", 1, ("carol",)),
    ]
    assert summary(counts) == "👍 2  🎉 1"


def test_the_same_person_reacting_twice_with_the_same_text_counts_once() -> None:
    reactions = Reactions()
    assert reactions.add("bob", "👍")
    assert not reactions.add("BOB", "👍")  # casefolded nick
    assert reactions.counts("alice")[0].count == 1


def test_unreact_takes_back_only_that_persons_reaction() -> None:
    reactions = Reactions()
    reactions.add("bob", "👍")
    reactions.add("carol", "👍")
    assert reactions.remove("bob", "👍")
    assert not reactions.remove("bob", "👍")
    assert [(c.text, c.count) for c in reactions.counts("x")] == [("👍", 1)]


def test_a_redacted_reaction_msgid_removes_that_reaction() -> None:
    reactions = Reactions()
    reactions.add("bob", "👍", "r1")
    assert not reactions.remove_msgid("other")
    assert reactions.remove_msgid("r1")
    assert reactions.counts("x") == []


def test_our_own_reactions_are_marked_mine() -> None:
    reactions = Reactions()
    reactions.add("Alice", "👍")
    reactions.add("bob", "🎉")
    assert [c.mine for c in reactions.counts("alice")] == [True, False]


def test_invalid_or_too_many_reactions_are_ignored() -> None:
    assert not valid_reaction("")
    assert not valid_reaction("x" * 65)
    assert valid_reaction("👩‍💻") and valid_reaction("❤️")  # ZWJ and variation selector
    assert valid_reaction("é" * 32) and not valid_reaction("é" * 33)  # 64 bytes of UTF-8
    assert not valid_reaction("a\nb")
    reactions = Reactions()
    assert not reactions.add("bob", "   ")
    for index in range(MAX_REACTIONS):
        assert reactions.add(f"user{index}", "👍")
    assert not reactions.add("one-more", "👍")
    assert reactions.counts("x")[0].count == MAX_REACTIONS


def test_a_nick_change_keeps_the_reaction_under_the_new_nick() -> None:
    reactions = Reactions()
    reactions.add("bob", "👍")
    reactions.rename("bob", "robert")
    assert reactions.has("robert", "👍") and not reactions.has("bob", "👍")
