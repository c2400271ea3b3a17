"""Camera streams: mp4 round trip, odd sizes, crash-safe writes, showcase clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from flywheel.datasets.video import LOSSLESS_TOLERANCE, decode_video, encode_video, render_episode
from flywheel.errors import IntegrityError, InvalidInput, NotFound


def _frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _smooth(t: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack(
        [
            np.stack([(xx * 3 + i * 5) % 256, (yy * 4 + i) % 256, np.full_like(xx, 40 + i)], -1)
            for i in range(t)
        ]
    ).astype(np.uint8)


@pytest.mark.parametrize(("t", "h", "w"), [(1, 8, 8), (17, 33, 47), (5, 1, 3)])
def test_round_trip_keeps_frame_count_size_and_pixels(tmp_path: Path, t: int, h: int, w: int) -> None:
    frames = _frames(t, h, w, seed=t)
    path = tmp_path / "cam.mp4"
    encode_video(frames, path, fps=30)
    out = decode_video(path)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frames).max() <= LOSSLESS_TOLERANCE


def test_higher_crf_is_smaller_and_still_close_on_smooth_images(tmp_path: Path) -> None:
    frames = _smooth(20, 48, 64)
    encode_video(frames, tmp_path / "a.mp4", fps=10)
    encode_video(frames, tmp_path / "b.mp4", fps=10, crf=18)
    assert (tmp_path / "b.mp4").stat().st_size < (tmp_path / "a.mp4").stat().st_size
    out = decode_video(tmp_path / "b.mp4")
    assert out.shape == frames.shape
    assert np.abs(out.astype(int) - frames).mean() < 3.0


def test_file_has_requested_rate_and_codec(tmp_path: Path) -> None:
    path = tmp_path / "cam.mp4"
    encode_video(_frames(12, 16, 16), path, fps=15)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 15
        assert stream.frames in (0, 12)


def test_write_is_atomic_and_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sub" / "cam.mp4"
    encode_video(_frames(3, 8, 8, seed=1), path, fps=5)
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", boom)
    with pytest.raises(RuntimeError):
        encode_video(_frames(3, 8, 8, seed=2), path, fps=5)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["cam.mp4"]


@pytest.mark.parametrize(
    ("frames", "fps", "field"),
    [
        (np.zeros((2, 4, 4, 3), np.float32), 10, "frames"),
        (np.zeros((2, 4, 4), np.uint8), 10, "frames"),
        (np.zeros((0, 4, 4, 3), np.uint8), 10, "frames"),
        (np.zeros((2, 4, 4, 3), np.uint8), 0, "fps"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, frames: np.ndarray, fps: int, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        encode_video(frames, tmp_path / "x.mp4", fps=fps)
    assert info.value.field == field
    assert not (tmp_path / "x.mp4").exists()


def test_decode_reports_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        decode_video(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video at all" * 10)
    with pytest.raises(IntegrityError, match=r"bad\.mp4"):
        decode_video(bad)


def test_render_gif_is_capped_in_length_size_and_rate(tmp_path: Path) -> None:
    frames = _smooth(120, 60, 200)
    n = render_episode(frames, tmp_path / "ep.gif", fps=50, fmt="gif", max_seconds=1.0, max_width=100)
    assert n == 25  # 1 s at 50 fps = 50 frames, every 2nd kept for a 25 fps GIF
    out = decode_video(tmp_path / "ep.gif")
    assert out.shape == (25, 30, 100, 3)
    # fixed palette: close to the (downscaled) source colours
    assert np.abs(out[0].astype(int) - frames[0, ::2, ::2]).mean() < 30


def test_render_mp4_pads_odd_sizes_for_browsers(tmp_path: Path) -> None:
    frames = _smooth(10, 31, 45)
    n = render_episode(frames, tmp_path / "ep.mp4", fps=10, max_seconds=0.5, max_width=None)
    assert n == 5
    out = decode_video(tmp_path / "ep.mp4")
    assert out.shape == (5, 32, 46, 3)
    with av.open(str(tmp_path / "ep.mp4")) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_render_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        render_episode(_frames(2, 4, 4), tmp_path / "x.webm", fps=10, fmt="webm")  # type: ignore[arg-type]
    assert info.value.field == "fmt" and info.value.allowed == ["mp4", "gif"]
