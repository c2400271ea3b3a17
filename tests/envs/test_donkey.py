"""DonkeySimEnv against the fake simulator in fake_donkey_server.py (no Unity, no network beyond 127.0.0.1)."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import flywheel.envs
from flywheel.envs.donkey import DonkeySimEnv, SimulatorUnavailable
from flywheel.envs.donkey.protocol import LineDecoder, control
from flywheel.envs.track import PurePursuitExpert
from flywheel.errors import InvalidInput
from tests.envs.fake_donkey_server import IMAGE_SHAPE, FakeDonkeyServer


@pytest.fixture
def server() -> Iterator[FakeDonkeyServer]:
    with FakeDonkeyServer(max_seconds=20.0) as fake:
        yield fake


def _env(server: FakeDonkeyServer, scene: str = "generated_road", **kwargs) -> DonkeySimEnv:
    return DonkeySimEnv(scene, port=server.port, reset_delay=0.0, timeout=5.0, **kwargs)


def test_handshake_loads_the_requested_scene(server: FakeDonkeyServer) -> None:
    env = _env(server, "mountain_track")
    try:
        kinds = [m["msg_type"] for m in server.received]
        assert kinds[:3] == ["get_protocol_version", "get_scene_names", "load_scene"]
        assert server.received[2]["scene_name"] == "mountain_track"
        assert env.protocol_version == "2"
        assert server.env is not None and server.env.track.name == "mountain"
    finally:
        env.close()


def test_reset_and_step_return_image_reward_and_donkey_info(server: FakeDonkeyServer) -> None:
    env = _env(server)
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == IMAGE_SHAPE == env.observation_space.shape and obs.dtype == np.uint8
        assert server.messages("reset_car")
        for _ in range(5):
            obs, reward, terminated, truncated, info = env.step(np.array([0.1, 0.8], np.float32))
        assert obs in env.observation_space
        assert {"cte", "speed", "pos", "hit", "lap_count", "lap_time"} <= set(info)
        assert info["speed"] == pytest.approx(server.env.car.speed) and info["speed"] > 0.5
        assert info["cte"] == pytest.approx(server.env.track.nearest(server.env.car.x, server.env.car.y,
                                                                     server.env._seg)[2])
        assert reward == pytest.approx(info["speed"] * (1 - abs(info["cte"]) / 8.0))
        assert not terminated and not truncated
        assert obs.mean() > 50  # a real decoded picture, not zeros
    finally:
        env.close()


def test_control_messages_carry_steering_throttle_and_brake_as_strings(server: FakeDonkeyServer) -> None:
    env = _env(server)
    try:
        env.reset(seed=0)
        env.step([0.25, 0.5])
        env.step([2.0, -1.0])  # clipped to the action space
        controls = server.messages("control")
        assert controls[0] == {"msg_type": "control", "steering": "0.0", "throttle": "0.0", "brake": "1.0"}
        assert controls[-2:] == [control(0.25, 0.5), control(1.0, 0.0)]
        assert controls[-1] == {"msg_type": "control", "steering": "1.0", "throttle": "0.0", "brake": "0.0"}
    finally:
        env.close()


def test_driving_off_the_road_terminates_with_a_penalty(server: FakeDonkeyServer) -> None:
    env = _env(server, max_cte=2.0, max_steps=500)
    try:
        env.reset(seed=0)
        for _ in range(500):
            _, reward, terminated, truncated, info = env.step([1.0, 1.0])
            if terminated or truncated:
                break
        assert terminated and abs(info["cte"]) > 2.0 and reward == -1.0
    finally:
        env.close()


def test_laps_are_counted_from_start_line_crossings(server: FakeDonkeyServer) -> None:
    env = _env(server, observation="vector", max_steps=800)
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == (5,) and obs.dtype == np.float32
        expert = PurePursuitExpert(server.env)  # lock-step: the fake car is exactly where the telemetry says
        while info["lap_count"] < 1:
            obs, _, terminated, truncated, info = env.step(expert.act())
            assert not (terminated or truncated)
        assert 15 < info["lap_time"] < 40
        assert obs[0] == pytest.approx(info["speed"])
    finally:
        env.close()


def test_gymnasium_check_env_passes_against_the_fake_simulator(server: FakeDonkeyServer) -> None:
    env = _env(server)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_registered_ids_take_host_and_port(server: FakeDonkeyServer) -> None:
    assert "flywheel/donkey-warehouse-v0" in gym.registry
    env = gym.make("flywheel/donkey-warehouse-v0", host="127.0.0.1", port=server.port, reset_delay=0.0)
    try:
        assert server.messages("load_scene")[0]["scene_name"] == "warehouse"
        assert env.unwrapped.scene == "warehouse"
    finally:
        env.close()
    assert len(flywheel.envs.DONKEY_SCENES) >= 5


def test_a_simulator_already_in_a_scene_is_used_as_is() -> None:
    with FakeDonkeyServer(start_in_scene="warehouse", max_seconds=10.0) as fake:
        env = DonkeySimEnv("warehouse", port=fake.port, reset_delay=0.0, timeout=5.0)
        try:
            env.reset(seed=0)
            assert not fake.messages("load_scene")
        finally:
            env.close()


def test_unknown_scene_lists_the_simulators_scenes(server: FakeDonkeyServer) -> None:
    with pytest.raises(InvalidInput) as err:
        _env(server, "monaco")
    assert err.value.field == "scene" and "mountain_track" in err.value.allowed


def test_connection_refused_names_host_and_port() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SimulatorUnavailable) as err:
        DonkeySimEnv(port=port, timeout=2.0)
    assert f"127.0.0.1:{port}" in str(err.value) and "refused" in str(err.value)
    assert err.value.hint and "9091" in err.value.hint


def test_a_vanished_simulator_gives_a_clear_error() -> None:
    fake = FakeDonkeyServer(max_seconds=10.0).start()
    env = DonkeySimEnv(port=fake.port, reset_delay=0.0, timeout=2.0)
    try:
        env.reset(seed=0)
        fake.stop()
        with pytest.raises(SimulatorUnavailable, match=f"127.0.0.1:{fake.port}"):
            for _ in range(5):
                env.step([0.0, 0.0])
    finally:
        env.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"port": 0}, "port"), ({"max_cte": 0.0}, "max_cte"), ({"steer_limit": 1.5}, "steer_limit"),
     ({"throttle_min": 0.5, "throttle_max": 0.2}, "throttle_min/throttle_max"), ({"frame_skip": 0}, "frame_skip"),
     ({"observation": "lidar"}, "observation"), ({"cam_resolution": (120, 160)}, "cam_resolution")],
)
def test_bad_arguments_are_refused_before_connecting(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        DonkeySimEnv(**kwargs)
    assert err.value.field == field


def test_line_decoder_reassembles_split_messages_and_skips_garbage() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b'{"msg_type": "tele') == []
    assert decoder.feed(b'metry", "cte": 1.5}\nnot json\n{"no_type": 1}\n') == [{"msg_type": "telemetry", "cte": 1.5}]
