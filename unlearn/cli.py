"""The ``unlearn`` command.

``unlearn fit|validate|test|predict --config X.yaml`` runs LightningCLI (the product's form of
``lightning fit --config X.yaml``: lightning 2.6 installs no such script). ``--config`` takes a path, or the
name of a config shipped with t2v-unlearn (``unlearn fit --config cogx2b_imagenet.yaml`` from any folder; a
file of that name in the current folder wins); ``--ckpt_path last`` resumes a killed run from its checkpoint
(read without unpickling anything; URLs are refused). A checkpoint restores state, never configuration: the
config comes from the files and the command line, and a checkpoint of another run is refused
(:mod:`unlearn.resume`; ``--allow_config_mismatch true`` accepts it); the run folder is locked and recorded
(:mod:`unlearn.run_folder`). Other subcommands: ``unlearn export`` (checkpoint →
adapters), ``unlearn push`` (adapters → the Hugging Face Hub, with a model card), ``unlearn augment`` (prompt
suites), ``unlearn evaluate`` (resumable generation + evaluation of a prompt suite with several methods),
``unlearn attack`` (concept-recovery attacks against every row: ``--config configs/attack_toy.yaml``),
``unlearn toyworld`` (the toy world's pretraining and evaluation).

Config files compose (``configs/README.md``): ``config: <file>`` inside a config includes another (a path
relative to the including file), dotted keys override it, and ``${a.b}`` interpolations are resolved once on
the final config (parser mode ``omegaconf+``), so they follow keys set in any file or on the command line.

Errors: every subcommand ends a failure with one line on stderr, ``error: <what is wrong, which key or file,
the fix>``, and a non-zero exit status: 2 when the input was refused before the run started (a config key,
a value out of its domain, a missing or malformed file), 1 when the run itself failed (a diverging loss, a
crash), 143 after SIGTERM and 130 after SIGINT (Ctrl-C) (:mod:`unlearn.signals`). The full traceback is printed
only with ``--debug`` (anywhere on the command line) or the environment variable ``UNLEARN_DEBUG=1``.

``unlearn fit`` also keeps ``run_status.json`` in the run's output folders (``unlearn.callbacks.RunStatus``):
"running", then "finished", "failed" or "interrupted"; ``unlearn evaluate``, ``unlearn export`` and
``unlearn push`` refuse the files of a run that did not finish (``--allow-unfinished`` overrides).
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

#: environment variable that turns on full tracebacks (same as ``--debug``)
DEBUG_ENV = "UNLEARN_DEBUG"
#: exit status when the input is refused before the run starts
EXIT_INPUT = 2
#: exit status when the run fails
EXIT_FAILED = 1

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


class ConfigError(ValueError):
    """The command line or config was refused while it was parsed or its classes were built."""


# ------------------------------------------------------------------------------------------- error messages
def _raised_in_jsonargparse(exc: BaseException) -> bool:
    tb = traceback.extract_tb(exc.__traceback__)
    return bool(tb) and f"{os.sep}jsonargparse{os.sep}" in tb[-1].filename


def underlying_error(exc: BaseException) -> BaseException:
    """The error a user's input caused, out of jsonargparse's wrapping: jsonargparse re-raises an error of a
    constructor as "Does not validate against any of the Union subtypes" ``from`` the original, so the first
    exception of the ``__cause__`` chain that was not raised inside jsonargparse is the constructor's own."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if not isinstance(cur, ConfigError) and not _raised_in_jsonargparse(cur):
            return cur
        cur = cur.__cause__
    return exc


_NOISE = (
    re.compile(r"^Does not validate against any of the Union subtypes$"),
    re.compile(r"^Subtypes: "),
    re.compile(r"^Errors:$"),
    re.compile(r"^Given value type: "),
    re.compile(r"^Given value: "),
    re.compile(r"^- Expected a <class 'NoneType'>$"),
    re.compile(r"^- Expected a <class 'dict'>"),
    re.compile(r"^(- )?Expected a path but \S+ either not accessible or invalid$"),
)


def _humane_types(text: str) -> str:
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
    return re.sub(r"Expected a <class '(\w+)'>", lambda m: f"expected {names.get(m[1], m[1])}", text)


def clean_parse_message(message: str) -> str:
    """One line from a jsonargparse parse error: the key path (``--model.init_args.adapter_dim``), the class,
    and the innermost complaint, without the Union boilerplate."""
    keys: list[str] = []
    cls = None
    rest: list[str] = []
    for raw in message.splitlines():
        line = raw.strip()
        if not line or any(p.search(line) or p.search(line[2:]) for p in _NOISE):
            continue
        line = line[2:] if line.startswith("- ") else line
        m = re.match(r'^Parser key "([^"]+)":\s*(.*)$', line)
        if m:
            keys.append(m[1])
            if m[2]:
                rest.append(m[2])
            continue
        m = re.match(r"^Problem with given class_path '([^']+)':\s*(.*)$", line)
        if m:
            cls = m[1]
            keys.append("init_args")
            if m[2]:
                rest.append(m[2])
            continue
        rest.append(line)
    text = _humane_types(" ".join(rest)) or message.strip()
    m = re.search(r"Option '([^']+)' is not accepted", text)
    if m and cls:
        hint = _close_parameter(cls, m[1])
        if hint:
            text += f". Did you mean {hint!r}?"
        elif cls.rsplit(".", 1)[-1] in ("LightningModule", "LightningDataModule"):  # no class_path left (#27)
            key = "model" if cls.endswith("LightningModule") else "data"
            text += (
                f". No {key} class_path is set: a nested `{key}:` block in a config replaces the included one "
                f"whole, class_path included. Fix: write the override as a dotted key, e.g. "
                f"`{key}.init_args.{m[1]}: ...`"
            )
    while keys and keys[-1] == "init_args":
        keys.pop()
    where = ("--" + ".".join(keys)) if keys else ""
    if cls:
        where += f" ({cls.rsplit('.', 1)[-1]})"
    return f"{where}: {text}" if where else text


def _close_parameter(class_path: str, name: str) -> str | None:
    import difflib
    import importlib
    import inspect

    module, _, attr = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    except Exception:  # noqa: BLE001 - a hint only
        return None
    close = difflib.get_close_matches(name, params, n=1)
    return close[0] if close else None


def explain(exc: BaseException) -> str:
    """The one line shown for ``exc``: the underlying error's own message, on one line."""
    if isinstance(exc, ConfigError):  # already explained where it was raised
        return " ".join(str(exc).split())
    inner = underlying_error(exc)
    if _raised_in_jsonargparse(inner):
        text = clean_parse_message(str(inner))
    else:
        text = str(inner)
        if isinstance(inner, KeyError) and len(inner.args) == 1 and type(inner) is KeyError:
            arg = inner.args[0]
            text = arg if isinstance(arg, str) and " " in arg.strip() else f"missing key {arg!r}"
        if not text.strip():
            text = type(inner).__name__
        if not _names_itself(inner):
            text = f"{type(inner).__name__}: {text}"
        owner = _constructor_of(exc)
        if owner and owner not in text:
            text = f"{owner}: {text}"
    return " ".join(text.split())


def _names_itself(exc: BaseException) -> bool:
    # the project's own errors and the plain input errors speak for themselves; a foreign library's
    # exception keeps its type name (it is often the only hint, e.g. "SafetensorError")
    module = type(exc).__module__
    return module.split(".")[0] == "unlearn" or type(exc) in (
        ValueError,
        FileNotFoundError,
        TypeError,
        KeyError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        RuntimeError,
        FloatingPointError,
    )


def _constructor_of(exc: BaseException) -> str | None:
    """The class whose constructor failed, from jsonargparse's wrapper message (``class_path='a.b.C'``)."""
    m = re.search(r"class_path='([\w.]+)'", str(exc))
    return m[1].rsplit(".", 1)[-1] if m else None


# ------------------------------------------------------------------------------------------- LightningCLI
def _lightning_cli(args: list[str] | None) -> None:
    import warnings

    import lightning.pytorch as pl
    import yaml
    from jsonargparse import ArgumentError, set_dumper, set_loader
    from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

    from unlearn.callbacks.checkpoint import install_safe_checkpoint_io
    from unlearn.callbacks.progress import default_callbacks
    from unlearn.callbacks.status import RunStatus
    from unlearn.io import refuse_remote_checkpoint
    from unlearn.resume import RunRecord

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
        """LightningCLI that reads checkpoints without unpickling, whose input errors are :class:`ConfigError` (one
        line) and whose fit keeps a run status."""

        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            # nothing is ever unpickled: no `--weights_only false` switch
            return {k: v | {"weights_only"} for k, v in LightningCLI.subcommands().items()}

        def _parse_ckpt_path(self) -> None:
            # LightningCLI copies the checkpoint's hyper-parameters over the config here (a checkpoint could
            # name weights to download or a class to import): a checkpoint restores state, never configuration
            # (unlearn.resume); only a URL is refused this early
            subcommand = self.config.get("subcommand")
            ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
            if ckpt_path:
                refuse_remote_checkpoint(ckpt_path)

        def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001
            parser.add_argument(
                "--allow_config_mismatch",
                type=bool,
                default=False,
                help="resume from a checkpoint whose backbone, weights, concept or adapter shape differ from this "
                "config (its state is loaded into this config)",
            )

        def instantiate_trainer(self, **kwargs):
            trainer = super().instantiate_trainer(**kwargs)
            install_safe_checkpoint_io(trainer)
            return trainer

        def parse_arguments(self, parser, args):  # noqa: ANN001
            try:
                super().parse_arguments(parser, args)
            except ArgumentError as e:
                text = clean_parse_message(str(e))
                if "Problems parsing config" in text:  # a YAML error: name the file(s) it came from
                    given = list(sys.argv[1:] if args is None else args)
                    configs = [given[i + 1] for i, a in enumerate(given[:-1]) if a == "--config"]
                    configs += [a.split("=", 1)[1] for a in given if a.startswith("--config=")]
                    text = text.replace('"<unicode string>"', " / ".join(configs) or "the config")
                raise ConfigError(text) from e

        def instantiate_classes(self) -> None:
            try:
                super().instantiate_classes()
            except Exception as e:  # noqa: BLE001 - any constructor's error is an input error
                raise ConfigError(explain(e)) from e

        def resolved_config(self) -> dict:
            full = yaml.safe_load(self.parser.dump(self.config, skip_none=False, skip_check=True))
            return full.get(self.subcommand, full) if self.subcommand else full

        def _instantiate_trainer(self, config, callbacks):  # noqa: ANN001
            self.run_status = RunStatus()
            resolved = self.resolved_config()
            record = RunRecord(data_config=resolved.get("data"), config=resolved)
            configured = config.get("callbacks") or []
            configured = list(configured) if isinstance(configured, list) else [configured]
            # telemetry (lr, step time, throughput, GPU memory) and plain progress lines in log files
            added = default_callbacks([*configured, *callbacks], config.get("enable_progress_bar"))
            return super()._instantiate_trainer(config, [*callbacks, self.run_status, record, *added])

        def before_fit(self) -> None:
            from unlearn.run_folder import prepare_fit

            # the checkpoint checked and the run folder claimed (unlearn.resume / unlearn.run_folder), then the
            # status written first: before the data module's setup, the config copy or any pseudo data
            prepare_fit(self.trainer, self.model, self.config_init["fit"], self.resolved_config())
            self.run_status.start(self.trainer, self.model)

    from unlearn.run_folder import release_all

    try:
        UnlearnCLI(
            pl.LightningModule,
            pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_kwargs={"parser_mode": "omegaconf+", "default_env": False, "exit_on_error": False},
            save_config_callback=LoggedConfig,
            save_config_kwargs={"overwrite": True},
            args=args,
            seed_everything_default=0,
        )
    finally:
        release_all()


def _dispatch(args: list[str], from_sys_argv: bool) -> int:
    if args and args[0] == "export":
        from unlearn.methods.t2vunlearning.export import export_main

        return int(export_main(args[1:]) or 0)
    if args and args[0] == "push":
        from unlearn.hub import push_main

        return int(push_main(args[1:]) or 0)
    if args and args[0] == "augment":
        from unlearn.prompts.augment.cli import augment_main

        return int(augment_main(args[1:]) or 0)
    if args and args[0] == "evaluate":
        from unlearn.evaluation.runner import main as evaluate_main

        return int(evaluate_main(args[1:]) or 0)
    if args and args[0] == "attack":
        from unlearn.attacks import attack_main

        return attack_main(resolve_config_args(args[1:]))
    if args and args[0] == "toyworld":
        from unlearn.toyworld.cli import toyworld_main

        return int(toyworld_main(args[1:]) or 0)
    if args and args[0] in LIGHTNING_SUBCOMMANDS:
        try:
            args = [args[0], *resolve_config_args(args[1:])]
        except FileNotFoundError as e:
            raise ConfigError(f"--config: {e}") from e
        from unlearn.config_files import check_config_files

        check_config_files(args[1:])  # each file and include: regular UTF-8 YAML of keys (one line naming it)
    if from_sys_argv:
        # LightningCLI reads sys.argv itself (and DDP re-runs this command line in each new process): the
        # resolved config paths, without --debug (UNLEARN_DEBUG carries it to those processes)
        sys.argv = [sys.argv[0], *args]
        _lightning_cli(None)
    else:
        _lightning_cli(args)
    return 0


def _is_input_error(exc: BaseException) -> bool:
    """Errors that mean "this input is refused" (exit 2): a config or value, a file or folder the user named
    that is missing, damaged or not allowed; anything else is a failed run (exit 1)."""
    from unlearn.backbones import UnknownBackboneError
    from unlearn.checks import InputError
    from unlearn.io import UnfinishedRunError, UnsafeCheckpointError

    return isinstance(
        exc,
        (
            ConfigError,
            InputError,
            UnfinishedRunError,
            UnsafeCheckpointError,
            UnknownBackboneError,
            FileNotFoundError,
            NotADirectoryError,
            IsADirectoryError,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``unlearn`` command; returns the exit status (0, 1 = the run failed, 2 = input refused)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    args = [a for a in args if a != "--debug"]
    if debug:
        os.environ[DEBUG_ENV] = "1"  # processes that DDP starts from this command line print tracebacks too
    # wandb keeps its own default (online) where it has credentials; without any it would stop at a login
    # prompt: offline then, said in one line (unlearn/tracking.py)
    from unlearn.tracking import offline_without_credentials

    note = offline_without_credentials()
    if note and args and args[0] in (*LIGHTNING_SUBCOMMANDS, "evaluate", "attack"):
        print(note, file=sys.stderr)
    from unlearn import signals
    from unlearn.safe_text import one_line

    previous = signals.install()  # SIGTERM / SIGINT: exit 143 / 130 with one line (unlearn.signals)
    try:
        return _dispatch(args, argv is None)
    except KeyboardInterrupt:
        print(signals.message(signals.received()), file=sys.stderr)
        return signals.exit_status(signals.received())
    except SystemExit as exc:
        if signals.received() is None:  # argparse's usage errors, --help
            raise
        # Lightning's shutdown after an interrupt ends in sys.exit(1) (SIGTERM: a SystemExit without a code)
        del exc
        print(signals.message(signals.received()), file=sys.stderr)
        return signals.exit_status(signals.received())
    except Exception as exc:  # noqa: BLE001 - the one place every failure is turned into one line
        if debug:
            traceback.print_exc()
        else:
            print(f"(full traceback: add --debug or set {DEBUG_ENV}=1)", file=sys.stderr)
        print(f"error: {one_line(explain(exc))}", file=sys.stderr)  # file text shown, never run by a terminal
        return EXIT_INPUT if _is_input_error(exc) else EXIT_FAILED
    finally:
        signals.restore(previous)


#: subcommands of ``unlearn`` that are not LightningCLI's (``lightning`` refuses them, naming ``unlearn``)
UNLEARN_ONLY = ("export", "push", "augment", "evaluate", "attack", "toyworld")


def lightning_main(argv: list[str] | None = None) -> int:
    """The ``lightning`` command t2v-unlearn installs: ``lightning fit|validate|test|predict --config X.yaml`` is
    ``unlearn fit|...`` (the same LightningCLI, config resolution, run status and errors).

    Lightning itself installs no ``lightning`` script since 2.4 (only ``fabric``); the Lightning Apps package of
    lightning < 2.4 did, for ``lightning run app``: whichever package was installed last owns the command, and
    ``unlearn fit`` always reaches this one. The other ``unlearn`` subcommands are refused with that hint.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args if a != "--debug"), None)
    if first in UNLEARN_ONLY or (
        first is not None and not first.startswith("-") and first not in LIGHTNING_SUBCOMMANDS
    ):
        print(
            f"error: `lightning {first}` is not a LightningCLI subcommand ({', '.join(LIGHTNING_SUBCOMMANDS)}). "
            + (f"Fix: run `unlearn {first}`" if first in UNLEARN_ONLY else "Fix: e.g. `lightning fit --config X.yaml`"),
            file=sys.stderr,
        )
        return EXIT_INPUT
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
