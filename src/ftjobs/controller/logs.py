"""Structured (JSON, one object a line) logs for the controller and kopf alike.

Log records carry identifiers (namespace/name, phase, reasons), never object bodies:
pod specs hold environment and Secret references, and nothing secret may reach a log.
"""

from __future__ import annotations

import logging

import kopf


def configure_logging(*, verbose: bool = False) -> None:
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    # The HTTP client's debug lines would print request bodies.
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
