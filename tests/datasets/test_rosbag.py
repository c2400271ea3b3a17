"""ROS 2 bags: the tests write sqlite3 and MCAP bags with rosbags, then import and resample them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from flywheel.datasets.rosbag import TopicMap, import_rosbag
from flywheel.errors import InvalidInput, NotFound

TS = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_700_000_000 * 10**9  # bag clock origin, ns
MS = 10**6


def _msg(msgtype: str, /, **kw: Any) -> Any:
    return TS.types[msgtype](**kw)


def _header(t: int) -> Any:
    stamp = _msg("builtin_interfaces/msg/Time", sec=t // 10**9, nanosec=t % 10**9)
    return _msg("std_msgs/msg/Header", stamp=stamp, frame_id="base")


def _joint(t: int, k: int) -> Any:
    empty = np.array([], np.float64)
    return _msg("sensor_msgs/msg/JointState", header=_header(t), name=["j0", "j1"],
                position=np.array([k, -k], np.float64), velocity=empty, effort=empty)  # fmt: skip


def _twist(k: int) -> Any:
    v3 = "geometry_msgs/msg/Vector3"
    return _msg("geometry_msgs/msg/Twist", linear=_msg(v3, x=float(k), y=0.5, z=0.0),
                angular=_msg(v3, x=0.0, y=0.0, z=2.0 * k))  # fmt: skip


def _array(k: int) -> Any:
    layout = _msg("std_msgs/msg/MultiArrayLayout", dim=[], data_offset=0)
    return _msg("std_msgs/msg/Float64MultiArray", layout=layout, data=np.array([k, k + 0.25, k + 0.5]))


def _image(t: int, k: int, encoding: str = "rgb8") -> Any:
    h, w = 3, 4
    rgb = np.full((h, w, 3), k, np.uint8)
    rgb[..., 1] = np.arange(w, dtype=np.uint8)
    rgb[..., 2] = 200
    data = rgb[..., ::-1] if encoding == "bgr8" else rgb
    return _msg("sensor_msgs/msg/Image", header=_header(t), height=h, width=w, encoding=encoding,
                is_bigendian=0, step=w * 3, data=np.ascontiguousarray(data).ravel())  # fmt: skip


def write_bag(path: Path, storage: StoragePlugin, streams: dict[str, list[tuple[int, Any]]]) -> Path:
    """Write {topic: [(t_ns, message), ...]} into a new bag; messages are interleaved by time."""
    with Writer(path, version=9, storage_plugin=storage) as writer:
        conns = {topic: writer.add_connection(topic, msgs[0][1].__msgtype__, typestore=TS)
                 for topic, msgs in streams.items()}  # fmt: skip
        rows = sorted((t, topic, msg) for topic, msgs in streams.items() for t, msg in msgs)
        for t, topic, msg in rows:
            writer.write(conns[topic], t, TS.serialize_cdr(msg, msg.__msgtype__))
    return path


def robot_streams() -> dict[str, list[tuple[int, Any]]]:
    """Joints at 100 Hz from 0 ms (position k at k·10 ms), twists at 50 Hz from 3 ms, one array, images at 10 Hz."""
    return {
        "/joints": [(T0 + k * 10 * MS, _joint(T0 + k * 10 * MS, k)) for k in range(100)],
        "/cmd_vel": [(T0 + 3 * MS + k * 20 * MS, _twist(k)) for k in range(50)],
        "/arm": [(T0 + k * 10 * MS, _array(k)) for k in range(100)],
        "/cam": [(T0 + k * 100 * MS, _image(T0 + k * 100 * MS, k)) for k in range(10)],
    }


MAPS = [
    TopicMap("/joints", "observation.state", "position", names=["j0", "j1"]),
    TopicMap("/cmd_vel", "action", "linear,angular"),
]


@pytest.fixture(params=[StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def bag(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return write_bag(tmp_path / "run1", request.param, robot_streams())


def test_zero_order_hold_on_the_overlap(bag: Path) -> None:
    features, fps, episodes = import_rosbag(bag, MAPS, fps=10, task="wave")
    (ep,) = episodes
    # overlap: 3 ms (first twist) .. 983 ms (last twist) -> 10 frames at 3, 103, ..., 903 ms
    assert ep.num_frames == 10 and fps == 10 and ep.task == "wave"
    k = np.arange(10)
    np.testing.assert_array_equal(ep.columns["observation.state"], np.stack([10 * k, -10 * k], 1))
    expected_action = np.stack([5 * k, np.full(10, 0.5), 0 * k, 0 * k, 0 * k, 10 * k], 1)
    np.testing.assert_array_equal(ep.columns["action"], expected_action)
    assert ep.columns["action"].dtype == np.float32
    assert features == {
        "observation.state": {"dtype": "float32", "shape": [2], "names": ["j0", "j1"]},
        "action": {"dtype": "float32", "shape": [6], "names": None},
    }
    assert ep.metadata["storage"] in ("sqlite3", "mcap") and ep.metadata["start_ns"] == T0 + 3 * MS


def test_linear_interpolation(bag: Path) -> None:
    _, _, (ep,) = import_rosbag(bag, MAPS, fps=10, method="linear")
    k = np.arange(10)
    np.testing.assert_allclose(ep.columns["observation.state"], np.stack([10 * k + 0.3, -(10 * k + 0.3)], 1),
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(ep.columns["action"][:, 0], 5 * k, rtol=1e-6)  # twists sit on the grid


def test_multiarray_data_and_camera_frames(bag: Path) -> None:
    maps = [TopicMap("/arm", "observation.arm", "data", dtype="float64"),
            TopicMap("/cam", "observation.images.cam", dtype="video")]  # fmt: skip
    features, _, (ep,) = import_rosbag(bag, maps, fps=20)
    # overlap 0 .. 900 ms at 20 fps -> 19 frames at 0, 50, ..., 900 ms
    assert ep.num_frames == 19
    k = np.arange(19) * 5
    np.testing.assert_array_equal(ep.columns["observation.arm"], np.stack([k, k + 0.25, k + 0.5], 1))
    cam = ep.columns["observation.images.cam"]
    assert cam.dtype == np.uint8 and cam.shape == (19, 3, 4, 3)
    assert cam[:, 0, 0, 0].tolist() == [i // 2 for i in range(19)]  # frame k of the camera, held
    assert cam[0, 0, :, 1].tolist() == [0, 1, 2, 3] and int(cam[0, 0, 0, 2]) == 200
    assert features["observation.images.cam"]["shape"] == [3, 4, 3]


def test_bgr_images_become_rgb(tmp_path: Path) -> None:
    streams = {"/cam": [(T0 + k * 100 * MS, _image(T0 + k * 100 * MS, k, "bgr8")) for k in range(3)]}
    path = write_bag(tmp_path / "bgr", StoragePlugin.SQLITE3, streams)
    _, _, (ep,) = import_rosbag(path, [TopicMap("/cam", "observation.images.cam", dtype="video")], fps=10)
    assert ep.columns["observation.images.cam"][2, 0, 3].tolist() == [2, 3, 200]


def test_split_on_marker_topic_with_tasks(tmp_path: Path) -> None:
    streams = robot_streams()
    streams["/episode"] = [(T0 + 400 * MS, _msg("std_msgs/msg/String", data="pick")),
                           (T0 + 700 * MS, _msg("std_msgs/msg/String", data="place"))]  # fmt: skip
    path = write_bag(tmp_path / "split", StoragePlugin.MCAP, streams)
    _, _, episodes = import_rosbag(path, MAPS, fps=10, task="start", split_topic="/episode")
    assert [e.task for e in episodes] == ["start", "pick", "place"]
    assert [e.num_frames for e in episodes] == [4, 3, 3]  # 3..383 ms, 403..603 ms, 703..903 ms
    assert episodes[1].columns["observation.state"][0].tolist() == [40, -40]


def test_header_clock(tmp_path: Path) -> None:
    # receive times are late by a jittery 0..9 ms; header stamps are exact
    streams = {"/joints": [(T0 + k * 10 * MS + (k % 10) * MS, _joint(T0 + k * 10 * MS, k)) for k in range(50)]}
    path = write_bag(tmp_path / "stamps", StoragePlugin.SQLITE3, streams)
    maps = [TopicMap("/joints", "observation.state", "position")]
    _, _, (ep,) = import_rosbag(path, maps, fps=100, clock="header")
    assert ep.columns["observation.state"][:, 0].tolist() == list(range(50))
    _, _, (late,) = import_rosbag(path, maps, fps=100)
    assert late.columns["observation.state"][:, 0].tolist() != list(range(50))


def test_unknown_topic_names_the_topics_in_the_bag(bag: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        import_rosbag(bag, [TopicMap("/nope", "action")], fps=10)
    assert info.value.field == "mappings[0].topic" and "/nope" in str(info.value)
    assert info.value.allowed == ["/arm", "/cam", "/cmd_vel", "/joints"]


def test_missing_field_names_the_message_fields(bag: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        import_rosbag(bag, [MAPS[0], TopicMap("/joints", "observation.x", "positon")], fps=10)
    assert info.value.field == "mappings[1].field" and "positon" in str(info.value)
    assert info.value.allowed == ["header", "name", "position", "velocity", "effort"]
    with pytest.raises(InvalidInput) as info:
        import_rosbag(bag, [TopicMap("/cmd_vel", "action", "linear.w")], fps=10)
    assert "geometry_msgs/msg/Vector3 has no field 'w'" in str(info.value)


def test_non_numeric_fields_and_bad_arguments_are_refused(bag: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="reaches a list of str value"):
        import_rosbag(bag, [TopicMap("/joints", "observation.names", "name")], fps=10)
    with pytest.raises(InvalidInput) as info:
        import_rosbag(bag, [TopicMap("/joints", "observation.state", "position", dtype="complex64")], fps=10)
    assert info.value.field == "mappings[0].dtype" and "float32" in info.value.allowed
    with pytest.raises(InvalidInput) as info:
        import_rosbag(bag, MAPS, fps=10, method="cubic")  # type: ignore[arg-type]
    assert info.value.allowed == ["hold", "linear"]
    with pytest.raises(InvalidInput) as info:
        import_rosbag(bag, [TopicMap("/joints", "observation.state", "header.stamp.sec", dtype="video")], fps=10)
    assert info.value.allowed == ["sensor_msgs/msg/Image"]
    with pytest.raises(NotFound):
        import_rosbag(tmp_path / "missing", MAPS, fps=10)
    (tmp_path / "junk").mkdir()
    with pytest.raises(InvalidInput, match="not a readable rosbag2"):
        import_rosbag(tmp_path / "junk", MAPS, fps=10)


def test_topics_that_never_overlap(tmp_path: Path) -> None:
    streams = {"/joints": [(T0 + k * MS, _joint(T0, k)) for k in range(5)],
               "/cmd_vel": [(T0 + (100 + k) * MS, _twist(k)) for k in range(5)]}  # fmt: skip
    path = write_bag(tmp_path / "apart", StoragePlugin.SQLITE3, streams)
    with pytest.raises(InvalidInput, match="never overlap"):
        import_rosbag(path, MAPS, fps=10)
