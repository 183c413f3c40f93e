"""Deployment files that need no cluster: the chart ships the generated CRD byte for byte,
its values schema accepts its own defaults, and the kustomize base points at ../crd."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ftjobs.sdk.schema import crd_yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "ftjobs"


def test_chart_crd_is_the_generated_crd() -> None:
    chart_crd = (CHART / "crds" / "finetunejobs.ftjobs.dev.yaml").read_bytes()
    assert chart_crd == (ROOT / "manifests" / "crd" / "finetunejobs.ftjobs.dev.yaml").read_bytes()
    assert chart_crd.decode() == crd_yaml()


def test_values_schema_forbids_unknown_top_level_keys_and_covers_every_default() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) == set(schema["properties"])


def test_chart_and_package_versions_agree() -> None:
    import tomllib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # The trainer image is trainer.repository at the chart's appVersion unless pinned.
    assert values["trainer"]["image"] == ""
    assert ":" not in values["trainer"]["repository"].rsplit("/", 1)[-1]


def test_kustomize_base_uses_the_generated_crd_directory() -> None:
    base = yaml.safe_load((ROOT / "manifests" / "base" / "kustomization.yaml").read_text())
    assert "../crd" in base["resources"]
    crd = yaml.safe_load((ROOT / "manifests" / "crd" / "kustomization.yaml").read_text())
    assert crd["resources"] == ["finetunejobs.ftjobs.dev.yaml"]
