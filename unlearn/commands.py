"""Every ``unlearn`` subcommand that is not a Lightning run, parsed from its function's or class's signature.

One dialect for the whole command (the one LightningCLI speaks for ``fit``/``validate``/``test``/``predict``):
jsonargparse builds each parser from the signature and docstring of the code it runs, so a parameter added to
``EvaluationRunner``, ``AttackRun`` or ``export_adapters`` is a flag of its command without another line here.
Every command takes ``--config FILE`` (YAML of the same keys), ``--print_config`` and ``--help``.

Earlier spellings keep working (:func:`legacy_argv`): ``--allow-unfinished`` is ``--allow_unfinished``, a bare
``--tiny`` is ``--tiny true``, ``--no-plots`` is ``--plots false``, ``--methods a b c`` is a list, a
positional ``ADAPTERS`` is ``--adapters ADAPTERS``, and each command's renamed flags (``--out`` →
``--out_dir``) are listed in its :class:`Command`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Command:
    """One ``unlearn`` subcommand.

    Args:
        name: the subcommand (``unlearn <name>``).
        target: ``"module:attr"``: a function (called with the parsed arguments) or a class (built with them,
            then its ``run()`` is called). Its signature is the parser.
        help: the one line ``unlearn --help`` shows.
        merged: ``{parameter: "module:attr"}``: another callable's keyword parameters offered as top-level flags
            and handed to ``target`` as one dict ``parameter`` (``EvaluationRunner``'s ``suite_options`` are
            :func:`~unlearn.evaluation.load_suite`'s). Parameters that ``target`` forwards through ``**kwargs``
            are flags by themselves (jsonargparse follows them: ``EvaluationRunner`` → ``MetricConfig``).
        skip: parameters of ``target`` or a merged callable that are not flags (Python-only objects).
        positional: parameters that may also be given positionally, in this order (``unlearn push DIR``).
        renames: earlier flag spellings → the signature's (``--out`` → ``--out_dir``).
        defaults: the command line's own defaults where they differ from the signature's (``progress``).
        done: called with ``target``'s result and the parsed arguments; returns the exit status (default: 0).
    """

    name: str
    target: str
    help: str
    merged: Mapping[str, str] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()
    positional: tuple[str, ...] = ()
    renames: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    done: Callable[[Any, dict[str, Any]], int] | None = None


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _evaluate_done(results: Any, kwargs: dict[str, Any]) -> int:
    from pathlib import Path

    out = Path(kwargs["out_dir"])
    if "shard" in results:
        i, n = results["shard"]
        made = sum(r["generated"] for r in results["rows"].values())
        print(
            f"shard {i}/{n}: {made} videos generated into {out}; score them all with the same command without --shard"
        )
        return 0
    print((out / "metrics.md").read_text())
    print(f"wrote {out / 'metrics.json'} ({len(results['rows'])} rows)")
    return 0


def _export_done(out: Any, kwargs: dict[str, Any]) -> int:
    from unlearn.methods.t2vunlearning.export import CONFIG_NAME, WEIGHTS_NAME

    official = kwargs.get("format") == "t2vunlearning"
    names = ("eraser_weights.pt", "eraser_config.json") if official else (WEIGHTS_NAME, CONFIG_NAME)
    print(f"wrote {out}/{names[0]} and {names[1]}")
    return 0


def _attack_done(doc: Any, kwargs: dict[str, Any]) -> int:
    from pathlib import Path

    print((Path(kwargs.get("output_dir") or "runs/attack") / "results.md").read_text())
    return 0 if doc else 1


#: the subcommands besides LightningCLI's, in the order ``unlearn --help`` lists them
COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "export",
            "unlearn.methods.t2vunlearning.export:export_adapters",
            "a `unlearn fit` checkpoint -> adapters folder (safetensors + JSON, or the authors' format)",
            done=_export_done,
        ),
        Command(
            "push",
            "unlearn.hub:push_command",
            "an adapters folder + model card -> the Hugging Face Hub",
            positional=("adapters",),
        ),
        Command(
            "augment",
            "unlearn.prompts.augment.cli:augment",
            "write a prompt suite that places a concept in rich context",
        ),
        Command(
            "evaluate",
            "unlearn.evaluation.runner:EvaluationRunner",
            "generate a prompt suite with several rows (resumably), score it, write the tables",
            merged={"suite_options": "unlearn.evaluation.suites:load_suite"},
            skip=frozenset(
                {"suite", "concept", "name", "format", "categories", "metrics", "device", "clip", "detector"}
            ),
            renames={
                "--out": "--out_dir",
                "--dtype": "--torch_dtype",
                "--steps": "--num_inference_steps",
                "--guidance": "--guidance_scale",
                "--methods": "--rows",
            },
            defaults={"progress": True, "rows": ["original", "negprompt", "safree", "t2vunlearning"]},
            done=_evaluate_done,
        ),
        Command(
            "attack",
            "unlearn.attacks.run:AttackRun",
            "concept-recovery attacks against every row: one ASR table",
            done=_attack_done,
        ),
        # the toy world's own commands: `unlearn toyworld <name>`
        Command(
            "toyworld pretrain",
            "unlearn.toyworld.pretrain:pretrain",
            "train the toy text encoder + denoiser (+ classifier) and ship the weights",
        ),
        Command(
            "toyworld evaluate",
            "unlearn.toyworld.evaluate_pretrained:evaluate_pretrained",
            "generate held-out prompts and classify every frame",
            positional=("weights",),
        ),
        Command(
            "toyworld classifier",
            "unlearn.toyworld.classifier:train_classifier_command",
            "train the shape x colour frame classifier alone",
        ),
    )
}
#: command groups: `unlearn <group> <name> ...` (one level)
GROUPS = sorted({name.split()[0] for name in COMMANDS if " " in name})
# `skip` names a merged callable's parameters that the target already has or that are Python-only; the target's
# own parameters of those names stay flags (evaluate's --concept, --metrics, --device are EvaluationRunner's)


def _parameters(obj: Any) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    return {n: p for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _kind(hint: Any) -> str:
    """``"bool"``, ``"list"`` or ``""`` for a parameter's type hint (``X | None`` looks at ``X``)."""
    args = (
        [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint)
        in (
            typing.Union,
            getattr(__import__("types"), "UnionType", typing.Union),
        )
        else [hint]
    )
    if args == [bool]:
        return "bool"
    for a in args:
        origin = typing.get_origin(a) or a
        if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
            return "dict"
    for a in args:
        origin = typing.get_origin(a) or a
        if origin in (list, tuple, Sequence, typing.Sequence) or (
            isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
        ):
            return "list"
    return ""


@dataclass
class _Spec:
    command: Command
    target: Any
    own: dict[str, inspect.Parameter]
    merged: dict[str, dict[str, inspect.Parameter]]


def _spec(command: Command) -> _Spec:
    target = _load(command.target)
    own = {n: p for n, p in _parameters(target).items() if n not in command.merged}
    merged: dict[str, dict[str, inspect.Parameter]] = {}
    for key, path in command.merged.items():
        other = _load(path)
        params = {
            n: p
            for n, p in _parameters(other).items()
            if n not in command.skip and n not in own and p.default is not inspect.Parameter.empty
        }
        merged[key] = params
    return _Spec(command, target, own, merged)


def build_parser(command: Command | str):
    """The jsonargparse parser of ``command`` (a :class:`Command` or its name)."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    command = COMMANDS[command] if isinstance(command, str) else command
    spec = _spec(command)
    doc = inspect.getdoc(spec.target) or command.help
    parser = ArgumentParser(
        prog=f"unlearn {command.name}",
        description=doc.split("\n\n")[0],
        parser_mode="omegaconf",
        default_env=False,
        exit_on_error=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of the same keys")
    add = parser.add_class_arguments if inspect.isclass(spec.target) else parser.add_function_arguments
    skip = set(command.merged) | {n for n in command.skip if n not in spec.own}
    add(spec.target, nested_key=None, as_group=False, skip=skip or None)
    for key, params in spec.merged.items():
        other = _load(command.merged[key])
        drop = set(_parameters(other)) - set(params)
        add_other = parser.add_class_arguments if inspect.isclass(other) else parser.add_function_arguments
        add_other(other, nested_key=None, as_group=False, skip=drop or None)
    if command.defaults:
        parser.set_defaults(**command.defaults)
    return parser


def flag_kinds(parser: Any) -> dict[str, str]:
    """``{key: "bool" | "list" | ""}`` for every typed flag of a jsonargparse parser (including the ones it
    found through ``**kwargs``)."""
    kinds = {}
    for action in parser._actions:
        hint = getattr(action, "_typehint", None)  # jsonargparse's ActionTypeHint keeps the parameter's type
        if hint is not None and action.dest:
            kinds[action.dest] = _kind(hint)
    return kinds


def legacy_argv(command: Command, argv: Sequence[str], kinds: Mapping[str, str] | None = None) -> list[str]:
    """``argv`` in the signature's spelling: renamed flags, ``-`` → ``_`` in flag names, bare boolean flags,
    ``--no-X`` for a boolean ``X``, space-separated lists (a repeated list flag appends) and positional
    parameters (module docstring)."""
    kinds = flag_kinds(build_parser(command)) if kinds is None else kinds
    seen: set[str] = set()
    out: list[str] = []
    args = list(argv)
    positional = list(command.positional)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") and positional and out[-1:] != ["--config"]:
            out += [f"--{positional.pop(0)}", arg]
            i += 1
            continue
        if not arg.startswith("--") or arg in ("--help", "--print_config"):
            out.append(arg)
            i += 1
            continue
        flag, eq, value = arg.partition("=")
        flag = command.renames.get(flag, flag)
        name = flag[2:].rstrip("+").replace("-", "_")
        if name.startswith("no_") and kinds.get(name[3:]) == "bool" and not eq:
            out += [f"--{name[3:]}", "false"]
            i += 1
            continue
        flag = "--" + name + ("+" if flag.endswith("+") else "")
        if eq:
            out.append(f"{flag}={value}")
            i += 1
            continue
        i += 1
        values = []
        while i < len(args) and not args[i].startswith("--"):
            values.append(args[i])
            i += 1
        kind = kinds.get(name)
        if kind == "bool" and not values:
            values = ["true"]
        elif kind == "list" and not flag.endswith("+") and (len(values) > 1 or (values and values[0][:1] != "[")):
            if name in seen and len(values) == 1:  # --exclude a --exclude b: one list of both
                flag += "+"
            else:
                values = [json.dumps(values)]
        seen.add(name)
        out += [flag, *values]
    return out


def _check_json_objects(command: Command, argv: Sequence[str], kinds: Mapping[str, str]) -> None:
    """One clear error, naming the flag as it was written, for a JSON object flag whose value is not JSON."""
    from unlearn.cli import ConfigError

    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if not flag.startswith("--"):
            continue
        name = command.renames.get(flag, flag)[2:].replace("-", "_")
        if kinds.get(name) != "dict":
            continue
        value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        if not value.lstrip().startswith("{"):
            continue
        try:
            json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"{flag}: {value!r} is not valid JSON ({e.msg} at column {e.colno}). Fix: one quoted JSON object, "
                f"e.g. {flag} '{{\"key\": 1}}'"
            ) from None


def run(name: str, argv: Sequence[str]) -> int:
    """Parse ``argv`` for the subcommand ``name`` and run it; returns the exit status. A refused command line
    raises :class:`unlearn.cli.ConfigError` (one line)."""
    from jsonargparse import ArgumentError

    from unlearn.cli import ConfigError, clean_parse_message, resolve_config_args

    command = COMMANDS[name]
    spec = _spec(command)
    parser = build_parser(command)
    _check_json_objects(command, argv, flag_kinds(parser))
    try:
        cfg = parser.parse_args(resolve_config_args(legacy_argv(command, argv, flag_kinds(parser))))
    except ArgumentError as e:
        raise ConfigError(clean_parse_message(str(e))) from e
    except SystemExit as e:  # --help, --print_config: printed
        return int(e.code or 0)
    values = parser.instantiate_classes(cfg).as_dict()
    values.pop("config", None)
    kwargs = {n: values.pop(n) for n in list(values) if n in spec.own}
    for key, params in spec.merged.items():
        chosen = {n: values.pop(n) for n in list(values) if n in params}
        # only what differs from the merged callable's own default, so that its defaults stay the source
        chosen = {n: v for n, v in chosen.items() if v != params[n].default}
        kwargs[key] = chosen
    # what is left came through the target's **kwargs (jsonargparse follows them to the callable they are
    # passed to: EvaluationRunner's **metric_options are MetricConfig's fields): only the values that were set
    defaults = parser.get_defaults().as_dict()
    kwargs.update({n: v for n, v in values.items() if v != defaults.get(n)})
    result = spec.target(**kwargs)
    if inspect.isclass(spec.target):
        result = result.run()
    return command.done(result, kwargs) if command.done else int(result or 0)


def group_command(group: str, args: Sequence[str]) -> tuple[str, list[str]] | str:
    """``(command name, its argv)`` for ``unlearn <group> <name> ...``, or the text to show: the group's commands
    (for ``--help``), or raises :class:`unlearn.cli.ConfigError` naming the unknown or missing command."""
    import difflib

    from unlearn.cli import ConfigError

    names = {n.split(" ", 1)[1]: c for n, c in COMMANDS.items() if n.startswith(group + " ")}
    listing = "\n".join(
        [f"usage: unlearn {group} {{{','.join(names)}}} [options]   (--help after a command)"]
        + [f"  {n:<11} {c.help}" for n, c in names.items()]
    )
    if args and args[0] in names:
        return f"{group} {args[0]}", list(args[1:])
    if args and args[0] in ("-h", "--help"):
        return listing
    close = difflib.get_close_matches(args[0], names, n=1) if args else []
    hint = f" Did you mean {close[0]!r}?" if close else ""
    what = f"unknown command {args[0]!r}.{hint}" if args else "a command is needed."
    raise ConfigError(f"unlearn {group}: {what} Use one of: {', '.join(names)}")


def usage(lightning: Sequence[str]) -> str:
    """``unlearn --help``: every subcommand, one line each."""
    lines = [
        "usage: unlearn <command> [--config FILE] [--key value ...] [--print_config] [--help] [--debug]",
        "",
        "commands:",
    ]
    lightning_help = {
        "fit": "train (LightningCLI): unlearn fit --config configs/toy_shapes.yaml",
        "validate": "validate a model (LightningCLI)",
        "test": "test a model, e.g. the evaluation module (LightningCLI)",
        "predict": "predict with a model (LightningCLI)",
    }
    rows = [(n, lightning_help[n]) for n in lightning]
    rows += [(c.name, c.help) for c in COMMANDS.values() if " " not in c.name]
    for group in GROUPS:
        subs = [n.split(" ", 1)[1] for n in COMMANDS if n.startswith(group + " ")]
        rows.append((group, f"its own commands: {' | '.join(subs)} (unlearn {group} --help)"))
    lines += [f"  {n:<10} {h}" for n, h in rows]
    lines += ["", "`unlearn <command> --help` lists a command's keys; --debug prints full tracebacks."]
    return "\n".join(lines)
