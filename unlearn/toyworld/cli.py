"""``unlearn toyworld pretrain|evaluate|classifier ...``: the toy world's own commands."""

from __future__ import annotations

import difflib
import sys

COMMANDS = {
    "pretrain": (
        "unlearn.toyworld.pretrain",
        "train the toy text encoder + denoiser (+ classifier) and ship the weights",
    ),
    "evaluate": ("unlearn.toyworld.evaluate_pretrained", "generate held-out prompts and classify every frame"),
    "classifier": ("unlearn.toyworld.classifier", "train the shape x colour frame classifier alone"),
}


def toyworld_main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        helping = bool(args) and args[0] in ("-h", "--help")
        out = sys.stdout if helping else sys.stderr
        print("usage: unlearn toyworld {pretrain,evaluate,classifier} [options]   (--help after a command)", file=out)
        for name, (_, what) in COMMANDS.items():
            print(f"  {name:<11} {what}", file=out)
        if helping:
            return 0
        close = difflib.get_close_matches(args[0], COMMANDS, n=1) if args else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        what = f"unknown command {args[0]!r}.{hint}" if args else "a command is needed."
        print(f"error: unlearn toyworld: {what} Use one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(COMMANDS[args[0]][0])
    return int(module.main(args[1:]) or 0)
