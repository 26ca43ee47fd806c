"""The rooms of the house and the one rule per room of what it may import (docs/architecture.md).

Every import statement of the three top-level packages is read from the source (module level and inside
functions alike), so an import that only moved into a function to dodge a cycle still counts."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: room -> rooms it may import (besides itself); the order is the direction of the house
#: what every method room and the rooms above may import: the contract, files, checks, videos, prompts, the toy
#: world (the weight-editing methods add their shared room)
_BELOW_METHODS = {
    "unlearn.backbones",
    "unlearn.io",
    "unlearn.checks",
    "unlearn.video",
    "unlearn.prompts",
    "unlearn.toyworld",
}
_EDITING_METHOD = _BELOW_METHODS | {"unlearn.methods.weight_edits"}
_METHODS = {f"unlearn.methods.{m}" for m in ("t2vunlearning", "refusal", "baselines", "weight_edits", "uce", "esd")}
_EVALUATION = _BELOW_METHODS | _METHODS

ALLOWED = {
    "unlearn.backbones": set(),
    "unlearn.io": set(),
    "unlearn.checks": set(),
    "unlearn.video": {"unlearn.io"},
    # run safety (issue #27): text from files, signals, sizes, config files, resuming, run folders
    "unlearn.safe_text": set(),
    "unlearn.signals": set(),
    "unlearn.limits": {"unlearn.checks"},
    "unlearn.config_files": {"unlearn.checks", "unlearn.safe_text"},
    "unlearn.resume": {"unlearn.io", "unlearn.checks"},
    "unlearn.run_folder": {"unlearn.io", "unlearn.checks", "unlearn.resume"},
    "unlearn.prompts": {"unlearn.io", "unlearn.checks"},
    "unlearn.toyworld": {"unlearn.backbones", "unlearn.io", "unlearn.checks"},
    "unlearn.methods.t2vunlearning": _BELOW_METHODS | {"unlearn.limits"},
    # the shared lower room of the weight-editing methods (sites, activations, edits and their files)
    "unlearn.methods.weight_edits": {"unlearn.backbones", "unlearn.io", "unlearn.checks"},
    "unlearn.methods.refusal": _EDITING_METHOD,
    "unlearn.methods.uce": _EDITING_METHOD,
    "unlearn.methods.esd": _EDITING_METHOD,
    "unlearn.methods.baselines": {"unlearn.backbones", "unlearn.io", "unlearn.checks"},
    "unlearn.methods": set(),  # the package docstring only
    "unlearn.evaluation": _EVALUATION,
    "unlearn.attacks": _EVALUATION | {"unlearn.evaluation"},
    # publishing adapters with a model card that shows their evaluation
    "unlearn.hub": {
        "unlearn.backbones",
        "unlearn.io",
        "unlearn.checks",
        "unlearn.methods.t2vunlearning",
        "unlearn.evaluation",
    },
    "unlearn.callbacks": _EVALUATION | {"unlearn.limits", "unlearn.signals", "unlearn.evaluation", "unlearn.attacks"},
    "unlearn.cli": {"*"},
    "unlearn.commands": {"*"},  # the subcommands' parsers: unlearn.cli's other half
    "unlearn.compat": set(),
    "unlearn.tracking": set(),  # wandb's mode from its credentials (read by the CLI)
    "unlearn": set(),  # unlearn/__init__.py
}
# unlearn.compat (the private framework calls, behind version checks) is a leaf every room may use
for _room in ALLOWED:
    if _room not in ("unlearn.compat", "unlearn"):
        ALLOWED[_room] = ALLOWED[_room] | {"unlearn.compat"}
#: function-level imports of project modules that are there on purpose (start-up time), not to dodge a cycle
LAZY_ON_PURPOSE = {
    "unlearn/cli.py",  # `unlearn --help` must not import torch, lightning and diffusers
    "unlearn/commands.py",  # the same: each subcommand imports its own code only when it runs
    "unlearn/toyworld/__init__.py",  # `import unlearn.toyworld` stays torch-free
}
#: the folders of the installed package `unlearn`: backbones/ and callbacks/ sit at the repository's top level
#: (the project's shape) and install as unlearn.backbones / unlearn.callbacks (links unlearn/backbones,
#: unlearn/callbacks)
FOLDERS = ("backbones", "unlearn", "callbacks")
PROJECT = ("unlearn",)


def room_of(module: str) -> str:
    """The longest room name that ``module`` lies in."""
    best = ""
    for room in ALLOWED:
        if (module == room or module.startswith(room + ".")) and len(room) > len(best):
            best = room
    return best


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] != "unlearn":
        parts.insert(0, "unlearn")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path):
    """``(line, imported module, inside a function)`` of every import of a project module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_of(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                targets = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # "from . import x": each x may be a module
                    targets = [f"{targets[0]}.{a.name}" for a in node.names]
            else:
                targets = [node.module or ""]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t.split(".")[0] in PROJECT:
                yield node.lineno, t, id(node) in in_function


FILES = sorted(p for pkg in FOLDERS for p in (ROOT / pkg).rglob("*.py"))


def test_every_file_lies_in_a_room():
    homeless = [str(p.relative_to(ROOT)) for p in FILES if not room_of(module_of(p))]
    assert not homeless, f"add these to a room in tests/test_architecture.py and docs/architecture.md: {homeless}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path):
    here = room_of(module_of(path))
    allowed = ALLOWED[here]
    bad = []
    for line, target, lazy in imports(path):
        if lazy and str(path.relative_to(ROOT)) not in LAZY_ON_PURPOSE:
            bad.append(f"line {line}: function-level import of {target}; import it at the top of the module")
        there = room_of(target)
        if there != here and "*" not in allowed and there not in allowed:
            bad.append(f"line {line}: {here} imports {target} ({there or 'unknown room'})")
    assert not bad, "\n".join(bad)


def test_function_level_project_imports_are_the_listed_ones():
    lazy = sorted({str(p.relative_to(ROOT)) for p in FILES for _, t, inside in imports(p) if inside})
    assert set(lazy) <= LAZY_ON_PURPOSE, lazy
