"""Deterministic split assignment by a stable hash of the row's input text and the seed.

sha1 (not Python's salted `hash()`) makes the assignment the same on every rank, in
every process and on every machine; hashing the *input* keeps identical inputs in one
split, so carving never creates train/test leakage by itself.
"""

from __future__ import annotations

import hashlib

TRAIN, VALIDATION, TEST = "train", "validation", "test"


def unit_interval(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from sha1(seed, key)."""
    digest = hashlib.sha1(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(key: str, seed: int, *, validation_ratio: float, test_ratio: float) -> str:
    """train / validation / test for one row; a ratio of 0 means that split is not carved."""
    u = unit_interval(key, seed)
    if u < test_ratio:
        return TEST
    if u < test_ratio + validation_ratio:
        return VALIDATION
    return TRAIN


def digest(text: str) -> bytes:
    """Compact exact-match key for dedupe and leakage sets (16 bytes of sha1)."""
    return hashlib.sha1(text.encode()).digest()[:16]
