"""Import graph figures: modules in import circles and arrows that point up a layer.

Usage: python scripts/import_graph.py [--verbose]

Reads every module of bot/, handlers/ and storage/ with `ast` (imports inside
`if TYPE_CHECKING:` blocks count too, as they do for import-linter: a type-only import
still ties the two modules together), builds the module graph and
prints the strongly connected components of more than one module (import circles) and
the imports that go against the layer order of docs/architecture.md.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage")

# Higher number = higher layer. A module may import only its own layer or lower ones.
LAYERS = [
    (("bot.app", "bot.cli", "bot.__main__"), 5),
    (("handlers",), 4),
    (("bot.runtime",), 3),
    (("bot.services",), 2),
    (("storage",), 1),
    (("bot.domain",), 0),
]
SIDE = ("bot.devtools",)  # developer tools: outside the layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    for prefixes, level in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def imports_of(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = resolve(alias.name)
                    if target:
                        found.add(target)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    target = resolve(f"{base}.{alias.name}") or resolve(base)
                    if target:
                        found.add(target)
            for field in ("body", "orelse", "finalbody", "handlers"):
                child = getattr(node, field, None)
                if isinstance(child, list) and child and isinstance(child[0], ast.AST):
                    visit(
                        [c for c in child if isinstance(c, ast.stmt)]
                        + [s for h in child if isinstance(h, ast.ExceptHandler) for s in h.body]
                    )

    visit(tree.body)
    found.discard(me)
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
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
                result.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return result


def main() -> int:
    verbose = "--verbose" in sys.argv
    paths = [
        p
        for pkg in PACKAGES
        for p in sorted((ROOT / pkg).rglob("*.py"))
        if "migrations" not in p.parts
    ]
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imports_of(p, modules) for p in paths}
    circles = strongly_connected(graph)
    in_circles = sorted(m for c in circles for m in c if not m.startswith(SIDE))
    upward = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a)
    )
    print(f"modules: {len(modules)}")
    print(f"modules in import circles (developer tools left out): {len(in_circles)}")
    print(f"upward arrows: {len(upward)}")
    if verbose:
        for circle in circles:
            print("circle:", ", ".join(circle))
        for a, b in upward:
            print(f"up: {a} -> {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
