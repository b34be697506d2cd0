from __future__ import annotations

from typing import Any

from securechat.bench.compare import FIGURES, anomalies, cell, ratio, round_ratios, table


def run(name: str, scenario: str, rnd: int, **report: Any) -> dict[str, Any]:
    return {"server": name, "scenario": scenario, "round": rnd, "report": report}


CPU = next(f for f in FIGURES if f.scenario == "fanout-1x50" and "CPU" in f.label)
RECORDS = [
    run("securechat", "fanout-1x50", 1, server={"cpu_ms_per_1k_deliveries": 0.9}, loss=0),
    run("securechat", "fanout-1x50", 2, server={"cpu_ms_per_1k_deliveries": 1.1}, loss=0),
    run("securechat", "fanout-1x50", 3, server={"cpu_ms_per_1k_deliveries": 1.0}, loss=0),
    run("ngircd", "fanout-1x50", 1, server={"cpu_ms_per_1k_deliveries": 1.2}, loss=3),
    {"server": "ngircd", "scenario": "fanout-1x50", "round": 2, "error": "no report"},
]


def test_cell_is_the_median_and_notes_missing_rounds() -> None:
    assert cell(RECORDS, "securechat", CPU) == (1.0, "1.00")
    assert cell(RECORDS, "ngircd", CPU) == (1.2, "1.20 (1/2 ok)")
    assert cell(RECORDS, "miniircd", CPU) == (None, "-")


def test_anomalies_sum_over_rounds() -> None:
    assert anomalies(RECORDS, "securechat", "fanout-1x50") == "none"
    assert anomalies(RECORDS, "ngircd", "fanout-1x50") == "loss 3, 1x no report"


def test_ratio_is_ours_over_theirs() -> None:
    assert ratio(1.0, 2.0) == "0.50"
    assert ratio(None, 2.0) == ratio(1.0, 0.0) == "-"


def test_table_puts_ours_first_and_adds_ratio_columns() -> None:
    header, rows = table(RECORDS, ours="securechat")
    assert header == ["scenario", "figure", "securechat", "ngircd", "securechat/ngircd"]
    cpu_row = next(row for row in rows if row[1].startswith("server CPU"))
    assert cpu_row[2:] == ["1.00", "1.20 (1/2 ok)", "0.83"]


def test_a_pair_that_was_skipped_says_so_instead_of_failed() -> None:
    skipped = {"server": "miniircd", "scenario": "fanout-1x50", "round": 1, "skipped": "too big"}
    assert cell([*RECORDS, skipped], "miniircd", CPU) == (None, "skipped")
    assert anomalies([*RECORDS, skipped], "miniircd", "fanout-1x50") == "skipped: too big"


def test_community_rows_include_cpu_percent_latency_rss_and_loss() -> None:
    labels = {f.label for f in FIGURES if f.scenario == "community"}
    assert {"server CPU %", "latency p99 ms", "server RSS MiB", "loss"} <= labels


def test_ratios_are_also_taken_round_by_round() -> None:
    """Side by side: each round's ratio, then their median and range, beside the ratio of the
    medians (rounds where one server has no figure are left out)."""
    records = [
        *RECORDS,
        run("ngircd", "fanout-1x50", 3, server={"cpu_ms_per_1k_deliveries": 2.0}, loss=0),
    ]
    assert round_ratios(records, "securechat", "ngircd", CPU) == [0.75, 0.5]
    _, rows = table(records, ours="securechat")
    cpu_row = next(row for row in rows if row[1].startswith("server CPU"))
    assert cpu_row[-1] == "0.62 (per round 0.62, 0.50-0.75)"


def test_write_calls_are_not_read_for_ngircd_whose_sendmsg_proc_does_not_count() -> None:
    writes = next(f for f in FIGURES if f.scenario == "fanout-rate" and "write(2)" in f.label)
    records = [
        run(name, "fanout-rate", 1, server={"write_calls_per_1k_deliveries": value})
        for name, value in (("securechat", 215.0), ("inspircd", 970.0), ("ngircd", 0.0))
    ]
    assert cell(records, "securechat", writes) == (215.0, "215")
    assert cell(records, "inspircd", writes)[0] == 970.0
    assert cell(records, "ngircd", writes) == (None, "-")
