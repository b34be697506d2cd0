"""The glob matcher for ban, K-line and oper masks: its semantics, its agreement with a
simple reference, and its linear bound on the masks that froze the regex (review C1)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.protocol.masks import compile_mask, count_wildcards, mask_problem
from securechat.protocol.names import casefold, compile_folded, mask_matches

# The masks of the review: with a backtracking regex, 9 wildcards took 43 s per JOIN.
REDOS_MASKS = [
    "*a*a*a*a*a*a*a*a*a*b",
    "*a" * 64 + "*b",
    "*a?" * 40 + "b",
    "?" * 60 + "*b",
    "*" + "a?a*" * 30 + "!*@b",
]


def reference_matches(mask: str, text: str) -> bool:
    """A plain regex translation: fine on the tiny inputs the property test draws."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    return re.fullmatch(pattern, text, flags=re.DOTALL) is not None


def cost_bound(mask: str, text: str) -> int:
    return (len(text) + 1) * (count_wildcards(mask) + 1)


@pytest.mark.parametrize(
    ("mask", "text", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("", "", True),
        ("", "x", False),
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "abbc", False),
        ("a*c", "ac", True),
        ("a*c", "abbbc", True),
        ("a*c", "abbbcd", False),
        ("*c", "abc", True),
        ("a*", "abc", True),
        ("a*b*a", "aba", True),
        ("a*b*a", "ab", False),
        ("a*a", "a", False),
        ("*?", "", False),
        ("*??*", "ab", True),
        ("nick!*@10.0.*", "nick!~u@10.0.0.1", True),
        ("*!*@*.example.*", "bob!b@host.example", False),
        ("*!*@*.example.*", "bob!b@a.example.org", True),
    ],
)
def test_star_matches_any_run_and_question_mark_one_character(
    mask: str, text: str, expected: bool
) -> None:
    assert compile_mask(mask).matches(text) is expected


def test_backslash_and_brackets_are_literal_characters() -> None:
    assert mask_matches(r"a\b[c]!*@*", r"a\b[c]!u@h")
    assert not mask_matches("[ab]!*@*", "a!u@h")


def test_repeated_stars_collapse_into_one() -> None:
    assert compile_mask("a***b**").mask == "a*b*"


def test_matching_folds_case_like_nicks_under_ascii_casemapping() -> None:
    assert mask_matches("ALICE!*@Host.Example", "alice!~a@HOST.example")
    assert compile_folded("BoB!*@*").matches(casefold("bOb!x@y"))


def test_casefolding_leaves_non_ascii_letters_alone() -> None:
    # CASEMAPPING=ascii: "É" and "é" are different characters, as they are in nicks.
    assert not mask_matches("É!*@*", "é!u@h")


def test_pathological_masks_against_long_text_stay_within_the_linear_bound() -> None:
    text = "a" * 10_000
    for mask in REDOS_MASKS:
        glob = compile_mask(mask)
        assert not glob.matches(text)
        assert glob.cost(text) <= cost_bound(mask, text), mask


def test_mask_problem_names_the_bound_exceeded() -> None:
    assert mask_problem("a" * 20, max_length=10, max_wildcards=5) == (
        "Mask is longer than 10 characters"
    )
    assert mask_problem("*a*a*a", max_length=10, max_wildcards=2) == (
        "Mask has more than 2 wildcards (* and ?)"
    )
    assert mask_problem("*!*@*", max_length=10, max_wildcards=3) is None


def test_repeated_stars_count_once_toward_the_wildcard_limit() -> None:
    assert mask_problem("a****b", max_length=10, max_wildcards=1) is None


# ---- properties ------------------------------------------------------------------------

TINY = st.text(alphabet="ab?*", max_size=8)
TINY_TEXT = st.text(alphabet="abc", max_size=10)


@settings(max_examples=500)
@given(mask=TINY, text=TINY_TEXT)
def test_matcher_agrees_with_a_regex_reference_on_tiny_inputs(mask: str, text: str) -> None:
    assert compile_mask(mask).matches(text) is reference_matches(mask, text)


@settings(max_examples=300)
@given(
    mask=st.text(alphabet="aAb?*!@.", max_size=12),
    text=st.text(alphabet="aAbB!@.", max_size=12),
)
def test_case_insensitive_matching_agrees_with_the_reference_on_folded_inputs(
    mask: str, text: str
) -> None:
    assert mask_matches(mask, text) is reference_matches(casefold(mask), casefold(text))


@settings(max_examples=200, deadline=None)
@given(
    mask=st.text(alphabet="a?*b", min_size=1, max_size=128),
    text=st.text(alphabet="ab", min_size=100, max_size=2_000),
)
def test_any_mask_costs_at_most_text_length_times_wildcards(mask: str, text: str) -> None:
    glob = compile_mask(mask)
    glob.matches(text)  # returns at all: the regex took hours on such input
    assert glob.cost(text) <= cost_bound(mask, text)


@settings(max_examples=50, deadline=None)
@given(mask=st.sampled_from(REDOS_MASKS), text=st.text(alphabet="a", min_size=1, max_size=5_000))
def test_review_masks_complete_against_long_runs_of_a(mask: str, text: str) -> None:
    glob = compile_mask(mask)
    assert not glob.matches(text + "!~" + text + "@h")
    assert glob.cost(text) <= cost_bound(mask, text)
