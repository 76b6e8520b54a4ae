"""Counter-based random numbers: every draw is a pure function of (seed, stream, counter).

This makes the synthetic table *addressable*: row ``i`` is computed from ``(seed, i)``
alone, so any subset of rows can be generated directly, in any order or batch size,
and is identical to the same rows of the complete table. The mixer is the SplitMix64
finaliser (a bijection on 64-bit words with good avalanche), applied to
``counter·γ + key(seed, stream)``.
"""

from __future__ import annotations

import numpy as np

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def _mix_int(x: int) -> int:
    x &= _MASK
    x ^= x >> 30
    x = (x * _C1) & _MASK
    x ^= x >> 27
    x = (x * _C2) & _MASK
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(_C1)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(_C2)
    return x ^ (x >> np.uint64(31))


def stream_key(seed: int, stream: int) -> int:
    """64-bit key of one named stream of draws under one seed."""
    return _mix_int(_mix_int(int(seed) * _GAMMA + 0x5EED) ^ (int(stream) * _C2 + 1))


def bits(seed: int, stream: int, counter: np.ndarray) -> np.ndarray:
    """Uniform 64-bit words for each counter value."""
    c = np.asarray(counter).astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        return _mix(c * np.uint64(_GAMMA) + np.uint64(stream_key(seed, stream)))


def uniform(seed: int, stream: int, counter: np.ndarray) -> np.ndarray:
    """Uniform floats in the open interval (0, 1)."""
    return ((bits(seed, stream, counter) >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def normal(seed: int, stream: int, counter: np.ndarray) -> np.ndarray:
    """Standard normal draws (Box–Muller on two independent uniform streams)."""
    u1 = uniform(seed, 2 * stream + 1_000_003, counter)
    u2 = uniform(seed, 2 * stream + 1_000_004, counter)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def exponential(seed: int, stream: int, counter: np.ndarray) -> np.ndarray:
    """Exponential(1) draws."""
    return -np.log(uniform(seed, stream, counter))
