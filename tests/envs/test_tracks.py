"""Track shapes and centre-line queries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flywheel.envs.track.tracks import TRACK_NAMES, Track, generated_roads, make_track
from flywheel.errors import InvalidInput


def _turns(track: Track) -> np.ndarray:
    """Heading change at each centre-line point, radians, wrapped to [-π, π)."""
    h = np.asarray(track.heading)
    return (np.roll(h, -1) - h + np.pi) % (2 * np.pi) - np.pi


def test_three_named_tracks_exist_and_close_on_themselves() -> None:
    assert set(TRACK_NAMES) >= {"generated-roads", "mountain", "warehouse"}
    for name in TRACK_NAMES:
        track = make_track(name)
        assert track.length > 150 and track.width > 0
        assert max(track.seg_len) <= 0.5 + 1e-9
        assert abs(_turns(track).sum()) == pytest.approx(2 * math.pi, abs=1e-6)  # one full turn: a closed loop


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_distant_parts_of_a_track_never_come_within_two_road_widths(name: str) -> None:
    track = make_track(name)
    pts = np.stack([track.xs, track.ys], 1)
    s = np.asarray(track.cum)
    dist = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
    arc = np.abs(s[:, None] - s[None])
    arc = np.minimum(arc, track.length - arc)
    assert dist[arc > 25].min() > 2 * track.width


def test_the_shapes_differ_as_named() -> None:
    warehouse = np.abs(_turns(make_track("warehouse")))
    assert np.sum(np.isclose(warehouse, math.pi / 2, atol=1e-9)) == 12  # sharp 90° corners, nothing else
    assert np.all(np.isclose(warehouse, 0, atol=1e-9) | np.isclose(warehouse, math.pi / 2, atol=1e-9))
    roads = np.abs(_turns(make_track("generated-roads")))
    assert roads.max() < 0.5 / 8.0 + 1e-3  # smooth: radius of curvature ≥ 8 m at 0.5 m spacing
    mountain = make_track("mountain")
    curvature = np.abs(_turns(mountain)) / 0.5
    assert curvature.max() > 1 / 5.5  # a hairpin tighter than 5.5 m radius
    assert len(np.unique(np.round(1 / curvature[curvature > 0.05]))) >= 3  # several different radii


def test_generated_roads_follow_the_seed() -> None:
    a, b, c = generated_roads(1), generated_roads(1), generated_roads(2)
    assert a.xs == b.xs and a.ys == b.ys
    assert a.xs != c.xs
    assert make_track("generated-roads", seed=3) is make_track("generated-roads", seed=3)  # cached


def test_nearest_gives_signed_cross_track_error_and_arc_position() -> None:
    track = make_track("warehouse")  # first leg: along +x from (0, 0)
    i, t, cte = track.nearest(10.3, 1.5, hint=0)
    assert track.cum[i] + t == pytest.approx(10.3)
    assert cte == pytest.approx(1.5)  # left of the direction of travel is positive
    _, _, cte = track.nearest(10.3, -0.7, hint=15)
    assert cte == pytest.approx(-0.7)
    i, t, cte = track.nearest_global(41.0, 7.0)  # second leg: along +y at x = 40; x = 41 is right of it
    assert cte == pytest.approx(-1.0)
    assert track.cum[i] + t == pytest.approx(47.0)


def test_point_at_wraps_around_the_lap() -> None:
    track = make_track("warehouse")
    assert track.point_at(5.0) == pytest.approx(track.point_at(5.0 + track.length))
    assert track.point_at(45.0) == pytest.approx((40.0, 5.0))


def test_unknown_track_names_the_field_and_the_choices() -> None:
    with pytest.raises(InvalidInput) as err:
        make_track("monaco")
    assert err.value.field == "track"
    assert err.value.allowed == list(TRACK_NAMES)
    with pytest.raises(InvalidInput, match="width"):
        Track("bad", [(0, 0), (1, 0), (0, 1)], width=0)
