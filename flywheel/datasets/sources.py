"""Scripted live sources to record from: a sine-wave arm, or the scripted expert of a Flywheel task.

A source is called once per frame by ``recorder.Recorder`` and returns feature -> value; ``features``
declares what it returns and ``episode_over()`` says when the episode ends on its own (the expert's env
terminated). Both are deterministic for a seed.

Example:
    >>> arm = SineArm(seed=0)
    >>> sorted(arm())
    ['action', 'observation.state']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flywheel.errors import InvalidInput

#: Source names `make_source` knows; `expert:<env id>` takes a Flywheel env id.
SOURCE_NAMES = ("sine", "sine-camera", "expert:<env id>")
CAMERA_KEY = "observation.images.top"


class SineArm:
    """A two-joint arm following sine waves; the action is the next target, the state lags behind it.

    Args:
        seed: picks the phases and frequencies of the episode waves.
        camera: add a small camera feature (a dot at the arm's tip), for rendering.
        fps: the frame rate the waves are sampled at.
    """

    def __init__(self, *, seed: int = 0, camera: bool = False, fps: int = 50) -> None:
        self.rng = np.random.default_rng(seed)
        self.camera = camera
        self.fps = fps
        self.features: dict[str, dict[str, Any]] = {
            "observation.state": {"dtype": "float32", "shape": [2], "names": ["shoulder", "elbow"]},
            "action": {"dtype": "float32", "shape": [2], "names": ["shoulder", "elbow"]},
        }
        if camera:
            self.features[CAMERA_KEY] = {"dtype": "video", "shape": [32, 48, 3], "names": None}
        self.start_episode()

    def start_episode(self) -> None:
        """New phases and frequencies for the next episode."""
        self.phase = self.rng.uniform(0, 2 * np.pi, 2)
        self.freq = self.rng.uniform(0.3, 1.2, 2)
        self.k = 0

    def episode_over(self) -> bool:
        """The arm never stops on its own."""
        return False

    def __call__(self) -> dict[str, Any]:
        t = self.k / self.fps
        target = np.sin(2 * np.pi * self.freq * (t + 1 / self.fps) + self.phase).astype(np.float32)
        state = np.sin(2 * np.pi * self.freq * t + self.phase).astype(np.float32)
        self.k += 1
        frame: dict[str, Any] = {"observation.state": state, "action": target}
        if self.camera:
            img = np.zeros((32, 48, 3), np.uint8)
            x = int(np.rint(23.5 + 20 * state[0]))
            y = int(np.rint(15.5 + 12 * state[1]))
            img[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = (255, 200, 40)
            frame[CAMERA_KEY] = img
        return frame


class ExpertSource:
    """A Flywheel task driven by its scripted expert: each call labels the state and steps the env.

    Args:
        env_id: a registered ``flywheel/…`` id with a scripted expert.
        seed: seeds the env (each episode resets with seed, seed + 1, …).
    """

    def __init__(self, env_id: str, *, seed: int = 0) -> None:
        from flywheel.training.envs import expert_for, features_for, make_env

        self.env = make_env(env_id, seed=seed)
        self.expert = expert_for(self.env)
        self.features = features_for(self.env)
        self.seed = seed
        self.episode = 0
        self.start_episode()

    def start_episode(self) -> None:
        """Reset the env for the next episode."""
        self.obs, _ = self.env.reset(seed=self.seed + self.episode)
        self.episode += 1
        self.over = False
        self.success: bool | None = None

    def episode_over(self) -> bool:
        """Whether the env terminated or truncated at the last step."""
        return self.over

    def __call__(self) -> dict[str, Any]:
        action = np.asarray(self.expert(self.obs))
        state = np.asarray(self.obs, np.float32)
        self.obs, reward, terminated, truncated, info = self.env.step(action)
        self.over = bool(terminated or truncated)
        if "is_success" in info:
            self.success = bool(info["is_success"])
        dtype = self.features["action"]["dtype"]
        return {"observation.state": state, "action": action.astype(dtype).reshape(-1),
                "next.reward": np.float32(reward), "next.done": self.over}


def make_source(name: str, *, seed: int = 0, fps: int = 50) -> SineArm | ExpertSource:
    """The scripted source a name designates: ``sine``, ``sine-camera`` or ``expert:<env id>``.

    Raises:
        InvalidInput: an unknown name (field ``source``, allowed names listed).

    Example:
        >>> make_source("sine").features["action"]["shape"]
        [2]
    """
    if name == "sine":
        return SineArm(seed=seed, fps=fps)
    if name == "sine-camera":
        return SineArm(seed=seed, camera=True, fps=fps)
    if isinstance(name, str) and name.startswith("expert:"):
        return ExpertSource(name.removeprefix("expert:"), seed=seed)
    raise InvalidInput(f"unknown source {name!r}", field="source", allowed=list(SOURCE_NAMES))
