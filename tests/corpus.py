"""The invalid-spec corpus (tests/data/invalid): each file names the field its error must name.

Hand-written cases; tests/mutants.py generates many more from the examples.

Header lines: `# expect: <field path>` (first line), optionally `# server: <why the API
server cannot check this>`; both the unit tier (offline validation) and the integration
tier (the real API server) read them from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

INVALID_DIR = Path(__file__).parent / "data" / "invalid"


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str
    server_skip: str | None

    @property
    def id(self) -> str:
        return self.path.stem


def cases() -> list[Case]:
    out = []
    for path in sorted(INVALID_DIR.glob("*.yaml")):
        text = path.read_text()
        expect = re.match(r"# expect: (\S+)\n", text)
        if not expect:
            raise AssertionError(f"{path}: first line must be '# expect: <field path>'")
        server = re.search(r"^# server: (.+)$", text, re.M)
        out.append(Case(path, expect.group(1), server.group(1) if server else None))
    return out
