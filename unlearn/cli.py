"""The ``unlearn`` command.

``unlearn fit|validate|test|predict --config configs/X.yaml`` runs LightningCLI (the product's form of
``lightning fit --config X.yaml``: lightning 2.6 installs no such script). Other subcommands:
``unlearn export`` (checkpoint → adapters), ``unlearn augment`` (prompt suites), ``unlearn evaluate``
(resumable generation + evaluation of a prompt suite with several methods), ``unlearn attack`` (concept-recovery
attacks against every row: ``--config configs/attack_toy.yaml``), ``unlearn toyworld`` (the toy world's
pretraining and evaluation).
"""

from __future__ import annotations

import os
import sys


def _lightning_cli(args: list[str] | None) -> None:
    import warnings

    import lightning.pytorch as pl
    from lightning.pytorch.cli import LightningCLI

    # the frozen backbone is in eval mode on purpose; only the adapters train
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")

    LightningCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_kwargs={"parser_mode": "omegaconf", "default_env": False},
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
    if args and args[0] == "attack":
        from unlearn.attacks import attack_main

        return attack_main(args[1:])
    if args and args[0] == "toyworld":
        from unlearn.toyworld.cli import toyworld_main

        return toyworld_main(args[1:])
    _lightning_cli(None if argv is None else args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
