"""A short run of the fuzz target (tests/fuzz) in the ordinary test suite.

The seeded-random test always runs: it mutates the seed corpus with ``random`` (fixed
seed, so a failure reproduces) and feeds every input to the same target atheris fuzzes.
The atheris test runs the real coverage-guided fuzzer for a few thousand inputs when the
optional ``fuzz`` extra is installed, and is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import targets
from tests.fuzz.targets import SEED_CORPUS

FUZZ_SCRIPT = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_parser.py"
RANDOM_SEED = 20_240_601
INPUTS_PER_SEED = 150
ATHERIS_RUNS = 3000
TOKENS: tuple[bytes, ...] = (
    *(b"\r\n", b"\n", b"\r", b" ", b" :", b":", b"@", b";", b"=", b"\\", b",", b"#a"),
    *(b"\x00", b"\xff", b"\xe9", b"+o", b"NICK ", b"JOIN ", b"PRIVMSG ", b"QUIT"),
)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        position = rng.randint(0, len(out))
        if choice < 0.3 and out:
            out[min(position, len(out) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            out[position:position] = rng.choice(TOKENS)
        elif choice < 0.8:
            del out[position : position + rng.randint(1, 16)]
        else:
            out[position:position] = rng.choice(SEED_CORPUS)
    return bytes(out)


def _seeded_inputs() -> list[bytes]:
    rng = random.Random(RANDOM_SEED)
    inputs = list(SEED_CORPUS)
    for seed in SEED_CORPUS:
        inputs += [_mutate(rng, seed) for _ in range(INPUTS_PER_SEED)]
    inputs += [rng.randbytes(rng.randint(0, 600)) for _ in range(INPUTS_PER_SEED)]
    return inputs


def test_fuzz_target_on_seeded_random_corpus() -> None:
    for data in _seeded_inputs():
        try:
            targets.test_one_input(data)
        except Exception as error:
            raise AssertionError(f"fuzz target failed on input {data!r}") from error


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (optional 'fuzz' extra); "
    "test_fuzz_target_on_seeded_random_corpus ran the same target without it",
)
def test_atheris_finds_nothing_in_a_short_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(FUZZ_SCRIPT),
            f"-atheris_runs={ATHERIS_RUNS}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Done {ATHERIS_RUNS}" in result.stderr
