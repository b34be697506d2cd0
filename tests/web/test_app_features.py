"""The web app's pure rules (static/features.js, irc.js), run in Chromium as the app loads
them: reaction counts, the typing throttle and expiry, read markers, edits, multiline."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.browser_support import Browser, Start, require_browser, url

require_browser()


@pytest.fixture
def js(web_server: Start, pages: Browser) -> Any:
    """``js(body)``: run ``body`` in the app's origin with ``f`` = features.js, ``irc`` = irc.js."""
    page = pages.page()
    page.goto(url(web_server()))

    def run(body: str) -> Any:
        script = (
            "async () => { const f = await import('/features.js');"
            f" const irc = await import('/irc.js'); {body} }}"
        )
        return page.evaluate(script)

    yield run
    assert pages.all_problems() == []


def test_reactions_count_once_per_person_and_text_and_can_be_taken_back(js: Any) -> None:
    counts = js("""
        const r = new f.Reactions();
        r.add("bob", "👍", "r1"); r.add("BOB", "👍", "r2");
        r.add("carol", "👍"); r.add("bob", "🎉");
        const before = r.counts("carol");
        r.remove("carol", "👍"); r.removeMsgid("r1");
        return [before, r.counts("carol")];
    """)
    before, after = counts
    assert [(c["text"], c["count"], c["mine"]) for c in before] == [
        ("👍", 2, True),
        ("🎉", 1, False),
    ]
    assert [(c["text"], c["count"]) for c in after] == [("🎉", 1)]


def test_reactions_are_bounded_and_must_be_short(js: Any) -> None:
    result = js("""
        const r = new f.Reactions();
        for (let i = 0; i < 150; i++) r.add("u" + i, "👍");
        const valid = [f.validReaction("x".repeat(65)), f.validReaction("a\\nb")];
        return [r.items.length, ...valid, f.validReaction("👩‍💻")];
    """)
    assert result == [100, False, False, True]


def test_typing_is_sent_at_most_every_three_seconds_then_paused_and_done(js: Any) -> None:
    sent = js("""
        const t = new f.TypingThrottle(); const out = [];
        for (let ms = 0; ms <= 6500; ms += 500) {
          const s = t.edited("#a", "x".repeat(ms / 500 + 1), ms);
          if (s) out.push([ms, s]);
        }
        out.push(...t.tick(12000).map(([, s]) => [12000, s]));
        out.push([13000, t.edited("#a", "", 13000)]);
        out.push(...t.tick(15000).map(([, s]) => [15000, s]));
        t.edited("#a", "again", 20000); t.sent("#a");
        out.push([21000, t.edited("#a", "", 21000)]);
        return out;
    """)
    assert sent == [
        [0, "active"],
        [3000, "active"],
        [6000, "active"],
        [12000, "paused"],
        [13000, None],  # within 3 s of "paused": waits for a tick
        [15000, "done"],
        [21000, None],  # the message was sent: clearing is not "done"
    ]


def test_others_typing_ends_after_6_s_active_or_30_s_paused(js: Any) -> None:
    result = js("""
        const t = new f.TypingTracker();
        t.update("bob", "active", 0); t.update("carol", "paused", 0);
        const first = t.active(); t.expire(6000); const second = [...t.since.keys()];
        t.expire(30000);
        return [first, second, [...t.since.keys()], f.describeTyping(["a", "b"])];
    """)
    assert result == [["bob"], ["carol"], [], "a and b are typing…"]


def test_read_marker_values_and_unread_after_it(js: Any) -> None:
    result = js("""
        const m = f.parseMarker("timestamp=2026-01-02T12:00:01.000Z");
        const msgs = [
          { kind: "message", time: m - 1, self: false },
          { kind: "message", time: m + 1, self: false },
          { kind: "message", time: m + 2, self: true }, { kind: "event", time: m + 3 },
        ];
        const unread = [f.unreadAfter(msgs, m).length, f.unreadAfter(msgs, null)];
        return [m, f.parseMarker("*"), f.markerParam(m), ...unread];
    """)
    assert result[1:] == [None, "timestamp=2026-01-02T12:00:01.000Z", 1, None]


def test_an_edit_is_a_reply_to_a_deleted_message_of_the_same_author(js: Any) -> None:
    result = js("""
        const gone = { from: "bob", text: "teh", redacted: true };
        const kept = { from: "bob", text: "a long original message ".repeat(5), redacted: false };
        return [
          f.isEdit({ from: "Bob" }, gone), f.isEdit({ from: "carol" }, gone),
          f.isEdit({ from: "bob" }, kept),
          f.quoteText(kept, 20), f.quoteText(gone), f.quoteText(undefined),
        ];
    """)
    assert result == [
        True,
        False,
        False,
        "bob: a long original mes…",
        "a deleted message",
        "an earlier message",
    ]


def test_multiline_batches_join_with_line_feeds_and_concat(js: Any) -> None:
    text = js("""
        const lines = [
          "PRIVMSG #a :one", "PRIVMSG #a :two and ", "@draft/multiline-concat PRIVMSG #a :more",
        ].map(irc.parse);
        return f.joinMultiline(lines);
    """)
    assert text == "one\ntwo and more"


def test_a_pasted_block_is_split_for_a_multiline_batch_within_the_limits(js: Any) -> None:
    result = js("""
        const limits = f.multilineLimits("max-bytes=4096,max-lines=5");
        const long = "é".repeat(300);
        const parts = f.multilineParts("def f():\\n\\n" + long, limits);
        const shape = parts.map((p) => [p.text.length, p.concat]);
        const over = f.multilineParts("a\\nb\\nc\\nd\\ne\\nf", limits);
        return [limits, shape, parts.map((p) => p.text).join(""), over,
                f.multilineParts("\\n\\n", limits)];
    """)
    limits, shape, joined, too_many, blank = result
    assert limits == {"maxBytes": 4096, "maxLines": 5}
    assert shape[:2] == [[8, False], [0, False]]  # the blank line stays blank
    assert all(concat for _, concat in shape[3:]) and not shape[2][1]
    assert joined == "def f():" + "é" * 300
    assert too_many is None and blank is None


def test_tags_are_escaped_when_sent(js: Any) -> None:
    line = js(
        'return irc.buildTagged({ "+draft/react": "a b;c", batch: "x", flag: "" }, "TAGMSG", "#a");'
    )
    assert line == "@+draft/react=a\\sb\\:c;batch=x;flag TAGMSG #a"
