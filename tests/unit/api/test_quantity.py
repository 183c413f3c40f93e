"""Kubernetes quantities: the one parser (api.quantity) against Kubernetes' own forms."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ftjobs.api.quantity import format_bytes, gibibytes_quantity, parse_quantity, quantity_bytes


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", Decimal(4)),
        (4, Decimal(4)),
        ("500m", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        ("16Gi", Decimal(16 * 2**30)),
        ("80Gi", Decimal(80 * 2**30)),
        ("512Ki", Decimal(512 * 1024)),
        ("1Ti", Decimal(2**40)),
        ("2k", Decimal(2000)),
        ("3M", Decimal(3_000_000)),
        ("1G", Decimal(10**9)),
        ("2E", Decimal(2 * 10**18)),  # exa, not an exponent
        ("1e3", Decimal(1000)),
        ("1.5e-3", Decimal("0.0015")),
        ("250u", Decimal("0.00025")),
        ("+1k", Decimal(1000)),
    ],
)
def test_parse_quantity(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1x", "1.2.3", "16GB", "1K", "ten"])
def test_not_a_quantity_names_the_text_and_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=rf"not a Kubernetes quantity: {text!r} \(e\.g\. .*16Gi"):
        parse_quantity(text)


def test_bytes_round_up_as_kubernetes_does() -> None:
    assert quantity_bytes("1.5") == 2
    assert quantity_bytes("500m") == 1
    assert quantity_bytes("8Gi") == 8 * 2**30


def test_format_bytes_and_the_quantity_to_set() -> None:
    assert format_bytes(80 * 1024**3) == "80.0 GiB"
    assert format_bytes(512) == "512 B"
    assert gibibytes_quantity(1) == "1Gi"
    assert gibibytes_quantity(2**30) == "1Gi"
    assert gibibytes_quantity(2**30 + 1) == "2Gi"
    assert quantity_bytes(gibibytes_quantity(123_456_789_012)) >= 123_456_789_012
