"""95% intervals: Wilson against published values, the bootstrap's invariances, the paired class difference,
and the intervals the metrics carry (ESR/PSR with outcomes such as "nothing drawn")."""

import math

import numpy as np
import pytest
import torch

from unlearn.evaluation.intervals import bootstrap_ratio_interval, paired_class_delta, wilson_interval
from unlearn.evaluation.metrics import ErasureSuccessRate, PreservationSuccessRate, topk_hits
from unlearn.evaluation.scoring import classification_details, classification_summary, compare_rows


def test_wilson_matches_published_values():
    # Wilson (1927) / Newcombe (1998) table values at 95%
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(15, 16) == pytest.approx((0.7167, 0.9889), abs=1e-4)
    lo, hi = wilson_interval(128, 128)
    assert hi == 1.0 and 0.97 < lo < 0.972  # 128 frames all erased: the interval still admits 2.9% recovery
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_bootstrap_is_order_free_weighs_strata_equally_and_is_degenerate_where_it_should_be():
    rng = np.random.default_rng(0)
    num = rng.integers(0, 5, 40).astype(float)
    den = np.full(40, 4.0)
    strata = np.repeat(np.arange(4), 10)
    a = bootstrap_ratio_interval(num, den, strata)
    perm = rng.permutation(40)
    assert bootstrap_ratio_interval(num[perm], den[perm], strata[perm]) == a  # same on any rank order
    point = np.mean([num[strata == s].sum() / den[strata == s].sum() for s in range(4)])
    assert a[0] < point < a[1]
    assert bootstrap_ratio_interval(np.full(10, 4.0), np.full(10, 4.0)) == (1.0, 1.0)  # no variation, no width
    assert all(math.isnan(x) for x in bootstrap_ratio_interval([], []))
    # strata are weighted equally, as PSR weighs classes: two strata of 10 videos each, all hits in one, none in
    # the other, give 0.5 in every replicate where both appear
    assert bootstrap_ratio_interval([4.0] * 10 + [0.0] * 10, [4.0] * 20, [0] * 10 + [1] * 10) == (0.5, 0.5)
    # a stratum of one video is not "known exactly": it may be missing from a replicate (then left out)
    lo, hi = bootstrap_ratio_interval([4.0] + [0.0] * 30, [4.0] * 31, [0] + [1] * 30)
    assert lo == 0.0 and hi == 0.5
    # a video with no denominator (a video without a face) counts for nothing
    assert bootstrap_ratio_interval([1.0, 0.0], [2.0, 0.0]) == (0.5, 0.5)


def test_paired_class_delta_is_the_ablation_difference_with_a_t_interval():
    ref = {"per_class_top1": {"red ring": 100.0, **{f"c{i}": 80.0 for i in range(10)}}}
    row = {"per_class_top1": {"red ring": 0.0, **{f"c{i}": 70.0 + (i % 2) for i in range(10)}}}
    d = paired_class_delta([row], [ref], "red ring")
    diffs = [-10 + (i % 2) for i in range(10)]
    se = np.std(diffs, ddof=1) / math.sqrt(10)
    assert d["delta"] == pytest.approx(-9.5) and d["se"] == pytest.approx(se) and d["n"] == 10
    assert d["high"] - d["delta"] == pytest.approx(2.2622 * se, rel=1e-4)  # t(0.975, 9)
    # several concepts erased together: each is left out (c0 and c1 differ by -10 and -9: the mean stays -9.5)
    several = paired_class_delta([row], [ref], ["red ring", "c0", "c1"])
    assert several["n"] == 8 and several["delta"] == pytest.approx(-9.5)
    assert paired_class_delta([row], [ref], None)["n"] == 11  # nothing left out: red ring's -100 counts


class OutcomeLogits:
    """Logits are the red channel of the first row; columns 4 and 5 are the outcomes "nothing" and "smudge"."""

    class_names = ("apple", "bird", "car", "dog")
    outcome_names = ("nothing", "smudge")

    def logits(self, frames):
        return frames[:, 0, :6, 0].clone()


def video(rows):
    v = torch.zeros(len(rows), 4, 8, 3)
    v[:, 0, :6, 0] = torch.tensor(rows, dtype=torch.float32)
    return v


BLANK = [0.1, 0.0, 0.0, 0.0, 0.9, 0.0]  # classified "nothing", apple the best class


def test_an_outcome_frame_is_never_the_prompted_class():
    logits = torch.tensor([BLANK, [0.5, 0.0, 0.0, 0.0, 0.5, 0.0], [0.9, 0.0, 0.0, 0.0, 0.5, 0.0]])
    hits = topk_hits(logits, torch.tensor([0, 0, 0]), (1, 4), num_outcomes=2)
    assert hits.tolist() == [[False, False], [False, False], [True, True]]  # a tie with an outcome is a miss
    esr = ErasureSuccessRate("apple", classifier=OutcomeLogits(), top_k=(1, 5))
    psr = PreservationSuccessRate(erased_class="apple", classifier=OutcomeLogits(), top_k=(1, 5))
    for m in (esr, psr):
        m.update(video([BLANK] * 4), "apple")  # a blank video for the erased prompt
        m.update(video([BLANK, BLANK, [0.0, 0.9, 0, 0, 0, 0], [0.0, 0.9, 0, 0, 0, 0.95]]), "bird")
    assert esr.compute()["esr@5"].item() == 1.0  # erased, even at k = number of classes...
    assert psr.compute()["psr@5"].item() == 0.25  # ...and a blank or smudged bird is no bird
    row = classification_summary(esr, psr)
    assert row["outcomes"] == {"erased": {"nothing": 4, "smudge": 0}, "preserved": {"nothing": 2, "smudge": 1}}
    assert row["drawn_instead"] == {"nothing": 4}  # ...which the row shows instead of hiding it
    assert row["outcome_intervals"]["nothing"]["low"] == pytest.approx(100 * wilson_interval(4, 4)[0])


def test_rows_carry_sizes_intervals_and_paired_deltas():
    clf = OutcomeLogits()

    def scored(apple_hits: int, bird_hits: int) -> dict:
        esr = ErasureSuccessRate("apple", classifier=clf, top_k=(1, 5))
        psr = PreservationSuccessRate(erased_class="apple", classifier=clf, top_k=(1, 5))
        for i in range(8):  # 8 videos of 4 frames per class
            for m in (esr, psr):
                m.update(video([[0.9, 0, 0, 0, 0, 0]] * 4 if i < apple_hits else [BLANK] * 4), "apple")
                m.update(video([[0, 0.9, 0, 0, 0, 0]] * 4 if i < bird_hits else [[0.9, 0, 0, 0, 0, 0]] * 4), "bird")
                m.update(video([[0, 0, 0.9, 0, 0, 0]] * 4), "car")
        return classification_summary(esr, psr)

    rows = {"original": scored(8, 8), "erased": scored(1, 6)}
    r = rows["erased"]
    assert r["esr@1"] == pytest.approx(87.5) and r["erased_frames"] == 32 and r["erased_videos"] == 8
    assert r["intervals"]["esr@1"]["method"] == "wilson" and r["intervals"]["esr@1"]["n"] == 32
    assert r["intervals"]["esr@1"]["low"] == pytest.approx(100 * wilson_interval(28, 32)[0])
    # the bootstrap over prompts is wider than Wilson over frames: 4 frames of a video are not 4 trials
    by_video = r["esr_by_video"]["esr@1"]
    assert by_video["n"] == 8 and by_video["low"] < r["intervals"]["esr@1"]["low"]
    assert r["intervals"]["psr@1"]["n"] == 16 and r["intervals"]["psr@1"]["low"] < r["psr@1"] < 100
    assert r["intervals"]["psr@1"]["method"] == "bootstrap over videos, classes weighted equally"
    compare_rows(rows, "apple")
    vs = r["vs_reference"]
    assert vs["psr@1"]["delta"] == pytest.approx(-12.5) and vs["psr@1"]["n"] == 2
    assert vs["lost_most"][0] == {"class": "bird", "reference": 100.0, "value": 75.0, "delta": -25.0, "frames": 32}
    assert "vs_reference" not in rows["original"]


def test_details_are_order_free():
    clf = OutcomeLogits()
    vids = [
        (video([[0.9 * (i % 3 == 0), 0.9 * (i % 3 != 0), 0, 0, 0, 0]] * 4), ["apple", "bird"][i % 2]) for i in range(12)
    ]

    def run(order):
        esr = ErasureSuccessRate("apple", classifier=clf)
        psr = PreservationSuccessRate(erased_class="apple", classifier=clf)
        for i in order:
            esr.update(*vids[i])
            psr.update(*vids[i])
        return classification_details(esr, psr)

    assert run(range(12)) == run(reversed(range(12)))


class GroupingLogits(OutcomeLogits):
    @staticmethod
    def replacement_category(prompted: str, predicted: str) -> str:
        return "prompted class" if predicted == prompted else ("nothing" if predicted == "nothing" else "other class")


def test_splits_tables_and_breakdown_from_method_metrics():
    from unlearn.evaluation.scoring import Evaluators, MetricConfig, RowMetrics
    from unlearn.evaluation.tables import markdown_table

    ev = Evaluators(
        MetricConfig(metrics=["classification"], classifier=GroupingLogits(), erased_classes=["apple"]),
        ["apple", "bird", "car"],
        "apple",
    )
    splits = ["in_grammar", "out_of_grammar"]
    good = {"apple": [0.9, 0, 0, 0, 0, 0], "bird": [0, 0.9, 0, 0, 0, 0], "car": [0, 0, 0.9, 0, 0, 0]}

    def row(erased_in, erased_out):
        mm = RowMetrics(ev, splits=splits)
        for split, draw in (("in_grammar", erased_in), ("out_of_grammar", erased_out)):
            for i in range(6):
                vids = [video([draw(i)] * 4), video([good["bird"]] * 4), video([good["car" if i else "bird"]] * 4)]
                mm.update(vids, ["apple", "bird", "car"], ["p"] * 3, [split] * 3)
        return mm.compute()["classification"]["apple"]

    rows = {
        "original": row(lambda i: good["apple"], lambda i: good["apple"]),
        "t2vunlearning": row(lambda i: BLANK if i < 2 else good["bird"], lambda i: good["apple"] if i else BLANK),
    }
    compare_rows(rows, "apple")
    r = rows["t2vunlearning"]
    assert r["split"] == "in_grammar" and r["esr@1"] == 100.0 and r["erased_frames"] == 24
    assert r["replacement"] == {"nothing": 8, "other class": 16}
    out = r["splits"]["out_of_grammar"]
    assert out["esr@1"] == pytest.approx(100 / 6) and out["replacement"] == {"prompted class": 20, "nothing": 4}
    assert out["vs_reference"]["psr@1"]["delta"] == 0.0 and out["vs_reference"]["lost_most"] == []
    md = markdown_table(
        rows,
        {
            "concept": "apple",
            "backbone": "toy",
            "num_prompts": 36,
            "prompts_per_split": {"in_grammar": 18, "out_of_grammar": 18},
        },
    )
    assert "ESR-1 ↑ in-grammar | ESR-1 ↑ out-of-grammar" in md
    assert "### In-grammar held-out prompts (erased class: 6 prompts, 24 frames; preserved: 2 classes" in md
    assert "### Out-of-grammar prompts" in md
    assert "| t2vunlearning | in_grammar | 0.0 |" in md  # breakdown: prompted class 0 %, then the other groups
    assert "| 100.0 [86.2, 100.0] |" in md  # ESR-1 with its Wilson interval over 24 frames
    assert "nothing 33" in md  # most frequent labels, % of the erased frames


def _scored(per_class: dict[str, float], out_of_grammar: dict[str, float] | None = None) -> dict:
    """A crafted ESR/PSR row (the fields markdown_table reads) with its per-class top-1 and frames."""
    row = {
        "esr@1": 0.0,
        "esr@5": 0.0,
        "psr@1": 0.0,
        "psr@5": 0.0,
        "per_class_top1": dict(per_class),
        "per_class_frames": dict.fromkeys(per_class, 8),
        "split": "in_grammar",
    }
    if out_of_grammar is not None:
        row["splits"] = {"out_of_grammar": _scored(out_of_grammar) | {"split": None}}
    return row


def test_per_class_deltas_of_every_kept_class_in_metrics_json_and_md():
    from unlearn.evaluation.tables import class_delta_table, markdown_table

    orig = {"apple": 100.0, "bird": 80.0, "car": 60.0, "dog": 40.0, "eel": 90.0}
    rows = {
        "original": _scored(orig, {"bird": 50.0, "car": 75.0}),
        "t2vunlearning": _scored(
            {"apple": 0.0, "bird": 70.0, "car": 65.0, "dog": 40.0, "eel": 45.0}, {"bird": 25.0, "car": 75.0}
        ),
        "negprompt": _scored({"apple": 30.0, "bird": 80.0, "car": 20.0, "dog": 42.5, "eel": 90.0}, {"bird": 50.0}),
    }
    compare_rows(rows, "apple")
    assert "vs_reference" not in rows["original"]
    for method in ("t2vunlearning", "negprompt"):
        per = rows[method]["vs_reference"]["per_class"]
        assert list(per) == ["bird", "car", "dog", "eel"]  # every kept class, the erased one left out
        for c, cell in per.items():
            assert cell == {
                "reference": orig[c],
                "value": rows[method]["per_class_top1"][c],
                "delta": rows[method]["per_class_top1"][c] - orig[c],
                "frames": 8,
            }
        # the paired ΔPSR-1 is the mean of these deltas; lost_most is unchanged beside them
        assert rows[method]["vs_reference"]["psr@1"]["delta"] == pytest.approx(
            sum(c["delta"] for c in per.values()) / 4
        )
    assert [c["class"] for c in rows["t2vunlearning"]["vs_reference"]["lost_most"]] == ["eel", "bird"]
    oog = rows["t2vunlearning"]["splits"]["out_of_grammar"]["vs_reference"]["per_class"]
    assert {c: v["delta"] for c, v in oog.items()} == {"bird": -25.0, "car": 0.0}
    # metrics.md: one table per split, classes x methods, sorted by the worst delta across the methods
    md = markdown_table(rows, {"concept": "apple", "backbone": "toy", "num_prompts": 10})
    assert "### Classes that lost most" in md
    head = "### Per-class top-1 against the original row (in-grammar held-out prompts; Δ in points, worst first)"
    table = md.split(head)[1].split("###")[0].strip().splitlines()
    assert table[0] == "| class | original top-1 | Δ t2vunlearning | Δ negprompt |"
    assert table[2:] == [
        "| eel | 90.0 | -45.0 | +0.0 |",
        "| car | 60.0 | +5.0 | -40.0 |",
        "| bird | 80.0 | -10.0 | +0.0 |",
        "| dog | 40.0 | +0.0 | +2.5 |",
    ]
    oog_table = md.split("### Per-class top-1 against the original row (out-of-grammar prompts")[1].splitlines()
    assert oog_table[4:6] == ["| bird | 50.0 | -25.0 | +0.0 |", "| car | 75.0 | +0.0 | – |"]
    assert class_delta_table({"original": rows["original"]}) == ""  # nothing compared: no table
