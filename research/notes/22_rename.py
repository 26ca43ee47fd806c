"""One name per concept (issue #22): the renames, as word-boundary replacements over the tree.

Run from the repository root: ``python research/notes/22_rename.py`` (``--check``: list what would change, exit 1
if anything would). Deterministic and idempotent: no new name contains an old one as a word, so a second run
changes nothing; run it again after merging a branch that was written against the old names.

A table row is a *row* everywhere: its spec, the generator of its videos, its metrics, the parser of its
command-line form and the tuple of its kinds. (The parameters named ``methods`` were renamed by hand: the word
is also the package ``unlearn.methods``.)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RENAMES = {
    "MethodSpec": "RowSpec",
    "MethodGenerator": "RowGenerator",
    "MethodMetrics": "RowMetrics",
    "parse_methods": "parse_rows",
    "METHOD_KINDS": "ROW_KINDS",
}
SUFFIXES = {".py", ".yaml", ".yml", ".md"}
#: the research log keeps the names of its time; this script keeps its own table
SKIP_DIRS = {".git", ".venv", "runs", "wandb", "research", "__pycache__", "node_modules"}
LINKS = {("unlearn", "backbones"), ("unlearn", "callbacks"), ("unlearn", "configs")}
PATTERN = re.compile(r"\b(" + "|".join(map(re.escape, RENAMES)) + r")\b")


def files(root: Path):
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        folders = rel.parts[:-1]
        skipped = any(p.startswith(".") for p in folders) or bool(set(folders) & SKIP_DIRS)
        if path.suffix in SUFFIXES and path.is_file() and not path.is_symlink() and not skipped:
            yield path


def main(argv: list[str]) -> int:
    root = Path.cwd()
    check = "--check" in argv
    changed = []
    for path in files(root):
        # unlearn/backbones, unlearn/callbacks and unlearn/configs link to the top-level folders: each file once
        if path.relative_to(root).parts[:2] in LINKS:
            continue
        text = path.read_text(encoding="utf-8")
        new = PATTERN.sub(lambda m: RENAMES[m.group(1)], text)
        if new != text:
            changed.append(path.relative_to(root))
            if not check:
                path.write_text(new, encoding="utf-8")
    for path in changed:
        print(path)
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
