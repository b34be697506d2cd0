"""Fuzz the parser, the framing and the core: ``python tests/fuzz/fuzz_parser.py -atheris_runs=N``.

Needs the optional ``fuzz`` extra (``pip install -e '.[fuzz]'``, which is atheris).
What one input is checked for is described in tests/fuzz/targets.py. Arguments are
libFuzzer's: ``-atheris_runs=N`` stops after N inputs, ``-max_len=4096`` allows longer
inputs, ``-seed=1`` fixes the random seed, and a directory argument is a corpus to start
from and to add to. Without a directory the run starts from ``SEED_CORPUS`` (written to
a temporary directory). A failure prints the traceback and writes the input that caused
it to ``crash-<sha1>``; replay it with ``python tests/fuzz/fuzz_parser.py crash-<sha1>``.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(ROOT))  # run as a script: import securechat and tests from the tree
    atheris = importlib.import_module("atheris")
    with atheris.instrument_imports(include=["securechat", "tests.fuzz"]):
        targets = importlib.import_module("tests.fuzz.targets")
        importlib.import_module("securechat.server.commands")  # else imported on first use
    with tempfile.TemporaryDirectory(prefix="securechat-fuzz-") as corpus:
        if not any(not arg.startswith("-") for arg in argv[1:]):
            for index, seed in enumerate(targets.SEED_CORPUS):
                Path(corpus, f"seed-{index}").write_bytes(seed)
            argv = [*argv, corpus]
        atheris.Setup(argv, targets.test_one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
