"""The ``unlearn`` command.

``unlearn fit|validate|test|predict --config X.yaml`` runs LightningCLI (the product's form of
``lightning fit --config X.yaml``: lightning 2.6 installs no such script). ``--config`` takes a path, or the
name of a config shipped with t2v-unlearn (``unlearn fit --config cogx2b_imagenet.yaml`` from any folder; a
file of that name in the current folder wins); ``--ckpt_path last`` resumes a killed run from its checkpoint
(read without unpickling anything; URLs are refused). Other subcommands: ``unlearn export`` (checkpoint →
adapters), ``unlearn push`` (adapters → the Hugging Face Hub, with a model card), ``unlearn augment`` (prompt
suites), ``unlearn evaluate`` (resumable generation + evaluation of a prompt suite with several methods),
``unlearn attack`` (concept-recovery attacks against every row: ``--config configs/attack_toy.yaml``),
``unlearn toyworld`` (the toy world's pretraining and evaluation).

Config files compose (``configs/README.md``): ``config: <file>`` inside a config includes another (a path
relative to the including file), dotted keys override it, and ``${a.b}`` interpolations are resolved once on
the final config (parser mode ``omegaconf+``), so they follow keys set in any file or on the command line.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
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


#: LightningCLI subcommands (they take ``--config``)
LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def shipped_config_dirs() -> list[Path]:
    """Folders holding the configs shipped with t2v-unlearn: ``unlearn/configs`` inside an installed package,
    and the source checkout's ``configs/`` (editable installs, running from a clone)."""
    package = Path(__file__).resolve().parent
    return [d for d in (package / "configs", package.parent / "configs") if d.is_dir()]


def resolve_config(name: str) -> tuple[Path, bool]:
    """The file ``--config name`` means: ``name`` itself if it exists (relative to the current folder), else
    the shipped config of that name (any file below a shipped configs folder, e.g. ``cogx2b_imagenet.yaml``
    or ``base/cogvideox.yaml``; a leading ``configs/`` is allowed). Returns ``(path, shipped)``.

    Raises :class:`FileNotFoundError` naming the places looked in and the shipped configs when neither exists.
    """
    given = Path(name).expanduser()
    if given.is_file() or given.is_absolute():
        return given, False
    relative = Path(*given.parts[1:]) if given.parts[:1] == ("configs",) and len(given.parts) > 1 else given
    for folder in shipped_config_dirs():
        for candidate in (folder / given, folder / relative):
            if candidate.is_file():
                return candidate.resolve(), True
    known = sorted({p.relative_to(d).as_posix() for d in shipped_config_dirs() for p in d.rglob("*.yaml")})
    raise FileNotFoundError(
        f"config {name!r} is neither a file (relative to {os.getcwd()}) nor a config shipped with t2v-unlearn. "
        f"Shipped configs: {', '.join(known) or 'none found'}"
    )


def resolve_config_args(args: list[str]) -> list[str]:
    """Replace every ``--config NAME`` / ``--config=NAME`` / ``-c NAME`` by the file it resolves to, and say on
    stderr which file a shipped name resolved to."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg in ("--config", "-c") and i + 1 < len(out):
            value, prefix, at = out[i + 1], "", i + 1
        elif arg.startswith("--config="):
            value, prefix, at = arg.split("=", 1)[1], "--config=", i
        else:
            continue
        if value.lstrip().startswith(("{", "[")) or "\n" in value:
            continue  # an inline YAML/JSON config, not a file name
        path, shipped = resolve_config(value)
        if shipped:
            print(f"unlearn: using the shipped config {path} (no file {value!r} in {os.getcwd()})", file=sys.stderr)
        out[at] = prefix + str(path)
    return out


def _lightning_cli(args: list[str] | None) -> None:
    import warnings

    import lightning.pytorch as pl
    import yaml
    from jsonargparse import set_dumper, set_loader
    from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

    from callbacks.checkpoint import install_safe_checkpoint_io
    from unlearn.io import load_checkpoint_file, refuse_remote_checkpoint

    # the frozen backbone is in eval mode on purpose; only the adapters train
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
    set_loader("omegaconf+", _load_yaml, (yaml.YAMLError,))
    set_dumper("yaml", _dump_yaml)

    class LoggedConfig(SaveConfigCallback):
        """Writes ``config.yaml`` to the log folder (Lightning's behaviour) and gives the resolved config to
        every logger (wandb shows it as the run's config)."""

        def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
            resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False, skip_check=True))
            resolved.pop("config", None)
            for logger in trainer.loggers:
                logger.log_hyperparams({"config": resolved})

    class UnlearnCLI(LightningCLI):
        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            # nothing is ever unpickled: no `--weights_only false` switch
            return {k: v | {"weights_only"} for k, v in LightningCLI.subcommands().items()}

        def _parse_ckpt_path(self) -> None:
            # LightningCLI reads the checkpoint's hyper-parameters into the model config before building it; it
            # does so with torch.load, which cannot read the safe format: the same logic with the safe reader
            subcommand = self.config.get("subcommand")
            ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
            if not ckpt_path:
                return
            refuse_remote_checkpoint(ckpt_path)
            if not Path(ckpt_path).is_file():
                return  # "last", "best", "hpc": resolved by the trainer
            hparams = dict(load_checkpoint_file(ckpt_path).get("hyper_parameters") or {})
            hparams.pop("_instantiator", None)
            if not hparams:
                return
            if "_class_path" in hparams:
                hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

        def instantiate_trainer(self, **kwargs):
            trainer = super().instantiate_trainer(**kwargs)
            install_safe_checkpoint_io(trainer)
            return trainer

    UnlearnCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_kwargs={"parser_mode": "omegaconf+", "default_env": False},
        save_config_callback=LoggedConfig,
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
    if args and args[0] == "push":
        from unlearn.hub import push_main

        return push_main(args[1:])
    if args and args[0] == "augment":
        from unlearn.prompts.augment.cli import augment_main

        return augment_main(args[1:])
    if args and args[0] == "evaluate":
        from unlearn.evaluation.runner import main as evaluate_main

        return int(evaluate_main(args[1:]) or 0)
    if args and args[0] == "attack":
        from unlearn.attacks import attack_main

        return attack_main(resolve_config_args(args[1:]))
    if args and args[0] == "toyworld":
        from unlearn.toyworld.cli import toyworld_main

        return toyworld_main(args[1:])
    if args and args[0] in LIGHTNING_SUBCOMMANDS:
        args = [args[0], *resolve_config_args(args[1:])]
        # DDP re-runs this command line in each new process: let them find the same file
        sys.argv = [sys.argv[0], *args] if argv is None else sys.argv
    _lightning_cli(None if argv is None else args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
