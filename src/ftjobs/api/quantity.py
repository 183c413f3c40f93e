"""Kubernetes resource quantities ("16Gi", "500m", "1e3") as numbers: the one parser.

The spec carries quantities as text (`api.types.Quantity`, checked by QUANTITY_PATTERN);
whoever needs the number (CPU cores for the thread count, bytes of memory or scratch
space for preflight, `--gpu-memory 80Gi`) reads it here, with Kubernetes' suffixes:
binary Ki..Ei, decimal n, u, m, k, M, G, T, P, E, and exponents.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ftjobs.api.types import QUANTITY_PATTERN

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_SPLIT = re.compile(r"^([+-]?[0-9.]+)([a-zA-Z]*|[eE][+-]?[0-9.]+)$")


def parse_quantity(text: str | int) -> Decimal:
    """The value of a quantity: `parse_quantity("16Gi") == 16 * 2**30`, `("500m") == 0.5`.

    Raises ValueError naming the text and an example when it is not a quantity.
    """
    value = str(text).strip()
    bad = f"not a Kubernetes quantity: {value!r} (e.g. 4, 500m, 16Gi or 1e3)"
    match = _SPLIT.match(value)
    if not re.match(QUANTITY_PATTERN, value) or match is None:
        raise ValueError(bad)
    number, suffix = match.groups()
    try:
        base = Decimal(number)
        if suffix in _BINARY:
            return base * (Decimal(1024) ** _BINARY[suffix])
        if suffix in _DECIMAL:
            return base.scaleb(_DECIMAL[suffix])
        return base.scaleb(int(suffix[1:]))  # an exponent, e.g. 1e3
    except (InvalidOperation, ValueError):
        raise ValueError(bad) from None


def quantity_bytes(text: str | int) -> int:
    """A memory or storage quantity in bytes (rounded up, as Kubernetes does)."""
    value = parse_quantity(text)
    whole = int(value)
    return whole + 1 if value > whole else whole


def format_bytes(n: float) -> str:
    """`n` bytes for a person: `1.5 GiB`, `512 B`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def gibibytes_quantity(n: int) -> str:
    """The smallest whole-GiB quantity that holds `n` bytes (`12Gi`), for a hint to set."""
    return f"{max(-(-n // 2**30), 1)}Gi"
