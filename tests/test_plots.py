"""unlearn.evaluation.plots: real PNG files of the requested pixel size, with the frames where they belong."""

import struct

import numpy as np
import pytest

from unlearn.evaluation import plots


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def read_png(path):
    import matplotlib.image

    return (matplotlib.image.imread(path)[..., :3] * 255).round().astype(np.uint8)


ROW = {"esr@1": 90.0, "esr@5": 70.0, "psr@1": 60.0, "psr@5": 95.0}


def test_classification_bars_one_class_and_several(tmp_path):
    p = plots.classification_bars(
        {"original": {k: 10.0 for k in ROW}, "t2vunlearning": ROW},
        tmp_path / "a.png",
        size=(640, 360),
        title="golf ball",
    )
    assert png_size(p) == (640, 360)
    img = read_png(p)
    assert img.std() > 10  # something was drawn
    many = {
        c: {"original": ROW, "t2vunlearning": ROW}
        for c in ["golf ball", "church", "tench", "parachute", "gas pump", "chain saw"]
    }
    assert png_size(plots.classification_bars(many, tmp_path / "b.png", size=(1200, 500), dpi=80)) == (1200, 500)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_nudity_label_histogram_size_and_content(tmp_path):
    counts = {
        "original": {"FEMALE_BREAST_EXPOSED": 30, "BUTTOCKS_EXPOSED": 12, "ANUS_EXPOSED": 0},
        "t2vunlearning": {"FEMALE_BREAST_EXPOSED": 2, "BUTTOCKS_EXPOSED": 1},
    }
    p = plots.nudity_label_histogram(counts, tmp_path / "fig5.png", size=(800, 450), title="SafeSora")
    assert png_size(p) == (800, 450)
    img = read_png(p)
    blue = (np.abs(img.astype(int) - [31, 119, 180]).sum(-1) < 30).sum()  # matplotlib's C0: the first method
    orange = (np.abs(img.astype(int) - [255, 127, 14]).sum(-1) < 30).sum()
    assert blue > 5 * orange > 0  # 42 original frames vs 3 unlearned frames


def test_frame_grid_size_and_cells(tmp_path):
    colours = {
        "original": [(255, 0, 0), (0, 255, 0), (0, 0, 255)],
        "t2vunlearning": [(255, 255, 0), (0, 255, 255), (9, 9, 9)],
    }
    videos = {
        m: [np.broadcast_to(np.array(c, np.uint8), (5, 24, 32, 3)).copy() for c in cs] for m, cs in colours.items()
    }
    videos["t2vunlearning"][2][2] = (200, 100, 50)  # the middle frame differs from the others
    p = plots.frame_grid(
        videos, tmp_path / "grid.png", prompts=["a", "b", "c"], cell=64, label_width=100, header_height=30
    )
    cell_h = round(64 * 24 / 32)
    assert png_size(p) == (100 + 3 * 64, 30 + 2 * cell_h)
    img = read_png(p)
    for r, (m, cs) in enumerate(colours.items()):
        for c, colour in enumerate(cs):
            y, x = 30 + r * cell_h + cell_h // 2, 100 + c * 64 + 32
            expected = (200, 100, 50) if (m, c) == ("t2vunlearning", 2) else colour
            assert tuple(img[y, x]) == expected, (m, c)


def test_plot_errors(tmp_path):
    with pytest.raises(ValueError, match="no videos"):
        plots.frame_grid({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"F > 0"):
        plots.frame_grid({"m": [np.zeros((0, 8, 8, 3), np.uint8)]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no rows"):
        plots.classification_bars({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no methods"):
        plots.nudity_label_histogram({}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_classification_bars_draw_each_interval_as_an_error_bar(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    drawn = []
    original_bar = Axes.bar

    def bar(self, x, height, *args, **kwargs):  # the real bar, its error bars recorded
        drawn.append(kwargs.get("yerr"))
        return original_bar(self, x, height, *args, **kwargs)

    monkeypatch.setattr(Axes, "bar", bar)
    row = dict(ROW, intervals={"esr@1": {"low": 80.0, "high": 95.5}, "psr@1": {"low": 51.0, "high": 66.0}})
    with_bars = plots.classification_bars({"t2vunlearning": row, "original": ROW}, tmp_path / "a.png")
    assert drawn[0].tolist() == [[10.0, 0.0, 9.0, 0.0], [5.5, 0.0, 6.0, 0.0]]  # below, above each number
    assert drawn[1] is None  # a row without intervals: plain bars
    without = plots.classification_bars({"t2vunlearning": ROW, "original": ROW}, tmp_path / "b.png")
    assert (read_png(with_bars) != read_png(without)).any()


def test_class_delta_panels_take_every_compared_row_and_split():
    def row(delta_in, delta_out=None):
        r = {**ROW, "split": "in_grammar"}
        if delta_in is not None:
            r["vs_reference"] = {"per_class": {c: {"delta": d} for c, d in delta_in.items()}}
        if delta_out is not None:
            r["splits"] = {"out_of_grammar": {**ROW, "vs_reference": {"per_class": {"a": {"delta": delta_out}}}}}
        return r

    rows = {"original": row(None), "t2v": row({"a": -5.0, "b": 2.0}, -1.0), "neg": row({"a": 0.0, "b": -8.0})}
    assert plots.class_delta_panels(rows) == {
        "in-grammar": {"t2v": {"a": -5.0, "b": 2.0}, "neg": {"a": 0.0, "b": -8.0}},
        "out-of-grammar": {"t2v": {"a": -1.0}},
    }
    # several erased classes (the runner's {erased class: {method: row}}): one panel per class and split
    two = plots.class_delta_panels({"golf ball": rows, "church": {"original": row(None), "t2v": row({"a": 1.0})}})
    assert list(two) == ["golf ball, in-grammar", "golf ball, out-of-grammar", "church, in-grammar"]
    assert plots.class_delta_panels({"original": row(None)}) == {}  # the reference alone: nothing to plot


def test_class_delta_bars_draw_each_class_below_or_above_zero_worst_first(tmp_path):
    """One method (colour C0), two classes: the worse class (b, -50) is drawn first, below the zero line; a
    (+50) second, above it. Read back from the PNG's pixels."""
    path = plots.class_delta_bars(
        {"in-grammar": {"t2v": {"a": 50.0, "b": -50.0}}}, tmp_path / "d.png", size=(800, 400), title="x erased"
    )
    assert png_size(path) == (800, 400)
    img = read_png(path).astype(int)
    c0 = np.abs(img - np.array([31, 119, 180])).sum(axis=-1) < 30  # matplotlib's C0, #1f77b4
    rows_left, rows_right = np.nonzero(c0[:, :400])[0], np.nonzero(c0[:, 400:])[0]
    assert len(rows_left) > 5000 and len(rows_right) > 5000  # two big bars, one in each half
    assert np.median(rows_left) > np.median(rows_right) + 100  # b hangs below zero, a stands above it
    from PIL import Image

    with Image.open(path) as im:  # a valid PNG for PIL too
        assert im.size == (800, 400)
    three = {f"class {i}, in-grammar": {"t2v": {"a": -1.0}} for i in range(3)}
    assert png_size(plots.class_delta_bars(three, tmp_path / "three.png")) == (1200, 960)  # 320 px a panel
    with pytest.raises(ValueError, match="no per-class deltas"):
        plots.class_delta_bars({"in-grammar": {}}, tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()
