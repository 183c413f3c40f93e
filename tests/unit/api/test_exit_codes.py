"""One rule for what an exit code means, used by the launcher and by `ftjobs run`."""

from __future__ import annotations

import pytest

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE, EXIT_SUCCESS
from ftjobs.api.exit_codes import ExitClass, combined_exit_code, exit_class


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (EXIT_SUCCESS, ExitClass.SUCCESS),
        (EXIT_RETRIABLE, ExitClass.RETRIABLE),
        (-9, ExitClass.RETRIABLE),  # subprocess: killed by SIGKILL
        (-15, ExitClass.RETRIABLE),  # subprocess: SIGTERM (preemption)
        (137, ExitClass.RETRIABLE),  # shell / runtime: 128 + SIGKILL
        (143, ExitClass.RETRIABLE),  # 128 + SIGTERM
        (EXIT_PERMANENT, ExitClass.PERMANENT),
        (1, ExitClass.PERMANENT),  # an interpreter crash outside the trainer's handler
        (2, ExitClass.PERMANENT),
        (128, ExitClass.PERMANENT),  # not a signal: 128 + 0
    ],
)
def test_each_exit_class(code: int, expected: ExitClass) -> None:
    assert exit_class(code) is expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], EXIT_SUCCESS),
        ([0, 0], EXIT_SUCCESS),
        ([0, EXIT_RETRIABLE], EXIT_RETRIABLE),
        ([-9, 0], EXIT_RETRIABLE),  # a worker killed by a signal
        ([EXIT_RETRIABLE, EXIT_PERMANENT], EXIT_PERMANENT),
        ([0, 1], EXIT_PERMANENT),  # the old local rule returned codes[0]: success
        ([1, 0], EXIT_PERMANENT),  # the old launcher rule: retriable
        ([EXIT_RETRIABLE, 1, -9], EXIT_PERMANENT),  # peers lost the crashed worker
    ],
)
def test_combined_exit_code(codes: list[int], expected: int) -> None:
    assert combined_exit_code(codes) == expected


def test_order_does_not_matter() -> None:
    codes = [0, -9, EXIT_RETRIABLE, 3]
    assert combined_exit_code(codes) == combined_exit_code(reversed(codes)) == EXIT_PERMANENT
