"""Counter-based standard normals: the draw for (key, staker, business) is a pure function of
those three integers, so any cell can be regenerated on demand, in any order, and a batch of
keys (one per replica) is one broadcast.

Each cell's 64 bits are ``fmix64(mix(key, staker) + mix(key, business))``, where ``fmix64`` is
MurmurHash3's finaliser (every input bit reaches every output bit) and ``mix`` a splitmix64
step; the bits become a normal by Box-Muller in float32 from two 24-bit uniforms. The uniforms
lie in [2^-25, 1], so every draw obeys ``|z| <= BOUND``; callers use the bound to know
when a decayed noise can no longer change a float32 value. Integer arithmetic wraps modulo 2^64
on purpose (that is the hash).
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_F1, _F2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_STAKER_SALT, _BUSINESS_SALT = np.uint64(0x5851F42D4C957F2D), np.uint64(0x14057B7EF767814F)
_LOW24 = np.uint64((1 << 24) - 1)
_SCALE = np.float32(2.0**-24)
BOUND = float(np.sqrt(-2.0 * np.log(np.float32(2.0**-25))))  # largest |z| (u1 = 2^-25)


def key_of(seed_sequence: np.random.SeedSequence) -> np.uint64:
    """A 64-bit key from a seed sequence (one per run, or per replica)."""
    return np.uint64(seed_sequence.generate_state(1, np.uint64)[0])


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's output step, in place on a fresh uint64 array."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def cell_keys(key: np.ndarray | np.uint64, index: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Per-index 64-bit keys, ``mix(key + salt + index * golden)`` (broadcast over ``key``)."""
    with np.errstate(over="ignore"):
        x = np.asarray(index).astype(np.uint64) * _GOLDEN + (np.asarray(key, np.uint64) + salt)
        return _mix(x)


def staker_keys(key: np.ndarray | np.uint64, staker: np.ndarray) -> np.ndarray:
    return cell_keys(key, staker, _STAKER_SALT)


def business_keys(key: np.ndarray | np.uint64, business: np.ndarray) -> np.ndarray:
    return cell_keys(key, business, _BUSINESS_SALT)


def normal_from_keys(staker_key: np.ndarray, business_key: np.ndarray) -> np.ndarray:
    """float32 standard normals of the cells ``staker_key + business_key`` (broadcast)."""
    x = np.add(staker_key, business_key)
    x ^= x >> np.uint64(33)  # MurmurHash3 fmix64
    x *= _F1
    x ^= x >> np.uint64(33)
    x *= _F2
    x ^= x >> np.uint64(33)
    u1 = (x >> np.uint64(40)).astype(np.float32)
    u1 += np.float32(0.5)
    u1 *= _SCALE  # in [2^-25, 1]: log is finite
    angle = (x & _LOW24).astype(np.float32)
    angle *= np.float32(2.0 * np.pi * 2.0**-24)
    np.log(u1, out=u1)
    u1 *= np.float32(-2.0)
    np.sqrt(u1, out=u1)
    np.cos(angle, out=angle)
    u1 *= angle
    return u1


def standard_normal(
    key: np.ndarray | np.uint64, staker: np.ndarray, business: np.ndarray
) -> np.ndarray:
    """float32 N(0, 1) of every (key, staker, business), broadcast together."""
    return normal_from_keys(staker_keys(key, staker), business_keys(key, business))
