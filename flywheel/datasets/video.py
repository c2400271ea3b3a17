"""Camera features as mp4 files: encode, decode, and short showcase clips (mp4 or GIF).

Storage settings (``encode_video``): H.264 (``libx264``) in an mp4 container, ``yuv444p`` (no chroma
subsampling, so odd heights and widths need no padding), ``crf=0`` by default. At ``crf=0`` H.264 is
lossless in YUV space; the only loss is the RGB↔YUV conversion rounding, so every decoded pixel is
within ``LOSSLESS_TOLERANCE`` (3) levels of the input, whatever the content (noise included). Larger
``crf`` values give smaller files at a content-dependent loss (mean absolute error about 1 level at
crf 10 on natural images, much more on noise).

Each frame gets ``pts = index`` in a ``1/fps`` time base and B-frames are flushed at the end, so
``decode_video`` returns exactly as many frames as were encoded.

Every file is written crash-safe: encode into a temporary file in the target folder, fsync, rename.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import av
import numpy as np

from flywheel.durable import commit_temp, temp_path
from flywheel.errors import IntegrityError, InvalidInput, NotFound

#: The codec and pixel format used for dataset storage.
CODEC = "libx264"
PIX_FMT = "yuv444p"
#: The largest per-channel absolute difference between input and decoded pixels at ``crf=0``.
LOSSLESS_TOLERANCE = 3
#: Showcase clips: the pixel format browsers play, and the largest frame rate a GIF gets.
SHOWCASE_PIX_FMT = "yuv420p"
GIF_MAX_FPS = 25

_FORMATS = ("mp4", "gif")


def _check_frames(frames: np.ndarray, field: str = "frames") -> np.ndarray:
    """Validate a (T, H, W, 3) uint8 stack and return it C-contiguous."""
    if not isinstance(frames, np.ndarray):
        raise InvalidInput(f"must be a numpy array, got {type(frames).__name__}", field=field)
    if frames.dtype != np.uint8:
        raise InvalidInput(f"must have dtype uint8, got {frames.dtype}", field=field, allowed="uint8")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise InvalidInput(f"must have shape (T, H, W, 3), got {tuple(frames.shape)}", field=field)
    if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
        raise InvalidInput(f"must hold at least one non-empty frame, got {tuple(frames.shape)}", field=field)
    return np.ascontiguousarray(frames)


def _check_fps(fps: int) -> int:
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        raise InvalidInput(f"must be a positive integer, got {fps!r}", field="fps")
    return int(fps)


def _write(
    path: Path,
    fmt: str,
    codec: str,
    fps: int,
    width: int,
    height: int,
    pix_fmt: str,
    options: dict[str, str],
    frames: list[av.VideoFrame],
) -> None:
    """Encode ``frames`` into ``path`` crash-safe."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with av.open(str(tmp), mode="w", format=fmt) as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.options = options
            for frame in frames:
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        commit_temp(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _rgb_frames(frames: np.ndarray) -> list[av.VideoFrame]:
    out = []
    for i, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        out.append(frame)
    return out


def encode_video(frames: np.ndarray, path: Path, fps: int, *, crf: int = 0) -> None:
    """Encode RGB frames into an mp4 file (H.264, yuv444p), crash-safe.

    Args:
        frames: uint8 array of shape (T, H, W, 3), T ≥ 1; H and W may be odd.
        path: the mp4 file to write; its folder is created; an existing file is replaced atomically.
        fps: frames per second (positive integer).
        crf: H.264 constant rate factor, 0 (near-lossless, the default) to 51.

    Raises:
        InvalidInput: frames of the wrong dtype/shape, a non-positive fps or a crf outside 0..51.

    Example:
        >>> frames = np.zeros((4, 9, 11, 3), np.uint8)
        >>> encode_video(frames, Path("/tmp/cam.mp4"), fps=10)
        >>> decode_video(Path("/tmp/cam.mp4")).shape
        (4, 9, 11, 3)
    """
    frames = _check_frames(frames)
    fps = _check_fps(fps)
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise InvalidInput(f"must be an integer, got {crf!r}", field="crf", allowed="0..51")
    _, height, width, _ = frames.shape
    _write(Path(path), "mp4", CODEC, fps, width, height, PIX_FMT, {"crf": str(crf)}, _rgb_frames(frames))


def decode_video(path: Path) -> np.ndarray:
    """Decode every frame of the first video stream of a file into RGB.

    Args:
        path: a video file (any codec and container FFmpeg reads).

    Returns:
        uint8 array of shape (T, H, W, 3), one entry per encoded frame.

    Raises:
        NotFound: the file does not exist.
        IntegrityError: the file is not a readable video (truncated, corrupt) or has no frames.

    Example:
        >>> decode_video(Path("/tmp/cam.mp4")).dtype
        dtype('uint8')
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound("video file", path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise IntegrityError(f"{path} has no video stream")
            images = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except av.FFmpegError as exc:
        raise IntegrityError(f"{path} is not a readable video: {exc}") from exc
    if not images:
        raise IntegrityError(f"{path} contains no video frames")
    return np.stack(images)


def _resize(frames: np.ndarray, max_width: int | None) -> np.ndarray:
    """Downscale so the width is at most ``max_width``, keeping the aspect ratio (nearest neighbour)."""
    _, height, width, _ = frames.shape
    if max_width is None or width <= max_width:
        return frames
    new_w = max_width
    new_h = max(1, round(height * new_w / width))
    rows = (np.arange(new_h) * height / new_h).astype(np.int64)
    cols = (np.arange(new_w) * width / new_w).astype(np.int64)
    return frames[:, rows][:, :, cols]


def _palette_frames(frames: np.ndarray) -> list[av.VideoFrame]:
    """Quantise RGB frames onto a fixed 6×7×6 palette (252 colours) as pal8 frames for GIF."""
    levels = np.array([6, 7, 6])
    idx = np.rint(frames.astype(np.float32) * (levels - 1) / 255.0).astype(np.uint8)
    index = (idx[..., 0] * (levels[1] * levels[2]) + idx[..., 1] * levels[2] + idx[..., 2]).astype(np.uint8)
    r, g, b = np.meshgrid(*[np.linspace(0, 255, n).round().astype(np.uint8) for n in levels], indexing="ij")
    palette = np.zeros((256, 4), np.uint8)  # ARGB
    palette[: r.size, 0] = 255
    palette[: r.size, 1], palette[: r.size, 2], palette[: r.size, 3] = r.ravel(), g.ravel(), b.ravel()
    out = []
    for i, image in enumerate(index):
        frame = av.VideoFrame.from_ndarray((np.ascontiguousarray(image), palette), format="pal8")
        frame.pts = i
        out.append(frame)
    return out


def render_episode(
    frames: np.ndarray,
    path: Path,
    fps: int,
    *,
    fmt: Literal["mp4", "gif"] = "mp4",
    max_seconds: float = 10.0,
    max_width: int | None = 320,
) -> int:
    """Render the start of an episode's camera stream as a short showcase clip.

    The clip keeps at most ``max_seconds`` of footage, is downscaled to ``max_width`` pixels wide, and is
    written as a browser-playable mp4 (H.264 yuv420p, even size, crf 23) or as a looping GIF (fixed
    252-colour palette, at most ``GIF_MAX_FPS`` frames per second by dropping frames).

    Args:
        frames: uint8 array (T, H, W, 3).
        path: the clip file to write (crash-safe).
        fps: frame rate of ``frames``.
        fmt: "mp4" or "gif".
        max_seconds: the longest clip, in seconds of the episode (> 0).
        max_width: the widest clip in pixels, or None to keep the size.

    Returns:
        The number of frames in the clip.

    Raises:
        InvalidInput: bad frames, fps, format, max_seconds or max_width.

    Example:
        >>> render_episode(np.zeros((100, 48, 64, 3), np.uint8), Path("/tmp/ep.gif"), 30, fmt="gif",
        ...                max_seconds=2)
        30
    """
    frames = _check_frames(frames)
    fps = _check_fps(fps)
    if fmt not in _FORMATS:
        raise InvalidInput(f"unsupported clip format {fmt!r}", field="fmt", allowed=list(_FORMATS))
    if not isinstance(max_seconds, int | float) or not max_seconds > 0:
        raise InvalidInput(f"must be a positive number, got {max_seconds!r}", field="max_seconds")
    if max_width is not None and (not isinstance(max_width, int) or max_width < 2):
        raise InvalidInput(f"must be an integer ≥ 2 or None, got {max_width!r}", field="max_width")
    frames = _resize(frames[: max(1, int(max_seconds * fps))], max_width)
    if fmt == "gif":
        step = -(-fps // GIF_MAX_FPS)  # ceil
        clip = frames[::step]
        _, height, width, _ = clip.shape
        _write(
            Path(path),
            "gif",
            "gif",
            max(1, round(fps / step)),
            width,
            height,
            "pal8",
            {},
            _palette_frames(clip),
        )
        return len(clip)
    # yuv420p needs even sizes: repeat the last row/column when odd.
    _, height, width, _ = frames.shape
    clip = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    _write(
        Path(path),
        "mp4",
        CODEC,
        fps,
        clip.shape[2],
        clip.shape[1],
        SHOWCASE_PIX_FMT,
        {"crf": "23"},
        _rgb_frames(clip),
    )
    return len(clip)
