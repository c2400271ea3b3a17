"""Car-track tasks: named tracks, a kinematic bicycle car, ``TrackEnv`` and its pure-pursuit expert.

Example:
    >>> from flywheel.envs.track import TrackEnv, PurePursuitExpert, TRACK_NAMES
    >>> TRACK_NAMES
    ('generated-roads', 'mountain', 'warehouse')
"""

from flywheel.envs.track.car import Car, CarParams
from flywheel.envs.track.env import DIFFICULTY, TrackEnv
from flywheel.envs.track.expert import PurePursuitExpert
from flywheel.envs.track.tracks import TRACK_NAMES, Track, make_track

__all__ = ["DIFFICULTY", "TRACK_NAMES", "Car", "CarParams", "PurePursuitExpert", "Track", "TrackEnv", "make_track"]
