"""YAML that Kubernetes tooling reads back the way it was meant.

PyYAML writes YAML 1.1 but only quotes the booleans it knows (true/false/yes/no/on/off).
kubectl and Helm parse with go-yaml, which also reads `y`, `n` (any case) as booleans, so
a label `n` written bare comes back as `false` and the object is refused. Quoting every
string that some YAML 1.1 reader resolves to a non-string keeps `ftjobs render | kubectl
apply -f -` exact.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# YAML 1.1 booleans and nulls as go-yaml v2 resolves them; PyYAML's own resolver quotes the
# rest (numbers, dates, true/false/yes/no/on/off).
_AMBIGUOUS = re.compile(r"^(y|Y|n|N|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|~|null|Null|NULL)$")


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _AMBIGUOUS.match(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return dumper.represent_str(value)


_Dumper.add_representer(str, _str)


def dump(doc: Any) -> str:
    """One document, keys in their given order."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100)


def dump_all(docs: list[Any]) -> str:
    """A `---`-separated stream, keys in their given order."""
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, width=100)
