"""The ``unlearn`` command.

``unlearn fit|validate|test|predict --config configs/X.yaml`` runs LightningCLI (the product's form of
``lightning fit --config X.yaml``: lightning 2.6 installs no such script). Other subcommands:
``unlearn export`` (checkpoint → adapters), ``unlearn augment`` (prompt suites), ``unlearn evaluate``
(resumable generation + evaluation of a prompt suite with several methods), ``unlearn toyworld`` (the toy
world's pretraining and evaluation).

Config files compose (``configs/README.md``): ``config: <file>`` inside a config includes another (a path
relative to the including file), dotted keys override it, and ``${a.b}`` interpolations are resolved once on
the final config (parser mode ``omegaconf+``), so they follow keys set in any file or on the command line.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][\w.\[\]]*)\}")  # ${a.b.c} / ${a[0].b}; not ${.rel} nor ${oc.env:X}


def _relative_interpolations(node: Any, path: tuple[str, ...] = ()) -> Any:
    """``node`` (a loaded YAML value) with every absolute ``${a.b}`` rewritten relative to where it stands.

    Interpolations are resolved once, on the whole parsed config (parser mode ``omegaconf+``), so that a key
    set in an included file, in the including file or on the command line all count
    (``--data.concept "chain saw"`` renames ``runs/cogx2b_imagenet_${data.init_args.concept}``). That config sits
    below the subcommand's key (``fit.trainer...``), so an absolute path would miss; a relative one does not.
    A dotted key (``trainer.logger.init_args.name: x``, the form of the overrides in configs/) counts as the
    nested keys it names.
    """
    if isinstance(node, dict):
        return {k: _relative_interpolations(v, path + tuple(str(k).split("."))) for k, v in node.items()}
    if isinstance(node, list):
        return [_relative_interpolations(v, path + (str(i),)) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node or not path:
        return node

    def relative(match: re.Match) -> str:
        target = match.group(1).replace("[", ".").replace("]", "").split(".")
        common = 0  # leading keys shared with the node's own container
        while common < min(len(path) - 1, len(target) - 1) and path[common] == target[common]:
            common += 1
        rest = "".join(f"[{t}]" if t.isdigit() else f".{t}" for t in target[common:]).lstrip(".")
        return "${" + "." * (len(path) - common) + rest + "}"

    return _INTERPOLATION.sub(relative, node)


def _load_yaml(text: str) -> Any:
    """The config loader of parser mode ``omegaconf+``: jsonargparse's YAML loader, interpolations made relative."""
    from jsonargparse import get_loader

    return _relative_interpolations(get_loader("yaml")(text))


def _class_path_first(node: Any) -> Any:
    if isinstance(node, dict):
        first = {"class_path": node["class_path"]} if "class_path" in node else {}
        return first | {k: _class_path_first(v) for k, v in node.items() if k != "class_path"}
    if isinstance(node, list):
        return [_class_path_first(v) for v in node]
    return node


def _dump_yaml(data: Any) -> str:
    """jsonargparse's YAML dumper with ``class_path`` before ``init_args`` wherever an override moved it behind
    (``--print_config`` and the run's saved ``config.yaml`` read as the config files are written)."""
    import yaml

    return yaml.safe_dump(_class_path_first(data), default_flow_style=False, allow_unicode=True, sort_keys=False)


def _lightning_cli(args: list[str] | None) -> None:
    import warnings

    import lightning.pytorch as pl
    import yaml
    from jsonargparse import set_dumper, set_loader
    from lightning.pytorch.cli import LightningCLI

    # the frozen backbone is in eval mode on purpose; only the adapters train
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
    set_loader("omegaconf+", _load_yaml, (yaml.YAMLError,))
    set_dumper("yaml", _dump_yaml)

    LightningCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_kwargs={"parser_mode": "omegaconf+", "default_env": False},
        save_config_kwargs={"overwrite": True},
        args=args,
        seed_everything_default=0,
    )


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # wandb must never block on a login prompt; offline unless the user says otherwise
    os.environ.setdefault("WANDB_MODE", "offline")
    if args and args[0] == "export":
        from unlearn.methods.t2vunlearning.export import export_main

        return export_main(args[1:])
    if args and args[0] == "augment":
        from unlearn.prompts.augment.cli import augment_main

        return augment_main(args[1:])
    if args and args[0] == "evaluate":
        from unlearn.evaluation.runner import main as evaluate_main

        return int(evaluate_main(args[1:]) or 0)
    if args and args[0] == "toyworld":
        from unlearn.toyworld.cli import toyworld_main

        return toyworld_main(args[1:])
    _lightning_cli(None if argv is None else args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
