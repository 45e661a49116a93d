#!/usr/bin/env python3
"""Check the import graph of src/vidnav: no import cycles, and every import goes down the layer order.

    python scripts/import_graph.py          # prints the cycles and layer violations; exit 1 if any
    python scripts/import_graph.py --edges  # also prints every vidnav -> vidnav import

Stdlib only (ast). Every ``import vidnav...`` / ``from vidnav... import ...`` (and relative imports) in every
module under src/vidnav counts, at module level and inside functions alike: an import hidden in a function is
still a dependency, so it still closes a cycle; the report marks such imports "(in function)". Imports inside
``if TYPE_CHECKING:`` count too. Dynamic imports (``importlib.import_module(name)`` with a computed name, as the
lazy ``__getattr__`` of vidnav.model and vidnav.train use for their own submodules) are not seen.
``from pkg import name`` is an import of the submodule ``pkg.name`` when that module exists, else of ``pkg``.

Layers, lowest first. A module may import modules of its own group, and of groups of a lower rank; groups of
the same rank are siblings and do not import each other:

    0 core   vidnav.errors, io, geometry, assets, pool, run_options, metrics, actions, registration
    1 sim    vidnav.sim.*    the simulator: houses, the nav map, the 3-D world, the gym env
    1 model  vidnav.model.*  the network (knows nothing of houses or episodes)
    2 agent  vidnav.agent    a model checkpoint behind the Agent contract
    3 data   vidnav.data.*   episodes, instructions, rollouts (collected with sim, and with an agent)
    4 eval   vidnav.eval.*   running agents on episodes, metrics tables, reports
    4 train  vidnav.train.*  training the model on data
    5 serve  vidnav.serve.*  the HTTP server for agents
    6 app    vidnav (the package's __init__), vidnav.cli, vidnav.chat  (entry points, the public facade)

Cycles are the strongly connected components of more than one module of the graph with the function-level
imports included. Exceptions (layer violations in ALLOWED, cycles in ALLOWED_CYCLES) are listed below, each
with its reason; a new one needs a comment there. An allow-listed cycle that is gone is reported, not failed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "vidnav"

RANKS = {"core": 0, "sim": 1, "model": 1, "agent": 2, "data": 3, "eval": 4, "train": 4, "serve": 5, "app": 6}
CORE = {"errors", "io", "geometry", "assets", "pool", "run_options", "metrics", "actions", "registration"}
TOP = {"cli", "chat"}

# (importer, imported): layer violations that are accepted, and why.
ALLOWED = {
    # `vidnav eval --agent http://...` evaluates a served agent: the eval runner needs the HTTP client of the
    # Agent contract. serve.client (and serve.frames, which it uses to encode frames) import only vidnav.errors,
    # so this edge closes no cycle; the server side (serve.app) sits above eval and uses eval.agents.
    ("vidnav.eval.agents", "vidnav.serve.client"),
    # `VLNEnv.reset(seed=...)` without an episode makes its own task (sim.env.generated_task: a generated house,
    # a sampled path, a written instruction), and sampling paths and writing instructions are vidnav.data's.
    # Imported in that function only; neither module imports sim.env, so no cycle. Cutting it would mean the env
    # taking its task source from the caller (gymnasium.make(ENV_ID) then reset() would need one): an API change.
    ("vidnav.sim.env", "vidnav.data.instructions"),
    ("vidnav.sim.env", "vidnav.data.paths"),
}

# Cycles (their sets of modules) that are accepted for now, and why.
ALLOWED_CYCLES: set[frozenset[str]] = set()  # none: a new cycle needs its reason here


def group_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in TOP:
        return "app"
    if parts[1] in CORE:
        return "core"
    if parts[1] in RANKS:
        return parts[1]
    raise SystemExit(f"import_graph: {module} is in no layer; add it to RANKS/CORE/TOP in {__file__}")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    files = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: set[str]):
        self.module, self.is_package, self.modules = module, is_package, modules
        self.depth = 0
        self.seen: set[tuple[str, int]] = set()
        self.found: list[tuple[str, int, bool]] = []  # (imported module, line, in a function)

    def _add(self, target: str, line: int) -> None:
        if target.split(".")[0] != PACKAGE:
            return
        while target not in self.modules and "." in target:  # `import vidnav.x.Name`-like leftovers
            target = target.rsplit(".", 1)[0]
        if target in self.modules and target != self.module and (target, line) not in self.seen:
            self.seen.add((target, line))
            self.found.append((target, line, self.depth > 0))

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            base = base if self.is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            self._add(sub if sub in self.modules else source, node.lineno)


def import_edges(root: Path = ROOT) -> list[tuple[str, str, int, bool]]:
    """Every (importer, imported, line, in_function) between vidnav modules."""
    files = module_files(root)
    edges = []
    for module, path in files.items():
        visitor = _Imports(module, path.name == "__init__.py", set(files))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        edges += [(module, target, line, in_function) for target, line, in_function in visitor.found]
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted, sorted by first module."""
    graph: dict[str, set[str]] = {}
    for a, b, *_ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (~100)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def violations(edges) -> list[tuple[str, str, int, bool]]:
    bad = []
    for a, b, line, in_function in edges:
        ga, gb = group_of(a), group_of(b)
        if ga != gb and RANKS[gb] >= RANKS[ga] and (a, b) not in ALLOWED:
            bad.append((a, b, line, in_function))
    return bad


def _where(in_function: bool) -> str:
    return " (in function)" if in_function else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", action="store_true", help="print every vidnav -> vidnav import")
    args = parser.parse_args(argv)
    edges = import_edges()
    if args.edges:
        for a, b, line, in_function in sorted(edges):
            print(f"{a}:{line} -> {b}{_where(in_function)}")
    found = cycles(edges)
    for component in found:
        members = set(component)
        allowed = " (allowed: see ALLOWED_CYCLES)" if frozenset(members) in ALLOWED_CYCLES else ""
        print(f"cycle: {' <-> '.join(component)}{allowed}")
        for a, b, line, in_function in sorted(edges):
            if a in members and b in members:
                print(f"    {a}:{line} -> {b}{_where(in_function)}")
    for gone in sorted(sorted(c) for c in ALLOWED_CYCLES - {frozenset(c) for c in found}):
        print(f"note: the allowed cycle {' <-> '.join(gone)} is gone; take it out of ALLOWED_CYCLES")
    bad = violations(edges)
    for a, b, line, in_function in bad:
        print(f"layer: {a}:{line} ({group_of(a)}) imports {b} ({group_of(b)}){_where(in_function)}")
    failing = [c for c in found if frozenset(c) not in ALLOWED_CYCLES]
    modules = len({m for e in edges for m in e[:2]})
    print(
        f"{len(edges)} imports between {modules} vidnav modules: {len(found)} cycle(s), "
        f"{len(found) - len(failing)} of them allowed; {len(bad)} layer violation(s)"
    )
    return 1 if failing or bad else 0


if __name__ == "__main__":
    sys.exit(main())
