"""Where a node's py-spy samples went, by kind of work (scripts/profile-cluster prints this).

    python scripts/profile_groups.py PROFILE.txt     # py-spy record --format raw output

Each stack is charged to the innermost frame that names a kind of work in GROUPS (checked in
order, leaf first), so "apply" is the core's work without the sends it produces, and "write to
clients" is the sends wherever they were made. Stacks that match nothing are "other".
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# (group, pattern on "function (file:line)"); the first group whose pattern matches the
# innermost matching frame wins.
GROUPS: list[tuple[str, re.Pattern[str]]] = [
    (
        "write to clients (flush, TLS seal, write(2))",
        re.compile(r"flush|SSL_write|write_counted|TlsTransport\.write|\(.*output\.py"),
    ),
    (
        "XADD: encode a batch, send it, await the reply",
        re.compile(r"encode_batch|encode_value|\bappend \(.*bus\.py|xadd|_publish|publish"),
    ),
    (
        "XREAD: read the stream, parse the reply, decode",
        re.compile(r"decode_batch|decode_value|\bread \(.*bus\.py|xread|json/decoder|loads "),
    ),
    (
        "redis client (commands, connection, parser: XADD or XREAD)",
        re.compile(r"\(.*(redis/|hiredis)"),
    ),
    (
        "apply: the core (parse, dispatch, build, recipient walk)",
        re.compile(
            r"\(.*server/core|\(.*server/commands|\(.*protocol/|\(.*rooms\.py|\(.*replica\.py"
        ),
    ),
    (
        "client input (TLS open, framing)",
        re.compile(r"buffer_updated|data_received|SSL_read|framing"),
    ),
    ("network layer (net/, cluster node glue)", re.compile(r"\(.*server/net/|\(.*cluster/node")),
    ("event loop", re.compile(r"asyncio|uvloop|run_forever|_run_once")),
]


def load(path: Path) -> Counter[str]:
    """stack -> samples, from py-spy's raw (collapsed) format: ``frame;frame;... count``."""
    stacks: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def group_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for name, pattern in GROUPS:
            if pattern.search(frame):
                return name
    return "other"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    stacks = load(Path(argv[0]))
    total = sum(stacks.values())
    if not total:
        print("no samples")
        return 1
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for stack, count in stacks.items():
        groups[group_of(stack)] += count
        leaves[stack.split(";")[-1]] += count
    print(f"{total} samples")
    for name, count in groups.most_common():
        print(f"{100 * count / total:5.1f} %  {name}")
    print("\ninnermost frames:")
    for frame, count in leaves.most_common(25):
        print(f"{100 * count / total:5.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
