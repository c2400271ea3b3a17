"""Plots of a search: GP mean/σ slices over each parameter, the best-so-far curve, and an HTML page.

matplotlib is not a dependency of Flywheel, so the figures are SVG written by hand (a few dozen lines, no
fonts or rasterising): the UI embeds them as they are.

Example:
    >>> import tempfile, pathlib
    >>> from flywheel.autoresearch.controller import Controller
    >>> from flywheel.autoresearch.space import SearchSpace
    >>> space = SearchSpace(params={"x": {"type": "float", "low": 0.0, "high": 1.0},
    ...                             "net": {"type": "categorical", "choices": ["s", "l"]}})
    >>> ctl = Controller(space=space, seed=0)
    >>> _ = ctl.run(lambda p: p["x"] + (p["net"] == "l"), n_trials=5)
    >>> page = write_report(ctl, pathlib.Path(tempfile.mkdtemp()))
    >>> sorted(p.name for p in page.parent.iterdir())
    ['best_so_far.svg', 'index.html', 'slice_net.svg', 'slice_x.svg']
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flywheel.autoresearch.space import CategoricalParam, FloatParam, IntParam

if TYPE_CHECKING:
    from flywheel.autoresearch.controller import Controller

W, H, PAD = 420, 260, 44


def _scale(v: np.ndarray, lo: float, hi: float, a: float, b: float) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return a + (np.asarray(v, dtype=float) - lo) / span * (b - a)


def _frame(title: str, xlabel: str, ylo: float, yhi: float, xticks: Sequence[tuple[float, str]]) -> list[str]:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
           f'font-size="11"><rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
           f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="black"/>',
           f'<line x1="{PAD}" y1="28" x2="{PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">{html.escape(xlabel)}</text>']
    for v, label in ((ylo, f"{ylo:.3g}"), (yhi, f"{yhi:.3g}")):
        y = _scale(v, ylo, yhi, H - PAD, 28)
        out.append(f'<text x="{PAD - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for x, label in xticks:
        out.append(f'<text x="{x:.1f}" y="{H - PAD + 14}" text-anchor="middle">{html.escape(label)}</text>')
    return out


def best_so_far_svg(rewards: Sequence[float | None]) -> str:
    """The best reward after each trial (failed trials keep the previous best).

    Example:
        >>> "polyline" in best_so_far_svg([1.0, None, 3.0, 2.0])
        True
    """
    best, cur = [], -math.inf
    for r in rewards:
        if r is not None and math.isfinite(r):
            cur = max(cur, r)
        best.append(cur)
    ok = [b for b in best if math.isfinite(b)]
    n = len(best)
    lo, hi = (min(ok), max(ok)) if ok else (0.0, 1.0)
    xs = _scale(np.arange(1, n + 1), 1, max(n, 2), PAD, W - 10)
    out = _frame("best reward so far", "trial", lo, hi, [(xs[0], "1"), (xs[-1], str(n))] if n else [])
    pts = " ".join(f"{x:.1f},{_scale(b, lo, hi, H - PAD, 28):.1f}" for x, b in zip(xs, best, strict=True)
                   if math.isfinite(b))
    out.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{pts}"/>')
    for x, r in zip(xs, rewards, strict=True):
        if r is not None and math.isfinite(r):
            out.append(f'<circle cx="{x:.1f}" cy="{_scale(r, lo, hi, H - PAD, 28):.1f}" r="2" fill="#999"/>')
    return "\n".join([*out, "</svg>"])


def slice_svg(ctl: Controller, name: str, n_points: int = 60) -> str:
    """GP mean ± 2σ along parameter ``name``, the others fixed at the best trial's values."""
    space = ctl.space
    gp = ctl.gp()
    best = ctl.best
    if gp is None or best is None:
        return "\n".join([*_frame(f"{name}: no data yet", name, 0, 1, []), "</svg>"])
    p = space.params[name]
    base = space.encode(best.params)
    sl = space.slices[name]
    if isinstance(p, CategoricalParam):
        grid = np.repeat(base[None, :], len(p.choices), axis=0)
        grid[:, sl] = np.eye(len(p.choices))
        labels = [str(c) for c in p.choices]
    else:
        grid = np.repeat(base[None, :], n_points, axis=0)
        grid[:, sl.start] = np.linspace(0, 1, n_points)
        if isinstance(p, IntParam):
            grid = space.snap(grid)
        labels = [str(space.decode(g)[name]) for g in grid]
    mu, sd = gp.predict(grid)
    lo, hi = float((mu - 2 * sd).min()), float((mu + 2 * sd).max())
    xs = _scale(np.arange(len(grid)), 0, max(len(grid) - 1, 1), PAD + 10, W - 20)
    ticks = [(xs[i], labels[i]) for i in sorted({0, len(xs) // 2, len(xs) - 1})]
    out = _frame(f"GP mean ± 2σ over {name}", name + (" (log)" if isinstance(p, FloatParam | IntParam) and p.log
                                                         else ""), lo, hi, ticks)
    y = lambda v: _scale(v, lo, hi, H - PAD, 28)  # noqa: E731
    if isinstance(p, CategoricalParam):
        for x, m, s in zip(xs, mu, sd, strict=True):
            out.append(f'<line x1="{x:.1f}" y1="{y(m - 2 * s):.1f}" x2="{x:.1f}" y2="{y(m + 2 * s):.1f}" '
                       'stroke="#aec7e8" stroke-width="8"/>')
            out.append(f'<circle cx="{x:.1f}" cy="{y(m):.1f}" r="4" fill="#1f77b4"/>')
    else:
        band = [f"{x:.1f},{y(m + 2 * s):.1f}" for x, m, s in zip(xs, mu, sd, strict=True)]
        band += [f"{x:.1f},{y(m - 2 * s):.1f}" for x, m, s in zip(xs[::-1], mu[::-1], sd[::-1], strict=True)]
        out.append(f'<polygon fill="#aec7e8" stroke="none" points="{" ".join(band)}"/>')
        line = " ".join(f"{x:.1f},{y(m):.1f}" for x, m in zip(xs, mu, strict=True))
        out.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{line}"/>')
    return "\n".join([*out, "</svg>"])


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(ctl: Controller, folder: str | Path) -> Path:
    """Write ``best_so_far.svg``, ``slice_<param>.svg`` and ``index.html`` into ``folder``; returns the page."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "best_so_far.svg", best_so_far_svg([r.mean_reward if r.ok else None for r in ctl.records]))
    for name in ctl.space.names:
        _write(folder / f"slice_{name}.svg", slice_svg(ctl, name))
    best = ctl.best
    rows = "".join(
        f"<tr><td>{r.trial}</td><td>{r.run_status}</td><td>{'' if r.mean_reward is None else f'{r.mean_reward:.4g}'}"
        f"</td><td>{'★' if r.champion else ''}</td><td>{html.escape(str(r.params))}</td></tr>"
        for r in ctl.records)
    figs = "".join(f'<img src="slice_{html.escape(n)}.svg" alt="{html.escape(n)}">' for n in ctl.space.names)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>autoresearch</title></head><body>"
            f"<h1>autoresearch</h1><p>{len(ctl.records)} trials; best "
            f"{'—' if best is None else f'{best.mean_reward:.4g} (trial {best.trial})'}; "
            f"{html.escape(ctl.champion.summary())}</p><img src='best_so_far.svg' alt='best so far'>{figs}"
            f"<table border='1'><tr><th>trial</th><th>status</th><th>reward</th><th>champion</th><th>params</th></tr>"
            f"{rows}</table></body></html>")
    _write(folder / "index.html", page)
    return folder / "index.html"
