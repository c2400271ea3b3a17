"""The neutral in-memory form of one episode, spoken by every importer and exporter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EpisodeArrays:
    """One episode as column arrays.

    Attributes:
        columns: feature key -> array of shape (T, *feature_shape). Every column has the same T.
            Camera features (dtype "video") are uint8 arrays of shape (T, H, W, 3).
        task: the natural-language task of the episode.
        success: whether the episode achieved its task, if known.
        metadata: free-form extra fields (source, operator id, ...), JSON-serialisable.

    Example:
        >>> ep = EpisodeArrays({"observation.state": np.zeros((3, 2), np.float32)}, task="look")
        >>> ep.num_frames
        3
    """

    columns: dict[str, np.ndarray]
    task: str
    success: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """The number of frames (T), 0 for an episode with no columns."""
        return len(next(iter(self.columns.values()))) if self.columns else 0
