"""Named car tracks: closed centre lines (polylines) with a road width, precomputed for fast queries.

Three shapes, modelled on the DonkeyCar simulator's scenes:

| name | shape | width |
|---|---|---|
| ``generated-roads`` | smooth random closed road, one per ``seed`` (radial Fourier curve, always simple) | 4.0 m |
| ``mountain`` | three tight hairpins of different radii (5-7 m), an S-bend, sweeping return | 3.5 m |
| ``warehouse`` | rectilinear: straight aisles joined by twelve sharp 90° corners | 4.0 m |

A :class:`Track` stores its centre line as plain Python lists (``xs``, ``ys``, unit tangents, cumulative
arc length) because the environment's per-step queries are scalar and plain floats are faster than numpy
there. Points are spaced at most ``SPACING`` metres apart; the polyline is closed (the last point joins
the first). Distances are metres, angles radians, counter-clockwise positive.

Example:
    >>> track = make_track("warehouse")
    >>> round(track.length)
    216
    >>> sorted(TRACK_NAMES)
    ['generated-roads', 'mountain', 'warehouse']
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

import numpy as np

from flywheel.errors import InvalidInput

#: The largest distance between consecutive centre-line points, in metres.
SPACING = 0.5


class Track:
    """A closed centre line with a road width, precomputed for nearest-point and look-ahead queries.

    Args:
        name: the track's name.
        vertices: (N, 2) polyline vertices in metres, closed implicitly (do not repeat the first point).
            Consecutive vertices further than ``SPACING`` apart are subdivided; corners are kept exactly.
        width: road width in metres (the car leaves the road when ``|cte| > width / 2``).

    Example:
        >>> t = Track("square", [(0, 0), (10, 0), (10, 10), (0, 10)], width=2.0)
        >>> t.length, len(t.xs)
        (40.0, 80)
        >>> t.point_at(15.0)
        (10.0, 5.0)
    """

    def __init__(self, name: str, vertices: Sequence[Sequence[float]] | np.ndarray, *, width: float) -> None:
        verts = np.asarray(vertices, dtype=float)
        if verts.ndim != 2 or verts.shape[1] != 2 or len(verts) < 3:
            raise InvalidInput("needs at least 3 points of shape (N, 2)", field="vertices")
        if not width > 0:
            raise InvalidInput(f"must be positive, got {width}", field="width", allowed="> 0")
        self.name = name
        self.width = float(width)
        pts: list[tuple[float, float]] = []
        n = len(verts)
        for k in range(n):
            a, b = verts[k], verts[(k + 1) % n]
            seg = float(np.hypot(*(b - a)))
            if seg < 1e-9:
                continue
            pieces = max(1, math.ceil(seg / SPACING - 1e-9))
            for j in range(pieces):
                p = a + (b - a) * (j / pieces)
                pts.append((float(p[0]), float(p[1])))
        self.xs = [p[0] for p in pts]
        self.ys = [p[1] for p in pts]
        self.n = len(pts)
        self.seg_len: list[float] = []
        self.tx: list[float] = []
        self.ty: list[float] = []
        self.heading: list[float] = []
        for i in range(self.n):
            dx = self.xs[(i + 1) % self.n] - self.xs[i]
            dy = self.ys[(i + 1) % self.n] - self.ys[i]
            d = math.hypot(dx, dy)
            self.seg_len.append(d)
            self.tx.append(dx / d)
            self.ty.append(dy / d)
            self.heading.append(math.atan2(dy, dx))
        cum = [0.0]
        for d in self.seg_len:
            cum.append(cum[-1] + d)
        self.length = cum[-1]
        #: Arc length at each point, over two laps (2N + 1 values) so look-aheads need no wrap-around.
        self.cum2 = cum[:-1] + [c + self.length for c in cum]
        self.cum = cum[:-1]

    def point_at(self, s: float) -> tuple[float, float]:
        """The centre-line point at arc length ``s`` (any real; wraps around the lap)."""
        s = s % self.length
        i = bisect.bisect_right(self.cum2, s) - 1
        i %= self.n
        t = s - self.cum[i]
        return self.xs[i] + self.tx[i] * t, self.ys[i] + self.ty[i] * t

    def nearest(self, x: float, y: float, hint: int = 0) -> tuple[int, float, float]:
        """Nearest centre-line segment to (x, y), searched locally from ``hint``.

        Returns:
            ``(i, t, cte)``: segment index, distance along segment ``i`` (0..seg_len), and the signed
            cross-track error (positive to the left of the direction of travel).
        """
        xs, ys, n = self.xs, self.ys, self.n
        i = hint % n
        d = (xs[i] - x) ** 2 + (ys[i] - y) ** 2
        while True:  # hill-climb forward
            j = i + 1 if i + 1 < n else 0
            dj = (xs[j] - x) ** 2 + (ys[j] - y) ** 2
            if dj >= d:
                break
            i, d = j, dj
        while True:  # and backward
            j = i - 1 if i > 0 else n - 1
            dj = (xs[j] - x) ** 2 + (ys[j] - y) ** 2
            if dj >= d:
                break
            i, d = j, dj
        t = (x - xs[i]) * self.tx[i] + (y - ys[i]) * self.ty[i]
        if t < 0.0:
            i = i - 1 if i > 0 else n - 1
            t = (x - xs[i]) * self.tx[i] + (y - ys[i]) * self.ty[i]
            if t > self.seg_len[i]:
                t = self.seg_len[i]
        cte = self.tx[i] * (y - ys[i]) - self.ty[i] * (x - xs[i])
        return i, t, cte

    def nearest_global(self, x: float, y: float) -> tuple[int, float, float]:
        """Like :meth:`nearest` but searches every point first (use when no good hint exists)."""
        d = (np.asarray(self.xs) - x) ** 2 + (np.asarray(self.ys) - y) ** 2
        return self.nearest(x, y, int(np.argmin(d)))

    def curvature_ahead(self, s: float, distance: float, window: float = 3.0) -> float:
        """The sharpest mean curvature (heading change per metre over ``window`` m) in ``[s, s + distance]``.

        Averaging over a window makes a sharp polyline corner read like the arc a car drives through it
        (a 90° corner reads π/2 / 3 m ≈ 0.52 1/m, a 5 m hairpin 0.2 1/m); straights read 0.
        """
        i0 = (bisect.bisect_right(self.cum2, s % self.length) - 1) % self.n
        w = max(1, round(window / SPACING))
        steps = max(1, int(distance / SPACING) + 1)
        heading, n = self.heading, self.n
        worst = 0.0
        for k in range(steps):
            a, b = (i0 + k) % n, (i0 + k + w) % n
            turn = abs((heading[b] - heading[a] + math.pi) % (2 * math.pi) - math.pi)
            worst = max(worst, turn)
        return worst / (w * SPACING)


# --------------------------------------------------------------------------- shapes


def _turtle(commands: Sequence[tuple[str, float, float]], step: float = 0.25) -> np.ndarray:
    """Trace a path from (0, 0) heading east. Commands: ``("S", length, 0)`` or ``("A", angle, radius)``."""
    x = y = yaw = 0.0
    pts = [(x, y)]
    for kind, a, b in commands:
        if kind == "S":
            k = max(1, math.ceil(a / step))
            for _ in range(k):
                x += math.cos(yaw) * a / k
                y += math.sin(yaw) * a / k
                pts.append((x, y))
        else:  # arc: signed angle (left positive), radius
            k = max(2, math.ceil(abs(a) * b / step))
            for _ in range(k):
                da = a / k
                chord = 2 * b * math.sin(abs(da) / 2)
                x += math.cos(yaw + da / 2) * chord
                y += math.sin(yaw + da / 2) * chord
                yaw += da
                pts.append((x, y))
    path = np.asarray(pts)
    if np.hypot(*path[-1]) > 1e-6:
        raise RuntimeError(f"track does not close: ends at {path[-1]}")
    return path[:-1]


def generated_roads(seed: int = 0) -> Track:
    """A smooth random closed road: radius ``r(θ) = R0 (1 + Σ a_k cos(kθ + φ_k))``, k = 2..4.

    The curve is star-shaped (r > 0), so it never crosses itself; amplitudes are bounded so the tightest
    bend keeps a radius of curvature of at least 8 m. The same seed gives the same road.
    """
    rng = np.random.default_rng(seed)
    r0 = 30.0
    ks = np.arange(2, 5)
    amps = rng.uniform(0.1, 0.3, size=len(ks)) / ks
    phases = rng.uniform(0, 2 * np.pi, size=len(ks))
    theta = np.linspace(0, 2 * np.pi, 1200, endpoint=False)
    for _ in range(20):
        r = r0 * (1 + (amps[:, None] * np.cos(ks[:, None] * theta + phases[:, None])).sum(0))
        dr = r0 * (-(amps * ks)[:, None] * np.sin(ks[:, None] * theta + phases[:, None])).sum(0)
        ddr = r0 * (-(amps * ks**2)[:, None] * np.cos(ks[:, None] * theta + phases[:, None])).sum(0)
        curvature = np.abs(r**2 + 2 * dr**2 - r * ddr) / (r**2 + dr**2) ** 1.5
        if curvature.max() <= 1 / 8.0:
            break
        amps *= 0.8
    verts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return Track("generated-roads", _resample(verts), width=4.0)


def mountain() -> Track:
    """Tight hairpins of varying radius up a hillside, an S-bend at the top, a sweeping descent."""
    cmds = [
        ("S", 30.0, 0), ("A", math.pi, 6.0),       # hairpin left, r = 6
        ("S", 30.0, 0), ("A", -math.pi, 5.0),      # hairpin right, r = 5
        ("S", 30.0, 0), ("A", math.pi, 7.0),       # hairpin left, r = 7 -> heading west at y = 36
        ("A", -math.radians(30), 15.0), ("A", math.radians(30), 15.0),  # S-bend: shifts north
        ("S", 10.0, 0),
    ]
    # Pose after the S-bend and straight, then close with: straight west, left 90° r 8, south, left 90° r 8, east.
    x, y = 30.0, 36.0
    dy = 2 * 15.0 * (1 - math.cos(math.radians(30)))
    dx = 2 * 15.0 * math.sin(math.radians(30))
    x, y = x - dx - 10.0, y + dy
    west = x - (-23.0 + 8.0)  # run west until the corner centre is at x = -15
    south = y - 8.0 - 8.0
    cmds += [("S", west, 0), ("A", math.pi / 2, 8.0), ("S", south, 0), ("A", math.pi / 2, 8.0), ("S", 15.0, 0)]
    return Track("mountain", _resample(_turtle(cmds)), width=3.5)


def warehouse() -> Track:
    """Straight aisles joined by twelve sharp 90° corners (left and right), legs ≥ 12 m apart."""
    verts = [(0, 0), (40, 0), (40, 14), (26, 14), (26, 28), (40, 28), (40, 42), (0, 42), (0, 30), (12, 30),
             (12, 16), (0, 16)]
    return Track("warehouse", verts, width=4.0)


def _resample(path: np.ndarray, spacing: float = SPACING) -> np.ndarray:
    """Resample a dense closed path to points evenly spaced by arc length (about ``spacing`` apart)."""
    closed = np.vstack([path, path[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    n = math.ceil(cum[-1] / spacing)
    s = np.linspace(0, cum[-1], n, endpoint=False)
    return np.stack([np.interp(s, cum, closed[:, 0]), np.interp(s, cum, closed[:, 1])], axis=1)


_BUILDERS: dict[str, Callable[..., Track]] = {
    "generated-roads": generated_roads,
    "mountain": mountain,
    "warehouse": warehouse,
}
#: Every track name :func:`make_track` accepts.
TRACK_NAMES: tuple[str, ...] = tuple(_BUILDERS)
_CACHE: dict[tuple[str, int], Track] = {}


def make_track(name: str, *, seed: int = 0) -> Track:
    """Build (or fetch from a cache) the named track; ``seed`` only matters for ``generated-roads``.

    Raises:
        InvalidInput: the name is unknown (the error lists the known names).

    Example:
        >>> make_track("mountain").width
        3.5
    """
    if name not in _BUILDERS:
        raise InvalidInput(f"unknown track {name!r}", field="track", allowed=list(TRACK_NAMES))
    key = (name, int(seed) if name == "generated-roads" else 0)
    if key not in _CACHE:
        _CACHE[key] = generated_roads(key[1]) if name == "generated-roads" else _BUILDERS[name]()
    return _CACHE[key]
