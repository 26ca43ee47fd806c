"""``--ckpt_path``: a checkpoint restores a run's state, never its configuration (issue #27).

The configuration of a run comes from its config files and command line only. A checkpoint brings back the
adapters, the optimizer, the step, the loops, the sampler position and the RNG states; it is never parsed as
configuration, and nothing it names is imported or downloaded (Lightning's ``LightningCLI`` copies a
checkpoint's ``hyper_parameters`` over the command line, ``_class_path`` included: the ``unlearn`` command does
not).

Before a resumed fit starts:

* :func:`resolve_ckpt_path` turns ``--ckpt_path last`` into the file it means, or refuses with the folder it
  looked in and why there is nothing to resume (no checkpoint written by this config, none there yet);
* :func:`check_checkpoint_identity` compares what made the checkpoint (its recorded model hyperparameters and,
  for checkpoints written by ``unlearn fit``, its data module's concept) with this run's configuration, on the
  keys that decide what the adapters mean (:data:`IDENTITY_KEYS`): backbone, weights, concept, adapter shape,
  method. A difference is refused with one line naming the keys, unless ``--allow_config_mismatch true``
  (the command line's values are then used, as always). Other differing settings (η, learning rate, epochs)
  are allowed and said in one line on stderr.

:class:`RunRecord` (a callback the ``unlearn`` command adds) writes ``checkpoint["t2v_unlearn_run"]``: the run's
identity (:func:`run_identity`), the sha256 of its resolved config and the code version.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from unlearn.checks import InputError
from unlearn.io import load_checkpoint_file, refuse_remote_checkpoint

#: the checkpoint entry :class:`RunRecord` writes
RECORD_KEY = "t2v_unlearn_run"

#: keys whose difference makes a checkpoint another run's: what the adapters were trained on and for.
#: ``model.*`` are the LightningModule's hyperparameters (``_class_path`` = the method), ``data.*`` the data
#: module's constructor arguments (``class_path`` = the data module).
IDENTITY_KEYS = (
    "model._class_path",
    "model.backbone",
    "model.pretrained",
    "model.tiny",
    "model.backbone_kwargs",
    "model.adapter_dim",
    "model.rank",
    "data.class_path",
    "data.concept",
    "data.preserve_concept",
)

#: the option that accepts a checkpoint whose identity differs
ALLOW_FLAG = "--allow_config_mismatch true"


class ResumeError(InputError):
    """``--ckpt_path`` names nothing to resume, or a checkpoint of another run."""


def _norm(value: Any) -> Any:
    # the JSON form: tuples and lists compare equal, a dict's order does not matter
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def run_identity(model_hparams: dict[str, Any] | None, data_config: dict[str, Any] | None) -> dict[str, Any]:
    """The :data:`IDENTITY_KEYS` of a run, from its model hyperparameters (``{"_class_path": ..., "backbone":
    ...}``, Lightning's form) and its data config (``{"class_path": ..., "init_args": {...}}``)."""
    hp = dict(model_hparams or {})
    data = dict(data_config or {})
    flat_data = {"class_path": data["class_path"]} if "class_path" in data else {}
    flat_data.update(dict(data.get("init_args") or {}))
    out: dict[str, Any] = {}
    for key in IDENTITY_KEYS:
        part, name = key.split(".", 1)
        source = hp if part == "model" else flat_data
        if name in source:
            out[key] = _norm(source[name])
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def resolve_ckpt_path(ckpt_path: str | None, trainer: pl.Trainer) -> str | None:
    """The checkpoint file ``--ckpt_path`` means for ``trainer``: ``"last"`` → the newest ``last*.ckpt`` of the
    trainer's ``ModelCheckpoint`` folders; a file → itself; ``"best"``/``"hpc"``/registry names unchanged (the
    trainer resolves them). Raises :class:`ResumeError` naming the folder and the reason when there is nothing
    to resume, :class:`FileNotFoundError` for a missing file."""
    if not ckpt_path:
        return None
    refuse_remote_checkpoint(ckpt_path)
    root = Path(trainer.default_root_dir).absolute()
    if ckpt_path == "last":
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
        if not callbacks:
            raise ResumeError(
                f"--ckpt_path last: this run writes no checkpoint (no ModelCheckpoint; trainer.enable_checkpointing "
                f"is false?), so there is nothing to resume in {root}. Fix: run without --ckpt_path to start afresh, "
                "or use a config that writes a last checkpoint (ModelCheckpoint with save_last: true)"
            )
        undirected = [cb for cb in callbacks if cb.dirpath is None]
        if undirected:
            raise ResumeError(
                "--ckpt_path last: a ModelCheckpoint without dirpath writes into the logger's new version folder "
                f"each run, so the last checkpoint of an earlier run in {root} cannot be found. Fix: give it "
                "dirpath: ${trainer.default_root_dir}/checkpoints, or pass the checkpoint file to --ckpt_path"
            )
        found: set[str] = set()
        for cb in callbacks:
            found |= {str(p) for p in cb._find_last_checkpoints(trainer)}
        found = {p for p in found if Path(p).is_file()}
        if not found:
            folders = ", ".join(sorted({str(Path(cb.dirpath).absolute()) for cb in callbacks}))
            reason = (
                "holds no last checkpoint"
                if any(Path(cb.dirpath).is_dir() for cb in callbacks)
                else "does not exist (no run has written a checkpoint there)"
            )
            raise ResumeError(
                f"--ckpt_path last: the checkpoint folder {folders} {reason}; nothing to resume. Fix: run without "
                "--ckpt_path to start afresh, or pass the checkpoint file of the run to continue"
            )
        return max(found, key=lambda p: os.path.getmtime(p))
    if ckpt_path in ("best", "hpc") or ckpt_path.startswith("registry:"):
        return ckpt_path
    local = Path(ckpt_path[len("file://") :] if ckpt_path.startswith("file://") else ckpt_path).expanduser()
    if not local.is_file():
        raise FileNotFoundError(
            f"--ckpt_path {ckpt_path!r} does not exist (or is not a file). Fix: pass a checkpoint file, e.g. "
            f"{root / 'checkpoints' / 'last.ckpt'}, or `last`"
        )
    return str(local)


def check_checkpoint_identity(
    ckpt_file: str | os.PathLike,
    model_hparams: dict[str, Any],
    data_config: dict[str, Any] | None,
    allow_mismatch: bool = False,
    checkpoint: dict[str, Any] | None = None,
) -> list[str]:
    """Refuse (:class:`ResumeError`, one line naming the keys) the checkpoint ``ckpt_file`` when what made it
    differs from this run in an :data:`IDENTITY_KEYS` key, unless ``allow_mismatch``. Returns the other
    differing model settings (``"model.eta: 7.0 in the checkpoint, 3.0 now"``) for a note; nothing in the
    checkpoint is imported or fetched (it is read as data, :func:`unlearn.io.load_checkpoint_file`)."""
    ck = checkpoint if checkpoint is not None else load_checkpoint_file(ckpt_file)
    recorded = ck.get(RECORD_KEY) if isinstance(ck.get(RECORD_KEY), dict) else {}
    saved_hp = ck.get("hyper_parameters") if isinstance(ck.get("hyper_parameters"), dict) else {}
    # the model's recorded hyperparameters and the record's identity are both checked: a checkpoint edited in
    # one place but not the other is refused too
    theirs = dict(recorded.get("identity") or {})
    theirs.update(run_identity(saved_hp, None))
    recorded_only = dict(recorded.get("identity") or {})
    ours = run_identity(model_hparams, data_config)
    differing = [
        k
        for k in IDENTITY_KEYS
        if (k in theirs and theirs.get(k) != ours.get(k)) or (k in recorded_only and recorded_only[k] != ours.get(k))
    ]
    if differing and not allow_mismatch:
        shown = "; ".join(f"{k}: {_show(theirs.get(k))} in the checkpoint, {_show(ours.get(k))} now" for k in differing)
        raise ResumeError(
            f"--ckpt_path {str(ckpt_file)!r} is a checkpoint of another run ({shown}). A checkpoint restores state, "
            "never configuration. Fix: resume with the config that wrote it, start this run without --ckpt_path "
            f"(or in another --trainer.default_root_dir), or pass {ALLOW_FLAG} to load its state into this config"
        )
    notes = []
    for key in sorted(set(saved_hp) | set(model_hparams)):
        if key.startswith("_") or f"model.{key}" in IDENTITY_KEYS:
            continue
        a, b = _norm(saved_hp.get(key)), _norm(model_hparams.get(key))
        if key in saved_hp and a != b:
            notes.append(f"model.{key}: {_show(a)} in the checkpoint, {_show(b)} now")
    if differing:
        notes = [f"{k}: {_show(theirs.get(k))} in the checkpoint, {_show(ours.get(k))} now" for k in differing] + notes
    return notes


def code_version() -> str:
    """``t2v-unlearn <version>`` and, in a git checkout, ``+git <commit>`` (``-dirty`` with local changes)."""
    try:
        from importlib.metadata import version

        text = f"t2v-unlearn {version('t2v-unlearn')}"
    except Exception:  # noqa: BLE001 - not installed: the source tree is all there is
        text = "t2v-unlearn (not installed)"
    source = Path(__file__).resolve().parent.parent
    if (source / ".git").exists():  # a source checkout (a worktree's .git is a file)
        import subprocess

        try:
            done = subprocess.run(
                ["git", "-C", str(source), "describe", "--always", "--dirty", "--abbrev=12"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if done.returncode == 0 and done.stdout.strip():
                text += f" +git {done.stdout.strip()}"
        except (OSError, subprocess.SubprocessError):
            pass
    return text


def config_sha256(config: dict[str, Any]) -> str:
    """sha256 of a resolved config (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(_norm(config), sort_keys=True).encode()).hexdigest()


class RunRecord(pl.Callback):
    """Write what made a checkpoint into it (``checkpoint["t2v_unlearn_run"]``): the run's identity
    (:func:`run_identity`), the sha256 of its resolved config and the code version. ``unlearn fit --ckpt_path``
    compares the identity with the resuming run's (:func:`check_checkpoint_identity`)."""

    def __init__(self, data_config: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> None:
        self.data_config = data_config
        self.config = config

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint[RECORD_KEY] = {
            "identity": run_identity(dict(getattr(pl_module, "hparams", {}) or {}), self.data_config),
            "config_sha256": config_sha256(self.config) if self.config is not None else None,
            "code_version": code_version(),
        }


def note(lines: list[str]) -> None:
    """One line on stderr listing the settings of a resumed run that differ from its checkpoint's."""
    if lines:
        text = "; ".join(lines)
        print(
            f"unlearn: resuming with this run's configuration, which differs from the checkpoint's in {text}",
            file=sys.stderr,
        )
