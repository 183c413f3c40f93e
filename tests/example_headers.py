"""The commands an example's header comment tells a user to type, read from the file.

Tests execute these instead of retyping them, so an example's header and what is tested
cannot drift apart. A command is a header line whose text (after ``#`` and an optional
``label:`` such as ``Run it locally:``) starts with one of ``COMMANDS``; a trailing
backslash continues it on the next line, and ``#`` starts a comment, as in a shell.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

COMMANDS = ("ftjobs", "kubectl", "make", "python", "aws", "helm")
_START = re.compile(r"(?:^|:\s+)((?:" + "|".join(COMMANDS) + r")\s.*)$")


def header_lines(path: Path) -> list[str]:
    """The leading comment block, without the ``#`` and surrounding spaces."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return lines


def header_commands(path: Path) -> list[str]:
    """Every command of the header, continuation lines joined, in order."""
    lines = header_lines(path)
    commands = []
    i = 0
    while i < len(lines):
        m = _START.search(lines[i])
        if m:
            cmd = m.group(1).rstrip()
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1].rstrip() + " " + lines[i]
            commands.append(cmd)
        i += 1
    return commands


def argv(command: str, env: dict[str, str]) -> list[str]:
    """The command as a shell would split it: ``$VARS`` and ``~`` from ``env``."""
    words = shlex.split(command, comments=True)
    home = env.get("HOME", os.path.expanduser("~"))
    out = []
    for w in words:
        w = re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m.group(1) or m.group(2), ""), w)
        if w == "~" or w.startswith("~/"):
            w = home + w[1:]
        out.append(w)
    return out


def option(args: list[str], name: str) -> str | None:
    """The value of ``name VALUE`` or ``name=VALUE`` in ``args``."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def without_option(args: list[str], name: str, *, takes_value: bool) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == name:
            skip = takes_value
            continue
        if a.startswith(name + "="):
            continue
        out.append(a)
    return out
