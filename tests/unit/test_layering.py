"""The import graph is layered: no cycles, no imports hidden in functions, and the sans-I/O
core (``protocol/`` and the server below its I/O shell) never reaches the shell or an I/O
module, not even through another module (DESIGN.md §2.2; h11's "no networking code at all").

The graph is read with ``ast`` from the source, the way Python runs it: imports under
``if TYPE_CHECKING:`` are for annotations only and do not count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import securechat

PACKAGE_DIR = Path(securechat.__file__).parent

# The I/O shell of the server: the only server modules allowed the modules in IO_MODULES.
# The web listener (browsers: HTTPS and IRC over WebSocket) is shell too, above server.net:
# a WebConnection is a net Connection, and `securechat serve` (server.main) hands its start
# function to ChatServer, so net never imports it (WEB_ABOVE_NET).
SHELL = (
    "securechat.server.net",
    "securechat.server.store",
    "securechat.server.main",
    "securechat.server.hash_password",
    "securechat.server.cluster",
    "securechat.web",
)
IO_MODULES = frozenset({"asyncio", "ssl", "socket", "sqlite3", "threading", "queue", "selectors"})
# Where an import inside a function is a bug: anywhere in the core, and of a securechat module
# in the shell too (the shell may import an optional dependency lazily: uvloop).
NO_FUNCTION_IMPORTS = ("securechat.protocol", "securechat.server", "securechat.web")
CORE = ("securechat.protocol", "securechat.server")
WEB_ABOVE_NET = ("securechat.server.net", "securechat.web")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def is_core(name: str) -> bool:
    return within(name, CORE) and not within(name, SHELL)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(body: list[ast.stmt], in_function: bool) -> Iterator[tuple[ast.stmt, bool]]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        elif isinstance(node, ast.If) and _type_checking(node):
            yield from _imports(node.orelse, in_function)
        else:
            nested = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                for child in getattr(node, field, []):
                    if isinstance(child, ast.excepthandler | ast.match_case):
                        yield from _imports(child.body, nested)
                    elif isinstance(child, ast.stmt):
                        yield from _imports([child], nested)


def _targets(name: str, node: ast.stmt) -> list[str]:
    """The modules an import statement names (``from a import b`` names ``a.b`` if a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = name.split(".")
        if MODULES[name].name != "__init__.py":
            package.pop()
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    submodules = [f"{base}.{alias.name}" for alias in node.names]
    return [base, *(m for m in submodules if m in MODULES)]


@cache
def imports_of(name: str) -> tuple[tuple[str, bool], ...]:
    """(imported module, inside a function) for each runtime import of module ``name``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = []
    for node, in_function in _imports(tree.body, False):
        for target in _targets(name, node):
            found.append((target, in_function))
    return tuple(found)


def own(target: str) -> str | None:
    """The securechat module an imported name lives in (``a.b.C`` → ``a.b``)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


@cache
def graph() -> dict[str, frozenset[str]]:
    edges = {}
    for name in MODULES:
        deps = {own(t) for t, _ in imports_of(name) if t.startswith("securechat")}
        edges[name] = frozenset(d for d in deps if d is not None and d != name)
    return edges


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges, index, low, stack, on_stack, found = graph(), {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in edges:
        if name not in index:
            visit(name)
    return found


def reach(name: str) -> dict[str, str]:
    """Every securechat module ``name`` imports, even through others: module → who imports it."""
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        for dep in graph()[current]:
            if dep not in seen and dep != name:
                seen[dep] = current
                todo.append(dep)
    return seen


def test_the_import_graph_has_no_cycles() -> None:
    assert cycles() == []


def test_server_and_protocol_import_nothing_inside_functions() -> None:
    hidden = [
        f"{name} imports {target}"
        for name in MODULES
        if within(name, NO_FUNCTION_IMPORTS)
        for target, in_function in imports_of(name)
        if in_function and (is_core(name) or target.startswith("securechat"))
    ]
    assert hidden == []


def test_the_core_never_reaches_the_shell_or_an_io_module() -> None:
    leaks = []
    for name in filter(is_core, MODULES):
        reached = reach(name)
        for module in [name, *reached]:
            if within(module, SHELL):
                leaks.append(f"{name} reaches {module} (through {reached[module]})")
            io = {t.partition(".")[0] for t, _ in imports_of(module)} & IO_MODULES
            if io:
                leaks.append(f"{name} reaches {sorted(io)} (in {module})")
    assert leaks == []


def test_the_server_shell_never_imports_the_web_listener() -> None:
    """securechat.web builds on server.net (its connection is a net Connection); were net to
    import it back, importing either package first would meet the other half-initialised."""
    net, web = WEB_ABOVE_NET
    leaks = [
        f"{name} reaches {module} (through {through})"
        for name in MODULES
        if within(name, (net,))
        for module, through in reach(name).items()
        if within(module, (web,))
    ]
    assert leaks == []


def test_the_checks_see_the_server_core_and_its_shell() -> None:
    """Guards the guard: the walk finds the modules it is about."""
    assert is_core("securechat.server.core") and is_core("securechat.protocol.message")
    assert not is_core("securechat.server.net") and not is_core("securechat.server.store")
    assert not is_core("securechat.web.connection") and within("securechat.web.listener", SHELL)
    assert "securechat.server.actions" in reach("securechat.server.core")
    assert "securechat.server.net.connection" in reach("securechat.web.listener")
    assert "securechat.web.listener" in reach("securechat.server.main")


# Run in a fresh interpreter: each module imported first in a process of its own (a fork of
# one that has imported nothing from securechat), as `python -c "import m"` would.
IMPORT_EACH = """
import importlib, os, sys, traceback
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(name)
print(" ".join(failed))
"""


def test_every_module_imports_on_its_own() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *(m for m in MODULES if not m.endswith("__main__"))],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    assert result.stdout.split() == [], result.stderr
