"""The house stays as drawn in docs/architecture.md: no import cycle, no hidden import, rooms keep their doors.

Why an `ast` pass rather than a tool: the rules fit in a few lines of data, run in well under a second
without importing the code, and say exactly which file broke which rule. It reads every module of
`traffic_hub/`, `connectors/`, `geo/` and `loadtests/` and checks:
(a) no import cycle between files (function-level imports count: a cycle hidden in a function is one);
(b) no import inside a function (it hides structure from the reader and from this test);
(c) the rules between rooms (`RULES`).

Today's violations are listed in `KNOWN_*`, each with the part of issue 15 that removes it. A new
violation fails; so does a listed one that no longer exists: the lists only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("traffic_hub", "connectors", "geo", "loadtests")
Key = TypeVar("Key", bound=tuple[str, ...])


@dataclass(frozen=True)
class Rule:
    """Modules of `room` import nothing under `forbidden`, except what is under `allowed`."""

    room: str
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    why: str = ""


# The connectors' door into traffic_hub: the model, and the small publishing/dead-letter interface they
# are handed (records, the sink, dead letters, write errors).
CONNECTOR_INTERFACE = ("traffic_hub.model", "traffic_hub.publishing")

RULES = (
    Rule("geo", ("traffic_hub", "connectors"), why="geometry knows nothing of the hub or its sources"),
    Rule(
        "traffic_hub.model",
        (
            "traffic_hub.kafka",
            "traffic_hub.api",
            "traffic_hub.feeds",
            "traffic_hub.normaliser",
            "traffic_hub.runtime",
            "traffic_hub.cli",
            "connectors",
        ),
        why="the canonical model is the centre: everything imports it, it imports no role",
    ),
    Rule(
        "traffic_hub.feeds",
        ("connectors", "traffic_hub.kafka", "traffic_hub.api", "traffic_hub.runtime", "traffic_hub.cli"),
        why="renderers are pure: events in, bytes out",
    ),
    Rule(
        "traffic_hub.normaliser",
        ("traffic_hub.api", "traffic_hub.feeds", "connectors", "traffic_hub.runtime", "traffic_hub.cli"),
        why="reports in, events out: it knows neither the sources' formats nor the partners'",
    ),
    Rule(
        "traffic_hub.kafka",
        (
            "traffic_hub.api",
            "traffic_hub.feeds",
            "traffic_hub.normaliser",
            "connectors",
            "traffic_hub.runtime",
            "traffic_hub.cli",
        ),
        why="transport only: the roles use it, it uses none of them",
    ),
    Rule("traffic_hub.api", ("traffic_hub.runtime", "connectors"), why="routes get narrow dependencies, not the hub"),
    Rule(
        "traffic_hub.archive",
        (
            "traffic_hub.api",
            "traffic_hub.feeds",
            "traffic_hub.normaliser",
            "connectors",
            "traffic_hub.runtime",
            "traffic_hub.cli",
        ),
        why="the history reads the topics and writes PostgreSQL: it knows no other role",
    ),
    Rule(
        "connectors",
        ("traffic_hub",),
        allowed=CONNECTOR_INTERFACE,
        why="connectors see the model and the interface they are handed, never the hub's internals",
    ),
)

# --- today's known violations: to be removed by issue 15 (the lead shrinks these lists) ------------

# (importer, imported) pairs that break a rule of RULES.
KNOWN_FORBIDDEN: dict[tuple[str, str], str] = {}

# Modules with an import inside a function: (module, imported).
KNOWN_FUNCTION_IMPORTS: dict[tuple[str, str], str] = {
    # numba costs about 60 MiB of RSS at import (≈ 110 MiB with the kernels loaded); a process loads it when it
    # builds a routing layer, not when it imports geo (measured reason in geo/pathrows.py)
    ("geo.pathrows", "geo.bounded"): "the compiled kernels, loaded only by a metro-scale layer",
    ("geo.pathrows", "geo.compiled"): "the compiled matcher, loaded when a routing layer is built (numpy fallback)",
    # the measured workloads are imported in the measured tree's process (`--against REV` runs another
    # revision's code in a temporary worktree): they stay inside the function on purpose
    ("loadtests.instructions", "geo.matching"): "imported by the measured tree, not by the driver",
    ("loadtests.instructions", "loadtests.bench_matching"): "imported by the measured tree, not by the driver",
    ("loadtests.instructions", "traffic_hub.normaliser.placement"): "imported by the measured tree, not by the driver",
}

# File-level import cycles, each as the sorted modules of one strongly connected component.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


# --- the analysis -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # the module as written (for a `from` import: the module, or module.name)
    target: str | None  # the project module it resolves to, None outside the project
    in_function: bool


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module `name` lives in (`a.b.C` → `a.b`), None outside the project."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    base = package[: len(package) - node.level + (1 if MODULES[module].name == "__init__.py" else 0)]
    return ".".join([*base, node.module] if node.module else base)


def _imports_of(module: str, node: ast.AST, in_function: bool = False) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield Import(module, alias.name, _resolve(alias.name), in_function)
        elif isinstance(child, ast.ImportFrom):
            base = _absolute(module, child)
            for alias in child.names:
                yield Import(module, base, _resolve(f"{base}.{alias.name}"), in_function)
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _imports_of(module, child, inner)


IMPORTS = [
    found
    for module, path in MODULES.items()
    for found in _imports_of(module, ast.parse(path.read_text(encoding="utf-8"), str(path)))
]


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def breaks_a_rule(importer: str, target: str) -> bool:
    """`importer` may not import `target` (by `RULES`)."""
    return any(
        _under(importer, (rule.room,)) and _under(target, rule.forbidden) and not _under(target, rule.allowed)
        for rule in RULES
    )


def forbidden_imports() -> set[tuple[str, str]]:
    """(importer, imported module) for every import that breaks a rule."""
    return {(i.importer, i.target or i.imported) for i in IMPORTS if breaks_a_rule(i.importer, i.target or i.imported)}


def function_imports() -> set[tuple[str, str]]:
    return {(imp.importer, imp.imported) for imp in IMPORTS if imp.in_function}


def cycles() -> set[tuple[str, ...]]:
    """The strongly connected components of more than one module (or a module importing itself)."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in IMPORTS:
        if imp.target is not None:
            graph[imp.importer].add(imp.target)
    return {tuple(sorted(c)) for c in _components(graph) if len(c) > 1 or c[0] in graph[c[0]]}


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit on deep chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(component)
            elif nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(sorted(graph[nxt]))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    return out


def _compare(found: set[Key], known: Mapping[Key, str], what: str) -> list[str]:
    new = [f"new {what}: {item}" for item in sorted(found - set(known))]
    gone = [f"{what} fixed, remove it from the known list: {item}" for item in sorted(set(known) - found)]
    return new + gone


# --- the tests ----------------------------------------------------------------------------------


def test_every_package_is_read() -> None:
    assert {module.split(".")[0] for module in MODULES} == set(PACKAGES)
    assert len(IMPORTS) > 500


def test_no_import_cycle_between_files() -> None:
    assert _compare(cycles(), KNOWN_CYCLES, "import cycle") == []


def test_no_import_inside_a_function() -> None:
    assert _compare(function_imports(), KNOWN_FUNCTION_IMPORTS, "function-level import") == []


def test_rooms_import_only_through_their_doors() -> None:
    assert _compare(forbidden_imports(), KNOWN_FORBIDDEN, "forbidden import") == []


def test_the_checks_catch_what_they_claim() -> None:
    """The analysis itself: a cycle, a hidden import and a forbidden import, in a made-up tree."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert sorted(sorted(c) for c in _components(graph) if len(c) > 1 or c[0] in graph[c[0]]) == [
        ["a", "b", "c"],
        ["d"],
    ]
    tree = ast.parse("import os\nfrom geo import hmm\ndef f():\n    from traffic_hub import runtime\n")
    found = list(_imports_of("geo.matching", tree))
    assert [(i.imported, i.target, i.in_function) for i in found] == [
        ("os", None, False),
        ("geo", "geo.hmm", False),
        ("traffic_hub", "traffic_hub.runtime", True),
    ]
    assert breaks_a_rule("geo.matching", "traffic_hub.runtime")
    assert breaks_a_rule("traffic_hub.api.closures", "traffic_hub.runtime")
    assert breaks_a_rule("connectors.runner", "traffic_hub.kafka.publisher")
    assert not breaks_a_rule("connectors.wzdx", "traffic_hub.model.validity")
    assert not breaks_a_rule("traffic_hub.api.feeds", "traffic_hub.feeds.registry")
    assert not breaks_a_rule("traffic_hub.modelling", "traffic_hub.kafka")  # a prefix is a whole name


KAFKA_CLIENT = ("consumer", "producer", "admin")


def _bare_client_starts_and_stops(source: str) -> list[int]:
    """Lines of `await consumer.start()` and the like: a start cancelled half-way leaks a connection and a
    stop awaited bare can drop its caller's cancellation (docs/architecture.md, kafka/starting.py)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Await):
            continue
        call = node.value
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in {"start", "stop", "close"}
            and _name(call.func.value).endswith(KAFKA_CLIENT)
        ):
            found.append(node.lineno)
    return found


def _name(node: ast.expr) -> str:
    """`consumer` of `consumer` and of `self._consumer`."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def test_kafka_clients_start_and_stop_only_through_starting() -> None:
    starting = ROOT / "traffic_hub" / "kafka" / "starting.py"
    files = [p for d in ("traffic_hub", "connectors") for p in (ROOT / d).rglob("*.py") if p != starting]
    bare = {str(p.relative_to(ROOT)): lines for p in files if (lines := _bare_client_starts_and_stops(p.read_text()))}
    assert bare == {}
    assert _bare_client_starts_and_stops("async def f():\n    await self._consumer.stop()\n") == [2]
