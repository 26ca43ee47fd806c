"""Evaluation and attack results to Lightning loggers (``logger=`` of :class:`~unlearn.evaluation.EvaluationRunner`
and :class:`~unlearn.attacks.AttackRun`; what ``unlearn evaluate`` / ``unlearn attack`` log when asked): every
number with its 95% interval as ``<prefix>/<row>/<metric>`` + ``/low`` + ``/high``, the provenance as
hyper-parameters, and on wandb one table per result file with the interval columns."""

from __future__ import annotations

from typing import Any


def scored_numbers(node: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], float, dict]]:
    """Every number of an evaluation row that carries a 95% interval (``row["intervals"][key]`` with ``low`` and
    ``high``), at any depth: ``(key path, value, interval record)``."""
    out = []
    for key, rec in (node.get("intervals") or {}).items():
        value = node.get(key)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and isinstance(rec, dict)
            and rec.get("low") is not None
            and rec.get("high") is not None
        ):
            out.append(((*path, key), float(value), rec))
    for key, value in node.items():
        if key not in ("intervals", "esr_by_video", "outcome_intervals", "splits") and isinstance(value, dict):
            out += scored_numbers(value, (*path, str(key)))
    return out


def _is_wandb(logger: Any) -> bool:
    return type(logger).__name__ == "WandbLogger"


def log_evaluation(logger: Any, results: dict[str, Any], prefix: str = "eval") -> dict[str, float]:
    """Log ``results`` (``metrics.json`` of the runner, the test loop's rows as computed) to ``logger``; returns the
    numbers logged."""
    flat: dict[str, float] = {}
    table = []
    for row, r in results.get("rows", {}).items():
        for path, value, rec in scored_numbers(r):
            key = f"{prefix}/{row}/" + "/".join(path)
            flat[key], flat[f"{key}/low"], flat[f"{key}/high"] = value, float(rec["low"]), float(rec["high"])
            table.append(
                [row, "/".join(path), value, float(rec["low"]), float(rec["high"]), rec.get("n"), rec.get("method")]
            )
    suite = results.get("suite") or {}
    logger.log_hyperparams(
        {
            "evaluation": {
                "concept": results.get("concept"),
                "backbone": results.get("backbone"),
                "suite": {k: suite.get(k) for k in ("name", "num_prompts", "sha256")},
                "sampling": results.get("sampling"),
            }
        }
    )
    logger.log_metrics(flat, step=0)
    if _is_wandb(logger):
        logger.log_table(
            key=f"{prefix}/table",
            columns=["row", "metric", "value", "95% low", "95% high", "n", "interval"],
            data=table,
        )
    logger.save()
    return flat


def log_attacks(logger: Any, doc: dict[str, Any], prefix: str = "attack") -> dict[str, float]:
    """Log an attack run's ``results.json`` (ASR per row and attack with its Wilson interval)."""
    flat: dict[str, float] = {}
    table = []
    for row, by_attack in doc.get("results", {}).items():
        for attack, r in by_attack.items():
            lo, hi = r["asr_ci95"]
            key = f"{prefix}/{row}/{attack}/asr"
            flat[key], flat[f"{key}/low"], flat[f"{key}/high"] = float(r["asr"]), float(lo), float(hi)
            table.append([row, attack, float(r["asr"]), float(lo), float(hi), r["successes"], r["n"]])
    logger.log_hyperparams(
        {"attack": {"concept": doc.get("concept"), "backbone": doc.get("backbone"), "attacks": doc.get("attacks")}}
    )
    logger.log_metrics(flat, step=0)
    if _is_wandb(logger):
        logger.log_table(
            key=f"{prefix}/table",
            columns=["row", "attack", "ASR %", "95% low", "95% high", "recovered", "targets"],
            data=table,
        )
    logger.save()
    return flat
