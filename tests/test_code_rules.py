"""Rules of the code's shape that a linter here does not check, read from the source with ``ast``.

- In the engine, an object's attributes are all set in its ``__init__``: state that appears
  halfway through a run (set in some setup method) hides the run's setup and fails late.
- No module calls another one's private function or method (``other._name(...)``): what a
  module lends out is public.
"""

from __future__ import annotations

import ast
from pathlib import Path

import chroma_studio

PACKAGE = Path(chroma_studio.__file__).parent
ALLOWED_PRIVATE_CALLS = {"os._exit"}  # documented public API despite its name


def modules(folder: Path) -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(PACKAGE.parent)), ast.parse(path.read_text())) for path in sorted(folder.rglob("*.py"))
    ]


def self_assignments(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, int]]:
    """(attribute, line) for every ``self.attribute = ...`` (also in tuples, ``+=``, annotated)."""
    found = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        else:
            continue
        stack = list(targets)
        while stack:
            target = stack.pop()
            if isinstance(target, ast.Tuple | ast.List):
                stack.extend(target.elts)
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                found.append((target.attr, node.lineno))
    return found


def attributes_set_outside_init(tree: ast.Module) -> list[str]:
    problems = []
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        declared = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        methods = [n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for method in methods:
            if method.name == "__init__":
                declared |= {attr for attr, _ in self_assignments(method)}
        for method in methods:
            if method.name == "__init__":
                continue
            problems += [
                f"{cls.name}.{method.name} line {line}: self.{attr}"
                for attr, line in self_assignments(method)
                if attr not in declared
            ]
    return problems


def private_calls(tree: ast.Module) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        if not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        called = ast.unparse(node.func)
        if called not in ALLOWED_PRIVATE_CALLS:
            problems.append(f"line {node.lineno}: {called}(...)")
    return problems


def test_engine_objects_set_every_attribute_in_init():
    problems = [
        f"{name}: {p}" for name, tree in modules(PACKAGE / "training") for p in attributes_set_outside_init(tree)
    ]
    assert not problems, "first set outside __init__:\n" + "\n".join(problems)


def test_no_module_calls_another_ones_private_functions():
    problems = [f"{name} {p}" for name, tree in modules(PACKAGE) for p in private_calls(tree)]
    assert not problems, "calls of another object's private function:\n" + "\n".join(problems)


def test_the_rules_catch_what_they_are_meant_to():
    source = """
class Run:
    def __init__(self):
        self.step = 0
    def setup(self, loader):
        self.step, self.model = 1, None
        self.step += 1
        loader._local(3)
        self._own()
        super()._report()
"""
    tree = ast.parse(source)
    assert attributes_set_outside_init(tree) == ["Run.setup line 6: self.model"]
    assert private_calls(tree) == ["line 8: loader._local(...)"]
