"""What a sweep varies: grids of values (``--grid kl.beta=0.25,0.5,1``) and ranges (``--range train.lr=1e-4:1e-2:log``),
as Optuna search spaces. One mechanism serves both: a grid is searched by Optuna's GridSampler, ranges by its TPE
sampler, and a trial asks its values from Optuna the same way in either case (:meth:`Space.suggest`)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..config import ConfigError, RunConfig, yaml_value


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass
class Space:
    grid: dict[str, list] = field(default_factory=dict)  # config key -> values
    ranges: dict[str, Range] = field(default_factory=dict)  # config key -> range

    @property
    def keys(self) -> list[str]:
        return [*self.grid, *self.ranges]

    def size(self) -> int:
        """The number of grid points (1 for an empty grid)."""
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n

    def suggest(self, trial) -> dict:
        """The trial's values, config key -> value, asked from Optuna (a grid's through suggest_categorical, which
        the GridSampler answers)."""
        params = {k: trial.suggest_categorical(k, v) for k, v in self.grid.items()}
        for k, r in self.ranges.items():
            suggest = trial.suggest_int if r.integer else trial.suggest_float
            params[k] = suggest(k, r.low, r.high, log=r.log)
        return params

    def to_dict(self) -> dict:
        return {"grid": self.grid, "ranges": {k: vars(r) for k, r in self.ranges.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Space":
        return cls(dict(d["grid"]), {k: Range(**r) for k, r in d["ranges"].items()})


def _key(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or "." not in key or not value.strip():
        raise ConfigError(f"{flag} expects section.key=..., got {item!r}")
    return key, value


def _number(text: str) -> int | float:
    """A whole number as an int (an integer range), else a float (``1e-4`` too, which YAML 1.1 reads as text)."""
    try:
        return int(text)
    except ValueError:
        x = float(text)
        if not math.isfinite(x):
            raise ValueError(text) from None
        return x


def parse_space(grids: list[str], ranges: list[str], base: RunConfig) -> Space:
    """``--grid KEY=V1,V2,...`` and ``--range KEY=LOW:HIGH[:log]`` as a :class:`Space`; each value is checked by
    applying it to the ``base`` config (a ConfigError names the bad one)."""
    space = Space()
    for item in grids:
        key, text = _key(item, "--grid")
        values = [yaml_value(v.strip(), item) for v in re.split(r",(?![^\[]*\])", text)]  # not inside [lists]
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
            raise ConfigError(f"--grid {item!r}: a value is a list or a mapping; Optuna's grid takes numbers, strings, "
                              f"true/false and null (name architectures by a key that takes one, or use --set)")
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"--grid {item!r}: a value is repeated")
        space.grid[key] = values
    for item in ranges:
        key, text = _key(item, "--range")
        parts = text.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ConfigError(f"--range {item!r}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log")
        try:
            low, high = (_number(p.strip()) for p in parts[:2])
        except ValueError:
            low = high = None
        if low is None or not low < high:
            raise ConfigError(f"--range {item!r}: LOW and HIGH must be numbers with LOW < HIGH")
        log = len(parts) == 3
        if log and low <= 0:
            raise ConfigError(f"--range {item!r}: a log range needs LOW > 0")
        space.ranges[key] = Range(low, high, log, isinstance(low, int) and isinstance(high, int))
    both = set(space.grid) & set(space.ranges)
    if both:
        raise ConfigError(f"{', '.join(sorted(both))}: given both as --grid and --range")
    for key, values in space.grid.items():
        for v in values:
            base.set([f"{key}={v!r}" if isinstance(v, str) else f"{key}={v}"]).check()
    for key, r in space.ranges.items():
        base.set([f"{key}={r.low}"]).check()
    return space


def assignments(params: dict) -> list[str]:
    """``--set`` strings for a trial's values."""
    return [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in params.items()]
