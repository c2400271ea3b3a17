"""The OOD detector: injected outliers are flagged, in-distribution states are not (seeded); JSON round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.datasets.edits import trim_episode
from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.stats import dataset_stats
from flywheel.datasets.writer import create_dataset
from flywheel.errors import InvalidInput
from flywheel.safety.ood import OODDetector, mahalanobis_threshold, ood_rate

FEATURES = {"observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "vx", "vy"]}}


def correlated(rng: np.random.Generator, n: int) -> np.ndarray:
    """4 features: x and y almost equal (ρ ≈ 0.99), vx and vy independent."""
    x = rng.normal(size=n)
    return np.stack([x, x + 0.14 * rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)], axis=1)


def test_injected_outliers_are_flagged_and_in_distribution_states_are_not() -> None:
    rng = np.random.default_rng(0)
    detector = OODDetector.fit(correlated(rng, 5000))
    held_out = correlated(np.random.default_rng(1), 2000)
    assert detector.ood_rate(held_out) < 0.02  # 3σ on 4 features: about 1 % by chance
    far = held_out[:5].copy()
    far[:, 2] += 8.0  # one feature 8σ away
    unseen_pair = np.array([[1.5, -1.5, 0.0, 0.0], [-2.0, 2.0, 0.5, 0.0]])  # each ordinary, the pair never seen
    assert detector.flags(far).all()
    scores = detector.score(unseen_pair)
    assert (scores.max_z < 3).all() and (scores.mahalanobis > detector.mahalanobis_threshold).all()
    assert detector.flags(unseen_pair).all()
    assert detector.flags(np.array([[np.nan, 0, 0, 0]])).tolist() == [True]


def test_the_mahalanobis_threshold_matches_the_z_threshold_tail() -> None:
    assert mahalanobis_threshold(1, 3.0) == pytest.approx(3.0)
    rng = np.random.default_rng(2)
    detector = OODDetector.fit(rng.normal(size=(20000, 6)), z_threshold=3.0)
    maha = detector.score(rng.normal(size=(20000, 6))).mahalanobis
    assert np.mean(maha > detector.mahalanobis_threshold) == pytest.approx(0.0027, abs=0.0015)


def _dataset(root: Path, rng: np.random.Generator, outliers: dict[tuple[int, int], np.ndarray]) -> None:
    with create_dataset(root, features=FEATURES, fps=50, robot_type="sim") as writer:
        for episode in range(4):
            states = rng.uniform(-1, 1, size=(40, 4)).astype(np.float32)  # bounded: |z| ≤ √3 in distribution
            for (ep, frame), value in outliers.items():
                if ep == episode:
                    states[frame] = value
            writer.append_episode(EpisodeArrays(columns={"observation.state": states}, task="t"))


def test_flag_dataset_lists_the_outlier_frames_for_review(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    _dataset(clean, np.random.default_rng(3), {})
    detector = OODDetector.from_dataset(clean)
    stats = dataset_stats(DatasetReader(clean))["observation.state"]
    np.testing.assert_allclose(detector.mean, stats["mean"])  # fitted from the dataset's statistics
    assert detector.names == ["x", "y", "vx", "vy"] and detector.count == 160
    assert detector.flag_dataset(clean) == []
    injected = {(1, 7): np.array([0.0, 9.0, 0.0, 0.0]), (3, 30): np.array([0.0, 0.0, 0.0, -12.0])}
    _dataset(dirty, np.random.default_rng(4), injected)
    trim_episode(dirty, 3, start_frame=10, end_frame=40)  # frame indexes stay those of the stored episode
    flags = detector.flag_dataset(dirty)
    assert [(f.episode_index, f.frame_index, f.feature_index) for f in flags] == [(1, 7, 1), (3, 30, 3)]
    assert "y is" in flags[0].reason and "σ from the mean" in flags[0].reason


def test_ood_rate_is_an_evaluation_metric_over_episodes() -> None:
    rng = np.random.default_rng(5)
    detector = OODDetector.fit(rng.normal(size=(3000, 2)))
    states = rng.normal(size=(100, 2)) * 0.5
    states[:10, 0] = 20.0
    episodes = [EpisodeArrays(columns={"observation.state": states[:50]}, task="t"),
                EpisodeArrays(columns={"observation.state": states[50:]}, task="t")]
    assert ood_rate(detector, episodes) == pytest.approx(0.10)
    assert ood_rate(detector, states) == pytest.approx(0.10)


def test_save_and_load_give_the_same_scores(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    detector = OODDetector.fit(correlated(rng, 1000), z_threshold=2.5, shrinkage=0.1)
    path = detector.save(tmp_path / "ood.json")
    loaded = OODDetector.load(path)
    probe = correlated(rng, 50) * 1.5
    np.testing.assert_allclose(loaded.score(probe).mahalanobis, detector.score(probe).mahalanobis)
    assert loaded.flags(probe).tolist() == detector.flags(probe).tolist()
    assert (loaded.z_threshold, loaded.shrinkage, loaded.count) == (2.5, 0.1, 1000)
    path.write_text('{"format_version": 99}')
    with pytest.raises(InvalidInput) as err:
        OODDetector.load(path)
    assert err.value.field == "detector"


def test_bad_input_names_the_field(tmp_path: Path) -> None:
    detector = OODDetector.fit(np.random.default_rng(7).normal(size=(100, 3)))
    with pytest.raises(InvalidInput) as err:
        detector.score(np.zeros((2, 4)))
    assert err.value.field == "states" and err.value.allowed == "(N, 3) or (3,)"
    with pytest.raises(InvalidInput, match="shrinkage"):
        OODDetector.fit(np.zeros((10, 2)), shrinkage=1.5)
    with pytest.raises(InvalidInput, match="z_threshold"):
        OODDetector.fit(np.random.default_rng(0).normal(size=(10, 2)), z_threshold=0)
    _dataset(tmp_path / "ds", np.random.default_rng(8), {})
    with pytest.raises(InvalidInput) as err:
        OODDetector.from_dataset(tmp_path / "ds", feature="action")
    assert err.value.field == "feature" and err.value.allowed == ["observation.state"]
