"""One name per concept (issue #22): the renames, as word-boundary replacements over the tree.

Run from the repository root: ``python research/notes/22_rename.py`` (``--check``: list what would change, exit 1
if anything would). Deterministic and idempotent: no new name contains an old one as a word, so a second run
changes nothing; run it again after merging a branch that was written against the old names.

A table row is a *row* everywhere: its spec, the generator of its videos, its metrics, the parser of its
command-line form and the tuple of its kinds. (The parameters named ``methods`` were renamed by hand: the word
is also the package ``unlearn.methods``.)

The on/off object of a row is a *switch* (``unlearn.backbones.Switch``): T2VUnlearning's adapters are an
``AdapterSwitch`` (was ``AdapterController``), the weight edits an ``EditSwitch``; every attribute, parameter and
local that held one (``controller``, ``ctl``) is ``switch``. The backbone's own sampling settings and the rows'
are one dataclass, ``SamplingSettings`` (was ``SamplingDefaults``); pseudo-data generation holds one plus its own
fields in ``PseudoDataSettings`` (was ``SamplerSettings``: that step is a hand edit, the constructors changed).
A ``PromptSuite`` (the records of a prompt file) becomes, in an evaluation, ``EvalVideos`` (was ``EvalSuite``),
a list of ``EvalVideo`` (was ``EvalItem``): the videos to make, each with its index, seed, label and split.

A line that must keep an old word (reading files written before a rename) carries the marker ``rename: keep``.
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
    # one switch type
    "AdapterController": "AdapterSwitch",
    "controller": "switch",
    "controllers": "switches",
    "ctl": "switch",
    "_controller": "_switch",
    "attach_controller": "attach_switch",
    "new_controller": "new_switch",
    "_controller_from": "_switch_from",
    "_sites_for_controller": "_sites_for_switch",
    "official_to_controller": "official_to_switch",
    "controller_to_official": "switch_to_official",
    # one sampling-settings type
    "SamplingDefaults": "SamplingSettings",
    "SamplerSettings": "PseudoDataSettings",
    "sampler_settings": "pseudo_data_settings",
    # a prompt suite (the records of a file) and what an evaluation makes of it (the videos to make) are two
    # stages: only the first is a suite
    "EvalSuite": "EvalVideos",
    "EvalItem": "EvalVideo",
}
KEEP = "rename: keep"
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
        lines = text.splitlines(keepends=True)
        new = "".join(line if KEEP in line else PATTERN.sub(lambda m: RENAMES[m.group(1)], line) for line in lines)
        if new != text:
            changed.append(path.relative_to(root))
            if not check:
                path.write_text(new, encoding="utf-8")
    for path in changed:
        print(path)
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
