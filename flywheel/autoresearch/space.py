"""The search space: typed parameters declared in YAML or Python, encoded to the unit cube and back exactly.

Encoding (one place, used by the GP, the acquisition and the plots):

- ``int``: one dimension; value ``v`` in ``[low, high]`` maps to the centre of its own equal-width cell,
  ``(v - low + 0.5) / (high - low + 1)`` (on a log scale with ``log: true``), so uniform sampling of the
  cube draws every integer equally often and decoding is ``floor``: integers come back exact.
- ``float``: one dimension, ``(v - low) / (high - low)`` (of ``log v`` with ``log: true``); decoding rounds to
  ``digits`` significant digits (default 12), so ``0.002`` survives ``exp(log(0.002))`` identical.
- ``categorical``: one-hot, one dimension per choice. Choices have no order (``small``/``large`` nets,
  activation names), so an index would tell the GP that the first and last choice are further apart than
  neighbours; one-hot puts every pair at the same distance and gives each choice its own length-scale.
  Decoding takes the argmax.

Example:
    >>> space = SearchSpace.from_dict({
    ...     "n_steer": {"type": "int", "low": 3, "high": 9},
    ...     "n_throttle": {"type": "int", "low": 1, "high": 5},
    ...     "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    ... })
    >>> p = {"n_steer": 7, "n_throttle": 3, "learning_rate": 0.002}
    >>> space.decode(space.encode(p)) == p
    True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from flywheel.errors import InvalidInput

#: What a parameter declaration may look like (quoted in every declaration error).
ALLOWED_FORMS = (
    "{type: int, low: <int>, high: <int>[, log: true]} | "
    "{type: float, low: <number>, high: <number>[, log: true]} | "
    "{type: categorical, choices: [<value>, ...]}"
)


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def width(self) -> int:
        """How many cube dimensions the parameter takes."""
        return 1


class IntParam(_Param):
    """An integer in ``[low, high]`` (both included), optionally on a log scale.

    Example:
        >>> IntParam(low=3, high=9).decode_one(np.array([IntParam(low=3, high=9).encode_one(7)[0]]))
        7
    """

    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.log and self.low < 1:
            raise ValueError("log: true needs low >= 1")
        return self

    def _edges(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low - 0.5), math.log(self.high + 0.5)
        return self.low - 0.5, self.high + 0.5

    def encode_one(self, value: Any) -> list[float]:
        """The cell centre of ``value`` in [0, 1]."""
        a, b = self._edges()
        if self.log:
            lo, hi = math.log(value - 0.5), math.log(value + 0.5)
            return [((lo + hi) / 2 - a) / (b - a)]
        return [(value - a) / (b - a)]

    def decode_one(self, u: np.ndarray) -> int:
        """The integer whose cell holds ``u[0]``."""
        a, b = self._edges()
        t = a + float(np.clip(u[0], 0.0, 1.0)) * (b - a)
        if self.log:
            t = math.exp(t)
        return int(min(max(math.floor(t + 0.5), self.low), self.high))

    def check(self, value: Any) -> None:
        """Raise ValueError unless ``value`` is an integer in range."""
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError(f"must be an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"{value} is outside [{self.low}, {self.high}]")


class FloatParam(_Param):
    """A real number in ``[low, high]``, optionally on a log scale (then ``low > 0``).

    Example:
        >>> FloatParam(low=1e-4, high=1e-2, log=True).decode_one(np.array([0.5]))
        0.001
    """

    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False
    digits: int = Field(12, ge=1, le=17, description="Significant digits kept when decoding.")

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite")
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be > low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("log: true needs low > 0")
        return self

    def encode_one(self, value: Any) -> list[float]:
        """``value`` scaled to [0, 1]."""
        if self.log:
            return [(math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))]
        return [(float(value) - self.low) / (self.high - self.low)]

    def decode_one(self, u: np.ndarray) -> float:
        """The value at ``u[0]``, rounded to ``digits`` significant digits and clipped to the bounds."""
        t = float(np.clip(u[0], 0.0, 1.0))
        if self.log:
            v = math.exp(math.log(self.low) + t * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + t * (self.high - self.low)
        v = float(f"{v:.{self.digits}g}")
        return min(max(v, self.low), self.high)

    def check(self, value: Any) -> None:
        """Raise ValueError unless ``value`` is a number in range."""
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValueError(f"must be a number, got {value!r}")
        if not self.low <= float(value) <= self.high:
            raise ValueError(f"{value} is outside [{self.low}, {self.high}]")


class CategoricalParam(_Param):
    """One of a list of choices (strings, numbers, booleans), one-hot encoded.

    Example:
        >>> CategoricalParam(choices=["small", "large"]).encode_one("large")
        [0.0, 1.0]
    """

    type: Literal["categorical"] = "categorical"
    choices: list[str | bool | int | float] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if len({repr(c) for c in self.choices}) != len(self.choices):
            raise ValueError("choices must be distinct")
        return self

    @property
    def width(self) -> int:
        """One dimension per choice."""
        return len(self.choices)

    def _index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if type(c) is type(value) and c == value:
                return i
        for i, c in enumerate(self.choices):
            if c == value and not isinstance(value, bool) and not isinstance(c, bool):
                return i
        raise ValueError(f"{value!r} is not one of {self.choices}")

    def encode_one(self, value: Any) -> list[float]:
        """The one-hot vector of ``value``."""
        out = [0.0] * len(self.choices)
        out[self._index(value)] = 1.0
        return out

    def decode_one(self, u: np.ndarray) -> str | bool | int | float:
        """The choice with the largest coordinate."""
        return self.choices[int(np.argmax(u))]

    def check(self, value: Any) -> None:
        """Raise ValueError unless ``value`` is one of the choices."""
        self._index(value)


Param = Annotated[IntParam | FloatParam | CategoricalParam, Field(discriminator="type")]
_PARAM_ADAPTER: TypeAdapter[IntParam | FloatParam | CategoricalParam] = TypeAdapter(Param)


def _parse_param(name: str, decl: Any) -> IntParam | FloatParam | CategoricalParam:
    if isinstance(decl, IntParam | FloatParam | CategoricalParam):
        return decl
    if not isinstance(decl, dict) or decl.get("type") not in ("int", "float", "categorical"):
        raise InvalidInput(f"bad declaration {decl!r}: needs a type of int, float or categorical",
                           field=name, allowed=ALLOWED_FORMS)
    try:
        return _PARAM_ADAPTER.validate_python(decl)
    except ValidationError as exc:
        why = "; ".join(
            (".".join(str(p) for p in e["loc"][1:]) + ": " if len(e["loc"]) > 1 else "") + e["msg"]
            for e in exc.errors()
        )
        raise InvalidInput(f"bad declaration {decl!r}: {why}", field=name, allowed=ALLOWED_FORMS) from None


class SearchSpace:
    """An ordered set of named parameters and their unit-cube encoding.

    Args:
        params: name -> declaration (a ``IntParam``/``FloatParam``/``CategoricalParam`` or its dict form).

    Raises:
        InvalidInput: a declaration is malformed (names the parameter and the allowed forms).

    Example:
        >>> s = SearchSpace(params={"net": {"type": "categorical", "choices": ["small", "large"]},
        ...                         "gamma": {"type": "float", "low": 0.9, "high": 0.999}})
        >>> s.dim, s.names
        (3, ['net', 'gamma'])
    """

    def __init__(self, *, params: dict[str, Any]) -> None:
        if not isinstance(params, dict) or not params:
            raise InvalidInput("a search space needs at least one parameter", field="space", allowed=ALLOWED_FORMS)
        self.params: dict[str, IntParam | FloatParam | CategoricalParam] = {}
        for name, decl in params.items():
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"parameter names must be non-empty strings, got {name!r}", field="space")
            self.params[name] = _parse_param(name, decl)
        self.names = list(self.params)
        self.slices: dict[str, slice] = {}
        start = 0
        for name, p in self.params.items():
            self.slices[name] = slice(start, start + p.width)
            start += p.width
        self.dim = start
        #: Per cube dimension: 0 continuous (float), 1 integer cell, 2 one-hot of a categorical.
        self.kinds = np.zeros(self.dim, dtype=np.int8)
        #: Per integer dimension: number of cells (for snapping), else 0.
        self.cells = np.zeros(self.dim, dtype=np.int64)
        self.groups: list[slice] = []
        for name, p in self.params.items():
            sl = self.slices[name]
            if isinstance(p, IntParam):
                self.kinds[sl] = 1
                self.cells[sl] = p.high - p.low + 1
            elif isinstance(p, CategoricalParam):
                self.kinds[sl] = 2
                self.groups.append(sl)

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> SearchSpace:
        """The space from ``{name: declaration}``."""
        return cls(params=params)

    @classmethod
    def from_yaml(cls, source: str | Path) -> SearchSpace:
        """The space from a YAML file path or YAML text (a mapping of name -> declaration).

        Example:
            >>> SearchSpace.from_yaml("lr: {type: float, low: 1e-4, high: 1e-2, log: true}").names
            ['lr']
        """
        import yaml

        text = Path(source).read_text() if isinstance(source, Path) or (
            "\n" not in str(source) and ":" not in str(source)) else str(source)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"not valid YAML: {exc}", field="space", allowed=ALLOWED_FORMS) from None
        if isinstance(data, dict) and set(data) == {"params"} and isinstance(data["params"], dict):
            data = data["params"]
        if not isinstance(data, dict):
            raise InvalidInput("a search space is a mapping of name -> declaration", field="space",
                               allowed=ALLOWED_FORMS)
        return cls(params=data)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The declarations as plain dicts (the inverse of ``from_dict``)."""
        return {n: p.model_dump() for n, p in self.params.items()}

    def validate(self, params: dict[str, Any]) -> None:
        """Raise InvalidInput unless ``params`` holds exactly this space's names with values in range."""
        missing = [n for n in self.names if n not in params]
        extra = [n for n in params if n not in self.params]
        if missing or extra:
            raise InvalidInput(f"missing {missing}, unknown {extra}", field="params", allowed=self.names)
        for n, p in self.params.items():
            try:
                p.check(params[n])
            except ValueError as exc:
                raise InvalidInput(str(exc), field=n, allowed=ALLOWED_FORMS) from None

    def encode(self, params: dict[str, Any]) -> np.ndarray:
        """The unit-cube point of ``params`` (validated first)."""
        self.validate(params)
        out = np.empty(self.dim)
        for n, p in self.params.items():
            out[self.slices[n]] = p.encode_one(params[n])
        return out

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """The parameters at cube point ``x`` (clipped to the cube)."""
        x = np.asarray(x, dtype=float)
        return {n: p.decode_one(x[self.slices[n]]) for n, p in self.params.items()}

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Points (``(m, dim)`` or ``(dim,)``) moved onto the representable set: cell centres, one-hot."""
        x = np.array(x, dtype=float)
        flat = x.reshape(-1, self.dim)
        picks = [np.argmax(flat[:, sl], axis=1) for sl in self.groups]  # before clipping, as decode does
        np.clip(flat, 0.0, 1.0, out=flat)
        ints = self.kinds == 1
        if ints.any():
            c = self.cells[ints].astype(float)
            flat[:, ints] = (np.minimum(np.floor(flat[:, ints] * c), c - 1) + 0.5) / c
        for sl, idx in zip(self.groups, picks, strict=True):
            flat[:, sl] = 0.0
            flat[np.arange(len(flat)), sl.start + idx] = 1.0
        for n, p in self.params.items():  # log integers: cells are not equal-width, go through decode
            if isinstance(p, IntParam) and p.log:
                sl = self.slices[n]
                flat[:, sl] = [[p.encode_one(p.decode_one(row[sl]))[0]] for row in flat]
        return flat.reshape(x.shape)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform random representable points, shape ``(n, dim)``."""
        return self.snap(rng.random((n, self.dim)))

    def key(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """A hashable identity of a configuration (for duplicate checks)."""
        return tuple(repr(params[n]) for n in self.names)
