"""A newcomer's first job, following the docs' own commands on real nodes.

README → docs/release.md ("Install the chart": its ``helm install`` command, read from
the doc) → examples/quickstart-sentiment.yaml's "On a cluster" commands (read from its
header: copy model and data to S3, the credentials Secret, ``ftjobs submit --wait``)
→ ``Succeeded`` → the model in S3 loads with ``from_pretrained``. Nothing the user
types is retyped here, so the docs and this test cannot drift apart.

What the test adds, because its cluster is not a user's (each one named where it is
done):
- "build and push the images" (release.md section 1) is ``make image`` plus
  ``ctr images tag`` on both nodes to the ``$REGISTRY/ftjobs-{controller,trainer}:
  $VERSION`` names the doc uses (no registry is reachable here);
- ``helm install`` gets this cluster's S3 endpoint, the real nodes' placement, one watched
  namespace and a small resource request as extra values; the trainer admission policy
  other tests of this cluster applied without the chart is removed first (a newcomer's
  cluster has none, and helm installs only what it owns) and applied again after;
- ``ftjobs submit`` gets ``-n``, ``--timeout`` and ``--set``s placing the pod on a real node
  with a request that fits it;
- the model and data are the tiny stand-ins tests/e2e/test_example_headers.py writes
  where ``python hack/prepare_demo.py sentiment`` puts the real ones (a temporary HOME);
  ``aws s3 cp --recursive`` is done with boto3 (the AWS CLI is not installed).
The job's namespace enforces Pod Security ``restricted``.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.trainer_policy import POLICY_NAME as TRAINER_POLICY_NAME
from tests.e2e.harness import Api, install_crd
from tests.e2e.test_example_headers import FTJOBS, ROOT, Stage, split_s3
from tests.example_headers import argv, header_commands
from tests.fixtures.controlplane import ControlPlane, ensure_binaries
from tests.fixtures.nodes import REAL_LABEL, REAL_TOLERATION, ProjectImages, RealNodes
from tests.nodes.test_finetunejob import enforce_restricted

QUICKSTART = ROOT / "examples" / "quickstart-sentiment.yaml"
REGISTRY = "registry.ftjobs.test/ml"  # the "registry" the images are tagged into


def doc_block(doc: Path, heading: str) -> str:
    """The first fenced ``sh`` block under ``heading`` in ``doc``."""
    text = doc.read_text()
    section = text.split(heading, 1)[1]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, f"no ```sh block under {heading!r} in {doc}"
    return m.group(1)


def shell_commands(block: str) -> list[str]:
    """The block's commands, backslash continuations joined, comments dropped."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        line = line.split("  #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not line and not pending:
            continue
        pending += (" " if pending else "") + line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        out.append(pending)
        pending = ""
    return out


def tag_images(nodes: RealNodes, images: ProjectImages, version: str) -> dict[str, str]:
    """release.md's pushed names, as tags in every node's containerd."""
    names = {
        "controller": f"{REGISTRY}/ftjobs-controller:{version}",
        "trainer": f"{REGISTRY}/ftjobs-trainer:{version}",
    }
    for i in range(nodes.count):
        for target, ref in (("controller", images.controller), ("trainer", images.trainer)):
            nodes.ctr(i, "images", "tag", "--force", ref, names[target])
    return names


@pytest.mark.timeout(1800)
def test_newcomer_walk_readme_to_model_in_s3(
    real_nodes: RealNodes,
    project_images_on_nodes: ProjectImages,
    cluster: ControlPlane,
    s3_server: Any,
    s3_client: Any,
    bucket: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    # README → docs/release.md
    readme = (ROOT / "README.md").read_text()
    assert "docs/release.md" in readme.split("## What `make demo` does")[0]
    release = ROOT / "docs" / "release.md"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    names = tag_images(real_nodes, project_images_on_nodes, version)

    stage = Stage(QUICKSTART, tmp_path, s3_server, s3_client)
    env = {
        **cluster.env(),
        **stage.env,
        "REGISTRY": REGISTRY,
        "VERSION": version,
        "BUCKET": bucket,
    }
    # helm install, as release.md writes it (+ this cluster's values)
    [install] = [c for c in shell_commands(doc_block(release, "## 2. Install the chart"))
                 if c.startswith("helm install")]  # fmt: skip
    helm_args = argv(install, env)
    assert f"trainer.image={names['trainer']}" in helm_args, helm_args
    system_ns = helm_args[helm_args.index("-n") + 1]
    release_name = helm_args[2]
    s3_port = s3_server.endpoint_url.rsplit(":", 1)[1]
    values = {  # this cluster's, not the user's
        "storage": {"endpoint": f"http://{real_nodes.gateway_ip}:{s3_port}"},
        "watchNamespaces": [namespace],
        "leaderElection": {"enabled": False},
        "nodeSelector": {"kubernetes.io/hostname": real_nodes.names[0]},
        "tolerations": [REAL_TOLERATION],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
    }
    helm = str(ensure_binaries(("helm",))["helm"])
    enforce_restricted(cluster, namespace)
    remove_harness_policy(cluster)
    try:
        r = subprocess.run(
            [helm, *helm_args[1:], "-f", "-", "--wait", "--timeout", "5m"],
            input=json.dumps(values), capture_output=True, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        assert r.returncode == 0, f"{install}\n{r.stdout}{r.stderr}"
        run_quickstart_cluster_commands(cluster, env, namespace, s3_client)
        status = Api(cluster.kubeconfig).kube.get_finetunejob(namespace, "quickstart-sentiment")
        assert status and status["status"]["phase"] == "Succeeded", status
        assert_model_loads(status["status"]["outputModel"], s3_client, tmp_path / "model")
    finally:
        subprocess.run([helm, "uninstall", release_name, "-n", system_ns, "--wait"],
                       capture_output=True, env=env)  # fmt: skip
        cluster.kubectl("delete", "namespace", system_ns, "--wait=false")
        stage.close()
        install_crd(cluster)  # the policy back, as the other tests of this cluster had it


def remove_harness_policy(cluster: ControlPlane) -> None:
    """The trainer admission policy and binding that `install_crd` applied for the other
    tests: the chart installs them itself, and helm refuses objects it does not own."""
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        r = cluster.kubectl("delete", kind, TRAINER_POLICY_NAME, "--ignore-not-found")
        assert r.returncode == 0, r.stderr


def run_quickstart_cluster_commands(
    cluster: ControlPlane, env: dict[str, str], namespace: str, s3: Any
) -> None:
    commands = header_commands(QUICKSTART)
    cluster_part = commands[[c.startswith("aws ") for c in commands].index(True) :]
    assert [c.split()[0] for c in cluster_part] == ["aws", "aws", "kubectl", "ftjobs"]
    for command in cluster_part:
        args = argv(command, env)
        if args[0] == "aws":  # aws s3 cp --recursive SRC DST, with boto3
            src, (dst_bucket, dst_key) = Path(args[4]), split_s3(args[5])
            for f in sorted(src.rglob("*")):
                if f.is_file():
                    s3.upload_file(str(f), dst_bucket, f"{dst_key}/{f.relative_to(src)}")
        elif args[0] == "kubectl":
            r = cluster.kubectl(*args[1:], "-n", namespace)
            assert r.returncode == 0, f"{command}: {r.stderr}"
        else:
            placement = [  # a real node, a request that fits it (this cluster's)
                "--set", f"resources.nodeSelector={{{REAL_LABEL}: real}}",
                "--set", f"resources.tolerations[0].key={REAL_TOLERATION['key']}",
                "--set", "resources.tolerations[0].operator=Exists",
                "--set", "resources.cpu=1000m", "--set", "resources.memory=3Gi",
            ]  # fmt: skip
            r = subprocess.run(
                [*FTJOBS, *args[1:], "-n", namespace, "--timeout", "1200", *placement],
                capture_output=True, text=True, env=env, cwd=ROOT, timeout=1500,
            )  # fmt: skip
            assert r.returncode == 0, f"{command} (rc={r.returncode}):\n{r.stdout}{r.stderr}"


def assert_model_loads(model_uri: str, s3: Any, local: Path) -> None:
    bucket, prefix = split_s3(model_uri)
    prefix = prefix.rstrip("/") + "/"
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert listing, f"nothing under {model_uri}"
    for obj in listing:
        target = local / obj["Key"][len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj["Key"], str(target))
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(local)
    assert model.num_labels == 2
