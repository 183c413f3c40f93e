"""The Dockerfile is hadolint-clean and its images run what `render` and the chart expect.

Checked on the Dockerfile's text (the image tier, tests/image, runs the built images): the
trainer stage's ENTRYPOINT/CMD are the program and arguments of the rendered pod's
command, its USER is the pod's uid/gid, the pinned versions are the ones the tests run
with, and the dependency layers come before the source so a source change reuses them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ftjobs.api.constants import DEFAULT_IMAGE
from ftjobs.render import RenderSettings, render_job
from tests.builders import make_job

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        found = [arg for kw, arg in self.instructions if kw == keyword]
        return found[-1] if found else None


def _logical_lines(text: str) -> list[str]:
    """Instructions with backslash continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, line
            stages.append(Stage(name=m.group(2) or str(len(stages)), base=m.group(1)))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
        elif keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
    return args, stages


def exec_form(value: str | None) -> list[str]:
    assert value is not None and value.startswith("["), f"not exec form: {value!r}"
    parsed = json.loads(value)
    assert isinstance(parsed, list)
    return [str(v) for v in parsed]


def _pin(name: str) -> str:
    for line in (ROOT / "hack" / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].split("+")[0].strip()
    raise AssertionError(f"{name} is not pinned in hack/constraints.txt")


def _trainer_container() -> tuple[dict[str, object], dict[str, object]]:
    job = make_job("docker").build()
    objs = render_job(job, namespace="ns", name="docker", uid="u-1", attempt=1, resume=False)
    batch = next(o for o in objs if o["kind"] == "Job")
    pod = batch["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


ARGS, STAGES = parse(DOCKERFILE.read_text())
BY_NAME = {s.name: s for s in STAGES}


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    proc = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_target_is_the_trainer_on_a_pinned_pytorch_runtime() -> None:
    trainer = STAGES[-1]
    assert trainer.name == "trainer"
    assert trainer.base.startswith("${PYTORCH_IMAGE}:${PYTORCH_VERSION}-")
    assert ARGS["PYTORCH_IMAGE"] == "pytorch/pytorch"
    # The runtime flavour: no nvcc/gcc in the final stage; the devel image builds ops only.
    assert trainer.base.endswith("-runtime")
    assert BY_NAME["deepspeed-build"].base.endswith("-devel")
    assert ARGS["PYTORCH_VERSION"] == _pin("torch")
    assert ARGS["DEEPSPEED_VERSION"] == _pin("deepspeed")


def test_no_build_tools_in_final_stages() -> None:
    for name in ("trainer", "controller"):
        text = " ".join(arg for kw, arg in BY_NAME[name].instructions if kw == "RUN")
        for tool in ("apt-get", "apk add", "gcc", "build-essential", "nvcc", "ninja"):
            assert tool not in text, f"{name} stage installs {tool}"


def test_image_version_matches_package_and_default_image() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert ARGS["FTJOBS_VERSION"] == version
    assert DEFAULT_IMAGE.rsplit(":", 1)[1] == version


def test_trainer_entrypoint_is_the_rendered_pod_command() -> None:
    _, container = _trainer_container()
    command = [str(c) for c in container["command"]]  # type: ignore[union-attr]
    entrypoint = exec_form(BY_NAME["trainer"].last("ENTRYPOINT"))
    cmd = exec_form(BY_NAME["trainer"].last("CMD"))
    assert entrypoint == list(RenderSettings().launcher)
    assert command[: len(entrypoint)] == entrypoint
    # The image's default arguments end like the pod's (the trainer module and its config)
    # and are arguments the launcher accepts.
    assert cmd[-4:] == command[-4:]
    assert cmd[-3:-1] == ["ftjobs.trainer", "--config"]
    if entrypoint == ["python", "-m", "ftjobs.trainer.launch"]:
        from ftjobs.trainer.launch import parse_args

        args, rest = parse_args(cmd)
        assert args.module == "ftjobs.trainer" and rest[-2:] == ["--config", cmd[-1]]


def test_trainer_user_is_the_pods_uid() -> None:
    pod, _ = _trainer_container()
    user = BY_NAME["trainer"].last("USER")
    assert user is not None
    uid, _, gid = user.partition(":")
    ctx = pod["securityContext"]
    assert isinstance(ctx, dict)
    assert int(uid) == ctx["runAsUser"] == RenderSettings().run_as_user
    assert int(gid) == ctx["runAsGroup"]
    assert int(uid) != 0


def test_controller_target_is_small_and_non_root() -> None:
    ctl = BY_NAME["controller"]
    assert "pytorch" not in ctl.base and "cuda" not in ctl.base.lower()
    assert exec_form(ctl.last("ENTRYPOINT")) == ["python", "-m", "ftjobs.controller"]
    user = ctl.last("USER")
    assert user is not None and int(user.split(":")[0]) != 0
    # Its venv is built from the ftjobs wheel without the [train] extra (no torch).
    build = " ".join(arg for kw, arg in BY_NAME["controller-build"].instructions if kw == "RUN")
    assert "[train]" not in build and "torch" not in build


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[[ln.strip() for ln in lines].index("*")] == "*"
    copied = {"pyproject.toml", "README.md", "src/", "hack/constraints.txt"}
    assert copied <= {ln[1:] for ln in lines if ln.startswith("!")}


def test_deepspeed_wheel_is_found_with_or_without_compiled_ops() -> None:
    """Ops give the wheel a platform tag (cp311-cp311-linux_x86_64), none gives py3-none-any."""
    run = " ".join(arg for kw, arg in BY_NAME["trainer"].instructions if kw == "RUN")
    assert '/deepspeed-"${DEEPSPEED_VERSION}"-*.whl' in run
    assert "py3-none-any" not in run.split("deepspeed-", 1)[1].split()[0]
    assert ARGS["DEEPSPEED_OPS"].strip('"').split() == ["FUSED_ADAM", "CPU_ADAM", "UTILS"]


def test_dependency_layers_come_before_the_source() -> None:
    """A source change rebuilds only the layers after the ftjobs wheel is copied in."""
    for name, wheel_copy in (
        ("trainer", "/opt/ftjobs/build/ftjobs/"),
        ("controller-build", "/tmp/ftjobs/wheels/"),
    ):
        steps = BY_NAME[name].instructions
        copy_at = next(
            i for i, (kw, arg) in enumerate(steps) if kw == "COPY" and arg.endswith(wheel_copy)
        )
        deps_at = next(i for i, (kw, arg) in enumerate(steps) if kw == "RUN" and " -r " in arg)
        assert deps_at < copy_at, name
        # Inputs reach the build by COPY: builders key their cache on copied content
        # (buildah does not on bind-mounted content, which would reuse a stale layer).
        assert not any("--mount=type=bind" in arg for kw, arg in steps if kw == "RUN"), name
        after = " ".join(arg for kw, arg in steps[copy_at:] if kw == "RUN")
        assert "--no-deps" in after and " -r " not in after, name
