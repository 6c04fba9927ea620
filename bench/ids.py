"""Random version-4 UUIDs from a seeded generator: fast to make by the million, reproducible."""

from __future__ import annotations

import random


def random_uuid(rng: random.Random) -> str:
    value = rng.getrandbits(128) & ~(0xF << 76) | (0x4 << 76)  # version 4
    value = value & ~(0x3 << 62) | (0x2 << 62)  # RFC 4122 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
