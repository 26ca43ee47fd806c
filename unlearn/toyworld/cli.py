"""``unlearn toyworld pretrain|evaluate|classifier ...``: the toy world's own commands."""

from __future__ import annotations

import sys

COMMANDS = {
    "pretrain": ("unlearn.toyworld.pretrain", "train the toy text encoder + denoiser (+ classifier) and ship the weights"),
    "evaluate": ("unlearn.toyworld.evaluate_pretrained", "generate held-out prompts and classify every frame"),
    "classifier": ("unlearn.toyworld.classifier", "train the shape x colour frame classifier alone"),
}


def toyworld_main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print("usage: unlearn toyworld {pretrain,evaluate,classifier} [options]   (--help after a command)")
        for name, (_, what) in COMMANDS.items():
            print(f"  {name:<11} {what}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    import importlib

    module = importlib.import_module(COMMANDS[args[0]][0])
    return int(module.main(args[1:]) or 0)
