"""Benchmark: checkpoint upload throughput of ftjobs' `upload_dir` vs raw boto3 `upload_file`.

    python bench/bench_storage.py [--size-mib 256] [--repeats 3] [--concurrency 8]

Both sides upload the same bytes (a synthetic DeepSpeed-like checkpoint: two big state
files, a few medium shards, small JSON files) to the same S3 server in the same run,
alternating (ftjobs, boto3, boto3, ftjobs, ...) so drift hits both. The raw side is
boto3's `upload_file` per file, files `--concurrency` at a time, with the SAME multipart
threshold, part size, part concurrency and client settings (path style, checksums only
when required, connection pool), so the ratio isolates what the adapter adds: sha256 of
every byte as it is sent, the manifest, the stale-object listing. A third row shows
boto3 defaults with files one after another (what a plain loop gets). Throughput is the
median over repeats. Goal: ratio >= 0.9.

The server: AWS_ENDPOINT_URL (+ AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or the
FTJOBS_TEST_S3_* variables `make cluster-up` writes, else a versitygw started with the
test fixtures' launcher (tests/fixtures/s3.py) for the duration of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402

from ftjobs.storage import TransferSettings, open_store, upload_dir  # noqa: E402

MiB = 1024 * 1024


@contextlib.contextmanager
def s3_endpoint() -> Iterator[dict[str, str]]:
    """AWS_* variables of a running S3 server (started here when none is configured)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield {}
        return
    if os.environ.get("FTJOBS_TEST_S3_ENDPOINT"):
        yield {
            "AWS_ENDPOINT_URL": os.environ["FTJOBS_TEST_S3_ENDPOINT"],
            "AWS_ACCESS_KEY_ID": os.environ["FTJOBS_TEST_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": os.environ["FTJOBS_TEST_S3_SECRET_KEY"],
            "AWS_REGION": os.environ.get("FTJOBS_TEST_S3_REGION", "us-east-1"),
        }
        return
    from tests.fixtures.s3 import S3Server  # the test fixtures' launcher

    with tempfile.TemporaryDirectory(prefix="ftjobs-bench-s3-") as state:
        server = S3Server.start(Path(state))
        try:
            yield server.env()
        finally:
            server.stop()


def make_checkpoint(root: Path, size_mib: int) -> list[tuple[str, Path]]:
    """Files shaped like a ZeRO checkpoint: 2 big state files (70%), 8 shards, 16 small."""
    big = size_mib * MiB * 35 // 100
    shard = (size_mib * MiB - 2 * big) // 8
    sizes = {"model_states.pt": big, "optim_states.pt": big}
    sizes |= {f"shards/shard-{i:02d}.pt": shard for i in range(8)}
    sizes |= {f"meta/info-{i:02d}.json": 2048 for i in range(16)}
    files = []
    block = os.urandom(MiB)  # random bytes: no server can shortcut them
    for rel, size in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            for _ in range(size // MiB):
                f.write(block)
            f.write(block[: size % MiB])
        files.append((rel, path))
    return files


def raw_client(endpoint: str, settings: TransferSettings) -> Any:
    # The same client settings the adapter uses (see ftjobs/storage/s3.py).
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            retries={"total_max_attempts": settings.max_attempts, "mode": settings.retry_mode},
            max_pool_connections=max(32, 2 * settings.max_concurrency),
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def timed(fn: Callable[[int], object], i: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    start, start_cpu = time.perf_counter(), cpu()
    fn(i)
    return time.perf_counter() - start, cpu() - start_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="checkpoint size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="files in parallel")
    args = parser.parse_args()

    settings = TransferSettings()
    with s3_endpoint() as env, tempfile.TemporaryDirectory(prefix="ftjobs-bench-") as tmp:
        os.environ.update(env)
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        client = raw_client(endpoint, settings)
        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        client.create_bucket(Bucket=bucket)
        files = make_checkpoint(Path(tmp) / "ckpt", args.size_mib)
        total = sum(p.stat().st_size for _, p in files)
        store = open_store(f"s3://{bucket}/ftjobs", transfer=settings)
        same = TransferConfig(
            multipart_threshold=settings.multipart_threshold,
            multipart_chunksize=settings.chunk_size,
            max_concurrency=settings.max_concurrency,
        )

        def ours(i: int) -> None:
            upload_dir(store, Path(tmp) / "ckpt", f"step-{i}", concurrency=args.concurrency)

        def raw_same(i: int) -> None:
            def one(item: tuple[str, Path]) -> None:
                client.upload_file(str(item[1]), bucket, f"raw/step-{i}/{item[0]}", Config=same)

            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(one, files))

        def raw_default(i: int) -> None:
            for rel, path in files:
                client.upload_file(str(path), bucket, f"plain/step-{i}/{rel}")

        runs: dict[str, list[tuple[float, float]]] = {"ftjobs": [], "boto3": [], "plain": []}
        load_before = os.getloadavg()[0]
        everything = open_store(f"s3://{bucket}")
        try:
            raw_same(-1)  # warm up connections and the server's directories
            for i in range(args.repeats):
                order: list[tuple[str, Callable[[int], None]]] = [
                    ("ftjobs", ours),
                    ("boto3", raw_same),
                ]
                for name, fn in order if i % 2 == 0 else order[::-1]:
                    runs[name].append(timed(fn, i))
                runs["plain"].append(timed(raw_default, i))
                everything.delete_prefix("")  # untimed: keep the server's disk small
        finally:
            everything.delete_prefix("")
            client.delete_bucket(Bucket=bucket)

        wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
        cpu = {name: statistics.median(c for _, c in r) for name, r in runs.items()}
        mibs = {name: total / MiB / w for name, w in wall.items()}
        ratio = mibs["ftjobs"] / mibs["boto3"]
        print(f"\ncheckpoint: {len(files)} files, {total / MiB:.0f} MiB; server {endpoint}")
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load_before:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after (the server runs on the same CPUs)"
        )
        print(
            f"repeats: {args.repeats} (median); files in parallel: {args.concurrency}; "
            f"parts: {settings.chunk_size // MiB} MiB x {settings.max_concurrency}"
        )
        print(f"{'uploader':<52} {'MiB/s':>8} {'median s':>9} {'client CPU s':>13}")
        rows = [
            ("ftjobs upload_dir (sha256 + MANIFEST.json last)", "ftjobs"),
            ("boto3 upload_file, same parallelism and parts", "boto3"),
            ("boto3 upload_file, defaults, one file at a time", "plain"),
        ]
        for label, name in rows:
            print(f"{label:<52} {mibs[name]:>8.1f} {wall[name]:>9.2f} {cpu[name]:>13.2f}")
        print(f"ratio ftjobs / boto3 (same settings): {ratio:.2f}  (goal >= 0.90)")
        print(f"command: {shlex.join([sys.executable, *sys.argv])}")


if __name__ == "__main__":
    main()
