"""Rules about the code's shape that a reader relies on: no import circle in bot/, no function over 60 lines of code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 60
# Known debt; remove the entry once the function fits: the benchmark's main() still prints every table itself.
LONG_FUNCTIONS_BEING_SPLIT = {
    ("benchmarks/speed.py", "main"),
}


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports anywhere in its file (TYPE_CHECKING blocks and imports
    inside functions count: the coupling is the same)."""
    files = {p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__"): p
             for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {module: set() for module in files}
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[module] |= {target for target in targets if target in graph and target != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[str]:
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return False

    return sorted(module for module in graph if reaches(module, module))


def test_no_module_of_bot_imports_itself_through_others():
    graph = import_graph("bot")
    assert "bot.service" in graph and "bot.app" in graph
    assert circles(graph) == []


def test_the_circle_check_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c"]


def long_functions(paths: list[Path]) -> list[tuple[str, str, int]]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                # The body's code: a keyword-per-line signature and the docstring are not what makes a
                # function hard to follow.
                body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
                lines = node.end_lineno - body[0].lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append((path.relative_to(ROOT).as_posix(), node.name, lines))
    return found


def test_no_function_in_the_project_is_over_60_lines():
    paths = [path for folder in ("bot", "stylizer", "tests", "benchmarks") for path in (ROOT / folder).rglob("*.py")]
    too_long = [(path, name, lines) for path, name, lines in long_functions(paths)
                if (path, name) not in LONG_FUNCTIONS_BEING_SPLIT]
    assert too_long == []


def test_the_length_check_counts_a_long_function(tmp_path):
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES + 1))
    path = ROOT / "tests" / "_generated_long_function.py"
    path.write_text(f'def long(\n    a,\n):\n    """Doc."""\n{body}\n\ndef short():\n    pass\n')
    try:
        assert long_functions([path]) == [("tests/_generated_long_function.py", "long", MAX_FUNCTION_LINES + 1)]
    finally:
        path.unlink()
