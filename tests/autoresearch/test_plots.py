"""Plots: SVG slices and best-so-far curve, and the HTML page."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flywheel.autoresearch.controller import Controller
from flywheel.autoresearch.plots import best_so_far_svg, write_report
from flywheel.autoresearch.space import SearchSpace


def test_report_writes_valid_svg_for_every_parameter_and_a_page(tmp_path) -> None:
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 9},
                                "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                                "net": {"type": "categorical", "choices": ["small", "large"]}})
    ctl = Controller(space=space, seed=0)
    ctl.run(lambda p: p["n"] - abs(p["lr"] - 0.01) * 100 + (p["net"] == "large"), n_trials=6)
    page = write_report(ctl, tmp_path)
    for name in ("best_so_far", "slice_n", "slice_lr", "slice_net"):
        root = ET.parse(tmp_path / f"{name}.svg").getroot()
        assert root.tag.endswith("svg")
    html = page.read_text()
    assert html.count("<tr>") == 7 and "slice_net.svg" in html


def test_best_so_far_is_monotone_and_skips_failures() -> None:
    svg = best_so_far_svg([1.0, None, 0.5, 3.0])
    pts = svg.split('points="')[1].split('"')[0].split()
    ys = [float(p.split(",")[1]) for p in pts]
    assert ys == sorted(ys, reverse=True)  # SVG y grows downwards: a rising best is a falling y
    assert len(pts) == 4
