"""make_env, make_vec_env, expert_for and features_for: bad input refused with the field named; experts label states."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from flywheel.errors import InvalidInput
from flywheel.training.envs import expert_for, features_for, make_env, make_vec_env, registered_ids


def test_unknown_env_id_names_the_field_and_lists_flywheel_ids() -> None:
    with pytest.raises(InvalidInput) as caught:
        make_env("flywheel/Tracc-v0")
    assert caught.value.field == "env_id"
    assert "flywheel/Track-v0" in caught.value.allowed and "flywheel/ReachyLookAt-v0" in caught.value.allowed
    assert all(i.startswith("flywheel/") for i in caught.value.allowed)


def test_bad_env_kwargs_are_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        make_env("flywheel/Track-v0", {"track": "moon"})
    assert caught.value.field == "env_kwargs.track"
    assert "mountain" in caught.value.allowed
    with pytest.raises(InvalidInput) as caught:
        make_env("flywheel/Track-v0", {"colour": "red"})
    assert caught.value.field == "env_kwargs" and "colour" in str(caught.value)


def test_wrapper_that_does_not_fit_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        make_env("flywheel/ReachyLookAt-v0", discretize=(5, 3))  # 4-D head-pose actions
    assert caught.value.field == "env.action_space"


def test_seeded_envs_repeat_and_wrappers_apply() -> None:
    kwargs = {"random_start": True}
    a = make_env("flywheel/Track-v0", kwargs, seed=3, speed_reward=True, discretize=(5, 3))
    b = make_env("flywheel/Track-v0", kwargs, seed=3, speed_reward=True, discretize=(5, 3))
    assert a.action_space == gym.spaces.Discrete(15)
    np.testing.assert_array_equal(a.reset(seed=3)[0], b.reset(seed=3)[0])
    _, reward, *_, info = a.step(7)
    assert reward == pytest.approx(info["speed"] * (1 - abs(info["cte"]) / a.unwrapped.max_cte))
    venv = make_vec_env("flywheel/Track-v0", kwargs, n_envs=2, seed=5)
    first = venv.reset()
    assert first.shape == (2, 13) and not np.allclose(first[0], first[1])  # env i is seeded with seed + i


def test_expert_for_an_env_without_expert_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        expert_for(gym.make("CartPole-v1"))
    assert caught.value.field == "env" and "flywheel/Track-v0" in caught.value.allowed


def test_track_expert_labels_states_the_learner_visits() -> None:
    """DAgger: a poor learner drives, the expert labels; off to the left, the label steers right."""
    env = make_env("flywheel/Track-v0", {"track": "warehouse"}, seed=0)
    expert = expert_for(env)
    obs, info = env.reset(seed=0)
    assert abs(expert(obs)[0]) < 0.2  # on the centre line of a straight: about straight ahead
    while info["cte"] < 1.0:  # the learner drifts left (steer +1)
        obs, _, terminated, _, info = env.step(np.array([1.0, 0.6], np.float32))
        assert not terminated
    assert expert(obs)[0] < -0.5


def test_discretised_expert_answers_indices_and_drives() -> None:
    env = make_env("flywheel/Track-v0", {"track": "generated-roads", "max_steps": 400}, discretize=(7, 3))
    expert = expert_for(env)
    obs, _ = env.reset(seed=0)
    total = 0.0
    for _ in range(400):
        action = expert(obs)
        assert isinstance(action, int) and 0 <= action < 21
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        if terminated or truncated:
            break
    assert total > 100.0 and not terminated  # 400 steps = 20 s on the road at several m/s


def test_reachy_expert_resets_itself_at_a_new_episode() -> None:
    env = make_env("flywheel/ReachyLookAt-v0")
    expert = expert_for(env)
    obs, _ = env.reset(seed=1)
    first = [expert(obs)]
    for _ in range(30):
        obs, *_ = env.step(first[-1])
        first.append(expert(obs))
    obs, _ = env.reset(seed=1)  # same episode again: the integral term must not carry over
    again = expert(obs)
    np.testing.assert_allclose(again, first[0], atol=1e-6)


def test_features_for_declares_the_spaces() -> None:
    feats = features_for(make_env("flywheel/ReachyLookAt-v0"))
    assert feats["observation.state"]["shape"] == [make_env("flywheel/ReachyLookAt-v0").observation_space.shape[0]]
    assert feats["action"] == {"dtype": "float32", "shape": [4], "names": None}
    assert features_for(make_env("flywheel/Track-v0", discretize=(5, 3)))["action"]["dtype"] == "int64"
    assert "flywheel/ReachyShake-v0" in registered_ids()
