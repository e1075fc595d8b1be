"""sha256 helpers and the one pattern for a sha256 written as hex."""
from __future__ import annotations

import hashlib
import re

HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def is_hex64(value: object) -> bool:
    """True for a string of exactly 64 lowercase hex digits (a sha256)."""
    return isinstance(value, str) and HEX64.fullmatch(value) is not None
