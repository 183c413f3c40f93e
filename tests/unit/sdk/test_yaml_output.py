"""`ftjobs render` YAML must read back identically in go-yaml (kubectl, Helm)."""

from __future__ import annotations

import re

import pytest
import yaml

from ftjobs.sdk import yaml_output
from ftjobs.sdk.manifests import render_manifests
from tests.builders import make_job

# Strings go-yaml v2 reads as booleans or null when they are written bare.
GO_YAML_NON_STRINGS = ["y", "Y", "n", "N", "yes", "No", "ON", "off", "~", "null"]


@pytest.mark.parametrize("value", GO_YAML_NON_STRINGS)
def test_ambiguous_strings_are_quoted(value: str) -> None:
    text = yaml_output.dump({"label": value})
    assert re.search(r"label: (['\"]).+\1", text), text
    assert yaml.safe_load(text) == {"label": value}


def test_plain_strings_stay_plain() -> None:
    assert yaml_output.dump({"a": "nodes", "b": "n1"}) == "a: nodes\nb: n1\n"


def test_a_queue_named_n_renders_as_a_string_label() -> None:
    # Found by the hypothesis server dry-run: queueName 'n' became `false` in kubectl.
    objects = render_manifests(make_job("a").queue("n").build(), namespace="ns")
    text = yaml_output.dump_all(objects)
    assert "kueue.x-k8s.io/queue-name: 'n'" in text
    assert list(yaml.safe_load_all(text)) == objects
