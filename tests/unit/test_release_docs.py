"""docs/release.md and examples/ci/build-images.yaml name targets, build arguments, paths
and make targets that exist (the image tier builds the images themselves)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.unit.test_dockerfile import ARGS, BY_NAME

ROOT = Path(__file__).resolve().parents[2]
RELEASE = (ROOT / "docs" / "release.md").read_text()
WORKFLOW = yaml.safe_load((ROOT / "examples" / "ci" / "build-images.yaml").read_text())


def test_release_doc_build_arguments_and_targets_exist() -> None:
    targets = set(re.findall(r"--target (\w[\w-]*)", RELEASE))
    assert targets == {"controller"}
    assert targets <= set(BY_NAME)
    build_args = set(re.findall(r"--build-arg (\w+)=", RELEASE))
    assert build_args >= {"DEEPSPEED_OPS", "PYTHON_IMAGE", "PYTORCH_IMAGE"}
    assert build_args <= set(ARGS), build_args - set(ARGS)


def test_release_doc_paths_and_make_targets_exist() -> None:
    for path in ("helm/ftjobs", "examples/ci/build-images.yaml", "hack/constraints.txt"):
        assert path in RELEASE and (ROOT / path).exists(), path
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"`make (\w[\w-]*)`", RELEASE):
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target} is not a target"


def test_workflow_builds_both_dockerfile_targets_from_the_repository() -> None:
    job = WORKFLOW["jobs"]["images"]
    assert set(job["strategy"]["matrix"]["target"]) == {"controller", "trainer"} <= set(BY_NAME)
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push"))
    assert build["with"]["context"] == "."
    assert build["with"]["target"] == "${{ matrix.target }}"
    # Pushes only for tags, not for pull requests.
    assert build["with"]["push"] == "${{ github.event_name == 'push' }}"
    assert WORKFLOW[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    chart = "\n".join(s.get("run", "") for s in WORKFLOW["jobs"]["chart-and-wheel"]["steps"])
    assert "helm package helm/ftjobs" in chart and (ROOT / "helm" / "ftjobs").is_dir()
