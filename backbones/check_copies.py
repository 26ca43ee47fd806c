"""Check that code copied from diffusers still matches the installed diffusers.

Every attention processor here is a diffusers processor plus this project's hooks. A copy is marked the way
diffusers marks its own copies, and what this project adds is fenced::

    # Copied from diffusers.models.attention_processor.CogVideoXAttnProcessor2_0.__call__
    def __call__(self, attn, hidden_states, ...):
        ...
        # t2v-unlearn: begin concept-map hook
        ...
        # t2v-unlearn: end concept-map hook
        ...

The marker may declare renames, ``# Copied from diffusers.x.Y.f with old->new, other->new2``. The check: the
marked function or class minus every ``# t2v-unlearn: begin <label>`` … ``end <label>`` region must equal
``inspect.getsource`` of the named object, with the renames applied and its relative imports resolved. Both
sides are parsed and printed again by :mod:`ast`, so comments, docstrings, type annotations and formatting do not
count; what the code does does. A region labelled ``imports`` (the names diffusers' module imports at its top,
imported on use here so that ``import backbones`` stays light) must import the very objects the original's module
uses.

    python -m unlearn.backbones.check_copies           # every module of the backbones package
    python -m unlearn.backbones.check_copies FILE ...  # these files

Exit status 0 when every copy matches; 1 with a unified diff (or the problem) for each copy that does not.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import io
import re
import sys
import textwrap
import tokenize
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MARKER = re.compile(r"^\s*# Copied from (?P<target>diffusers(?:\.\w+)+)(?:\s+with\s+(?P<renames>.+?))?\s*$")
REGION = re.compile(r"^\s*# t2v-unlearn: (?P<kind>begin|end) (?P<label>\S.*?)\s*$")
PACKAGE_DIR = Path(__file__).resolve().parent


class CopyError(ValueError):
    """A marker or a fenced region that cannot be checked (bad target, unbalanced region, ...)."""


@dataclasses.dataclass
class Copy:
    """One marked copy: where it is (file, qualified name, marker line), what it copies, the declared renames and
    its source lines (the def or class and its body, decorators included)."""

    path: str
    qualname: str
    marker_line: int
    target: str
    renames: list[tuple[str, str]]
    lines: list[str]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.marker_line} {self.qualname}"


def parse_renames(text: str | None) -> list[tuple[str, str]]:
    """``"a->b, C->D"`` → ``[("a", "b"), ("C", "D")]``."""
    if not text:
        return []
    out = []
    for item in text.split(","):
        old, arrow, new = item.strip().partition("->")
        if not arrow or not old.strip() or not new.strip():
            raise CopyError(f"rename {item.strip()!r} is not of the form old->new")
        out.append((old.strip(), new.strip()))
    return out


def find_copies(text: str, path: str = "<string>") -> list[Copy]:
    """Every function or class in ``text`` directly preceded by a ``# Copied from diffusers...`` line."""
    lines = text.splitlines()
    tree = ast.parse(text, filename=path)
    # real comments only (a docstring may show a marker as an example)
    comments = {
        tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT
    }
    markers = {n for n in comments if MARKER.match(lines[n - 1])}
    copies: list[Copy] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = f"{prefix}{child.name}"
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                if start - 1 in markers:
                    m = MARKER.match(lines[start - 2])
                    end = child.end_lineno
                    # comment lines right after the last statement (a region's end line) belong to the block
                    indent = len(lines[child.lineno - 1]) - len(lines[child.lineno - 1].lstrip())
                    while (
                        end < len(lines) and end + 1 in comments and len(lines[end]) - len(lines[end].lstrip()) > indent
                    ):
                        end += 1
                    copies.append(
                        Copy(
                            path, qualname, start - 1, m["target"], parse_renames(m["renames"]), lines[start - 1 : end]
                        )
                    )
                visit(child, qualname + ".")

    visit(tree, "")
    stray = sorted(markers - {c.marker_line for c in copies})
    if stray:
        raise CopyError(f"{path}: '# Copied from' marker(s) at line(s) {stray} not directly above a def or class")
    return copies


def strip_regions(lines: Sequence[str], where: str) -> tuple[list[str], dict[str, list[str]]]:
    """``lines`` without the ``# t2v-unlearn: begin/end`` regions, and the regions' lines by label."""
    kept: list[str] = []
    regions: dict[str, list[str]] = {}
    label: str | None = None
    for line in lines:
        m = REGION.match(line)
        if m and m["kind"] == "begin":
            if label is not None:
                raise CopyError(f"{where}: region {m['label']!r} begins inside region {label!r} (no nesting)")
            label = m["label"]
            regions.setdefault(label, [])
        elif m:
            if m["label"] != label:
                raise CopyError(
                    f"{where}: 'end {m['label']}' does not close {'region ' + repr(label) if label else 'any region'}"
                )
            label = None
        elif label is not None:
            regions[label].append(line)
        else:
            kept.append(line)
    if label is not None:
        raise CopyError(f"{where}: region {label!r} is never closed ('# t2v-unlearn: end {label}')")
    return kept, regions


class _Normalise(ast.NodeTransformer):
    """Drop what does not change behaviour (docstrings, annotations); make relative imports absolute."""

    def __init__(self, package: str | None = None) -> None:
        self.package = package

    def _strip_docstring(self, node: Any) -> None:
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self._strip_docstring(node)
        node.returns = None
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None:
                arg.annotation = None
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._strip_docstring(node)
        return self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        if node.level and self.package is not None:
            node.module = importlib.util.resolve_name("." * node.level + (node.module or ""), self.package)
            node.level = 0
        return node


def normalised(source: str, package: str | None = None) -> str:
    """``source`` parsed and printed again without comments, docstrings and annotations."""
    tree = ast.parse(textwrap.dedent(source))
    return ast.unparse(ast.fix_missing_locations(_Normalise(package).visit(tree)))


def resolve(target: str) -> Any:
    """``diffusers.a.b.Class.attr`` → the object (the longest importable module prefix, then attributes)."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError as err:
            raise CopyError(f"{target}: the installed diffusers has no {err.name or parts[i:]!r} there") from err
        return obj
    raise CopyError(f"{target}: no importable module")


def apply_renames(source: str, renames: Sequence[tuple[str, str]]) -> str:
    for old, new in renames:
        source = re.sub(rf"\b{re.escape(old)}\b", new, source)
    return source


def _check_imports(copy: Copy, region: list[str], module: Any) -> list[str]:
    """Each name the ``imports`` region imports must be the object the original's module holds by that name."""
    problems = []
    for node in ast.walk(ast.parse(textwrap.dedent("\n".join(region)))):
        if isinstance(node, ast.ImportFrom) and not node.level:
            source = importlib.import_module(node.module or "")
            for alias in node.names:
                name = alias.asname or alias.name
                if getattr(source, alias.name, None) is not getattr(module, name, object()):
                    problems.append(
                        f"{copy.where}: the imports region binds {name!r} to {node.module}.{alias.name}, which is not "
                        f"the object {module.__name__} uses under that name"
                    )
    return problems


def check_copy(copy: Copy) -> str | None:
    """``None`` when ``copy`` matches the installed diffusers, else a message with a unified diff."""
    kept, regions = strip_regions(copy.lines, copy.where)
    original = resolve(copy.target)
    try:
        original_source = inspect.getsource(original)
    except (OSError, TypeError) as err:
        raise CopyError(f"{copy.where}: no source for {copy.target} ({err})") from err
    module = inspect.getmodule(original)
    package = module.__name__.rpartition(".")[0] if module is not None else None
    want = normalised(apply_renames(original_source, copy.renames), package)
    try:
        have = normalised("\n".join(kept))
    except SyntaxError as err:
        raise CopyError(
            f"{copy.where}: without its t2v-unlearn regions the copy is not valid Python ({err.msg}, "
            f"line {err.lineno}); a region must hold whole statements"
        ) from err
    problems = _check_imports(copy, regions.get("imports", []), module) if module is not None else []
    if want != have:
        import diffusers

        diff = difflib.unified_diff(
            want.splitlines(),
            have.splitlines(),
            lineterm="",
            fromfile=f"{copy.target} (installed diffusers {diffusers.__version__}, normalised)",
            tofile=f"{copy.where} (the copy minus its t2v-unlearn regions, normalised)",
        )
        problems.insert(0, f"{copy.where} no longer matches {copy.target}:\n" + "\n".join(diff))
    return "\n".join(problems) or None


def check_files(paths: Sequence[str | Path]) -> tuple[int, list[str]]:
    """``(number of copies checked, problems)`` for the files ``paths``."""
    count, problems = 0, []
    for path in paths:
        try:
            copies = find_copies(Path(path).read_text(encoding="utf-8"), str(path))
            for copy in copies:
                count += 1
                message = check_copy(copy)
                if message:
                    problems.append(message)
        except CopyError as err:
            problems.append(str(err))
    return count, problems


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("-") for a in args):
        print(__doc__)
        return 0 if args in (["-h"], ["--help"]) else 2
    paths = args or sorted(str(p) for p in PACKAGE_DIR.glob("*.py"))
    count, problems = check_files(paths)
    for problem in problems:
        print(problem, end="\n\n")
    if problems:
        print(
            f"{len(problems)} problem(s) in {count} copied block(s). Fix: bring the copy in line with the installed "
            "diffusers (keep this project's additions inside '# t2v-unlearn: begin/end' regions), or update the "
            "'# Copied from' target if diffusers moved it."
        )
        return 1
    print(f"{count} copied block(s) match the installed diffusers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
