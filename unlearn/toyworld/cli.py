"""``unlearn toyworld <command>``: the toy world's pretraining and evaluation.

Commands (``unlearn toyworld <command> --help`` for options):

* ``pretrain`` - train text encoder + denoiser + classifier, evaluate, write the weights folder
  (same as ``python -m unlearn.toyworld.pretrain``);
* ``evaluate`` - generate for held-out prompts and classify every frame
  (same as ``python -m unlearn.toyworld.evaluate_pretrained``);
* ``classifier`` - train the frame classifier alone (same as ``python -m unlearn.toyworld.classifier``).
"""

from __future__ import annotations

import sys


def toyworld_main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd == "pretrain":
        from .pretrain import main
    elif cmd == "evaluate":
        from .evaluate_pretrained import main
    elif cmd == "classifier":
        from .classifier import main
    else:
        print(f"unknown toyworld command {cmd!r}; expected pretrain, evaluate or classifier", file=sys.stderr)
        return 2
    return int(main(rest) or 0)
