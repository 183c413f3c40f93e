"""Every example's header commands, executed as the header writes them.

The commands are read from each file (tests/example_headers.py), never retyped here.

- ``ftjobs run``: run for real (DeepSpeed on CPU) with the header's own ``--set``s. What
  the example names is served by the test's own stand-ins: its ``s3://`` data by
  versitygw (tiny rows of the task, in the spec's format and column names; the
  ``AWS_*`` variables the header names point at it), its ``hf://`` model by the local
  Hub-API server (tests/fixtures/hub.py, through the ``HF_ENDPOINT`` the header names),
  holding a tiny model of the task under the example's Hub id; the ``$HOME/.cache/ftjobs/
  demo`` files ``python hack/prepare_demo.py`` writes are tiny stand-ins under a
  temporary ``HOME``. The data is small, so a run is a few optimizer steps. ``--output``
  goes to a temporary folder (the headers name a fixed /tmp path).
- ``kubectl apply``: against the test control plane with ``--dry-run=server`` (CRD
  validation and admission; nothing would run it on kwok).
- ``kubectl create secret``: for real, in the test's namespace.
- ``ftjobs submit``: for real, without ``--wait`` (no controller runs in this test) and with
  ``--no-preflight`` (preflight asks for GPUs and storage the test cluster lacks); the
  FineTuneJob must exist afterwards. The full submit-and-wait path of the quickstart runs
  on real nodes in tests/nodes/test_newcomer_walk.py.
- ``aws s3 cp --recursive``: done with boto3 (the AWS CLI is not installed).
- ``python hack/prepare_demo.py``: replaced by the stand-ins above (it downloads the real
  model and tweets; ``make demo`` runs it).

A namespace given with ``-n`` (kueue-queued's ``nlp``) is created for the test.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ftjobs.sdk.spec import load_job
from tests.e2e.harness import install_crd
from tests.example_headers import argv, header_commands, option, without_option
from tests.fixtures.controlplane import ControlPlane
from tests.fixtures.hub import HubServer
from tests.fixtures.plugin import empty_and_delete_bucket
from tests.fixtures.s3 import S3Server
from tests.training.test_chat import chat_rows
from tests.training.tiny import DEFAULT_LABELS, make_tiny_model, tiny_dataset

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
FTJOBS = [sys.executable, "-c", "from ftjobs.cli.main import app; app()"]
ROWS = {"train": 80, "validation": 16, "test": 16}


def chat_messages(spec: Any) -> bool:
    """Rows are conversations (`fields.messages`): a chat-template tiny model and rows."""
    return bool(getattr(spec.dataset.fields, "messages", None))


def write_rows(task: str, spec: Any, kind: str, out: Path) -> Path:
    """Tiny rows of ``task`` with the spec's column names, labels and file format."""
    if chat_messages(spec):
        rows = chat_rows(ROWS[kind], seed=len(kind))
    else:
        source = tiny_dataset(task, out / kind, n=ROWS[kind], seed=len(kind))
        rows = [json.loads(line) for line in source.read_text().splitlines()]
    fields = {k: v for k, v in spec.dataset.fields.model_dump().items() if v}
    labels = dict(zip(DEFAULT_LABELS, spec.dataset.labels or DEFAULT_LABELS, strict=True))
    mapped = []
    for row in rows:
        if "label" in row:
            row["label"] = labels[row["label"]]
        mapped.append({fields.get(k, k): v for k, v in row.items()})
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}.{spec.dataset.format or 'jsonl'}"
    if spec.dataset.format == "csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(mapped[0]))
            w.writeheader()
            w.writerows(mapped)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in mapped))
    return path


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


class Stage:
    """The stand-ins one example's commands read, and their cleanup."""

    def __init__(self, path: Path, tmp: Path, s3_server: S3Server, s3: Any) -> None:
        self.job = load_job(path)
        self.tmp, self.s3 = tmp, s3
        self.buckets: list[str] = []
        self.hub: HubServer | None = None
        self.env = {**s3_server.env(), "HOME": str(tmp / "home")}
        spec = self.job.spec
        task = str(spec.task)
        if spec.model.uri.startswith("hf://"):
            repo = spec.model.uri[len("hf://") :].split("@")[0]
            self.tiny_model(tmp / "hub" / "models" / repo / "main")
            self.hub = HubServer(tmp / "hub", token="unused").start()
            self.env["HF_ENDPOINT"] = self.hub.url
        for kind in ("train", "validation", "test"):
            uri = getattr(spec.dataset, kind)
            if uri and uri.startswith("s3://"):
                bucket, key = split_s3(uri)
                self.bucket(bucket)
                s3.upload_file(str(write_rows(task, spec, kind, tmp / "data")), bucket, key)
        if spec.storage.output.startswith("s3://"):
            self.bucket(split_s3(spec.storage.output)[0])
        # What `python hack/prepare_demo.py ...` writes under $HOME, tiny: every local
        # path the header's `--set`s name (a model, or rows of the example's task).
        for command in header_commands(path):
            for arg in argv(command, self.env):
                key, _, value = arg.partition("=")
                local = Path(value[len("file://") :]) if value.startswith("file://") else None
                if local is None or not local.is_relative_to(tmp / "home"):
                    continue
                if key == "model.uri":
                    self.tiny_model(local)
                elif key.startswith("dataset."):
                    kind = key.split(".", 1)[1]
                    local.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(write_rows(task, spec, kind, tmp / "demo" / kind), local)

    def tiny_model(self, where: Path) -> None:
        spec = self.job.spec
        kind = "chat" if chat_messages(spec) else None
        make_tiny_model(str(spec.task), where, kind=kind)

    def bucket(self, name: str) -> None:
        if name not in self.buckets:
            self.s3.create_bucket(Bucket=name)
            self.buckets.append(name)

    def close(self) -> None:
        if self.hub:
            self.hub.stop()
        for b in self.buckets:
            empty_and_delete_bucket(self.s3, b)


def run_ftjobs(args: list[str], env: dict[str, str], timeout: float) -> str:
    r = subprocess.run([*FTJOBS, *args], capture_output=True, text=True, env=env,
                       timeout=timeout, cwd=ROOT)  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"ftjobs {' '.join(args)} (rc={r.returncode}):\n{out[-4000:]}"
    return out


def s3_keys(s3: Any, uri: str) -> list[str]:
    bucket, prefix = split_s3(uri)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def namespace_of(args: list[str], default: str) -> tuple[list[str], str]:
    """``args`` with a namespace: the header's ``-n``, else the test's."""
    given = option(args, "-n") or option(args, "--namespace")
    return (args, given) if given else ([*args, "-n", default], default)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_header_commands_work_as_written(
    path: Path,
    cluster: ControlPlane,
    s3_server: S3Server,
    s3_client: Any,
    bucket: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    commands = header_commands(path)
    assert commands, f"{path.name}: no command in its header"
    install_crd(cluster)  # what every cluster header presumes (docs/release.md)
    stage = Stage(path, tmp_path, s3_server, s3_client)
    env = {**cluster.env(), **stage.env, "BUCKET": bucket}
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(name, None)
    made_namespaces: list[str] = []
    ran = []
    try:
        for command in commands:
            args = argv(command, env)
            tool, rest = args[0], args[1:]
            if tool == "python" and rest[:1] == ["hack/prepare_demo.py"]:
                continue  # stood in for by Stage
            if tool == "aws":
                assert rest[:3] == ["s3", "cp", "--recursive"], command
                src, dst = Path(rest[3]), rest[4]
                dst_bucket, dst_key = split_s3(dst)
                for f in sorted(src.rglob("*")):
                    if f.is_file():
                        key = f"{dst_key.rstrip('/')}/{f.relative_to(src)}"
                        s3_client.upload_file(str(f), dst_bucket, key)
            elif tool == "kubectl":
                rest, ns = namespace_of(rest, namespace)
                if ns != namespace and ns not in made_namespaces:
                    cluster.kubectl("create", "namespace", ns, check=True)
                    made_namespaces.append(ns)
                if rest[0] == "apply":
                    rest = [*rest, "--dry-run=server"]
                r = cluster.kubectl(*rest)
                assert r.returncode == 0, f"{command}: {r.stderr}"
            elif tool == "ftjobs" and rest[0] == "run":
                out_dir = option(rest, "--output")
                if out_dir is not None:
                    rest = [*without_option(rest, "--output", takes_value=True),
                            "--output", str(tmp_path / "out")]  # fmt: skip
                run_ftjobs(rest, env, timeout=1500)
                output = str(tmp_path / "out") if out_dir else stage.job.spec.storage.output
                assert_model_written(output, stage.job.metadata.name, s3_client)
            elif tool == "ftjobs" and rest[0] == "submit":
                rest = without_option(rest, "--wait", takes_value=False)
                rest, ns = namespace_of(rest, namespace)
                if ns != namespace and ns not in made_namespaces:
                    cluster.kubectl("create", "namespace", ns, check=True)
                    made_namespaces.append(ns)
                run_ftjobs([*rest, "--no-preflight"], env, timeout=120)
                name = stage.job.metadata.name
                r = cluster.kubectl("get", "ftj", name, "-n", ns, "-o", "json")
                assert r.returncode == 0, f"{command}: {name} not created: {r.stderr}"
                cluster.kubectl("delete", "ftj", name, "-n", ns, "--wait=false")
            else:
                pytest.fail(f"{path.name}: the test cannot run header command {command!r}")
            ran.append(tool if tool != "ftjobs" else f"ftjobs {rest[0]}")
    finally:
        for ns in made_namespaces:
            cluster.kubectl("delete", "namespace", ns, "--wait=false")
        stage.close()
    assert ran, commands


def assert_model_written(output: str, name: str, s3: Any) -> None:
    """The run's fine-tuned model folder exists (locally or in S3)."""
    if output.startswith("s3://"):
        keys = s3_keys(s3, output)
        assert any(k.endswith("/model/config.json") for k in keys), keys[:50]
    else:
        found = list(Path(output).rglob("model/config.json"))
        assert found, f"no model/config.json under {output}"
