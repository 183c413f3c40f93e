"""The fine-tuning recipe: setup -> train -> evaluate -> export, on the DeepSpeed engine.

One file, read top to bottom (torchtune style). Every rank runs the same code; rank 0
alone writes the job's files (progress, evaluations, summary, the model). Outputs under
the job's prefix (docs/storage-layout.md): data-report.json, ds_config.json, progress.jsonl,
checkpoints/, eval/, model/, summary.json.

Determinism: seeds are fixed, each epoch's sample order is a permutation drawn from
(seed, epoch) and dealt round-robin to the ranks, and the data position (epoch,
micro-batch) plus every rank's RNG state go into each checkpoint, so a resumed attempt
draws exactly the samples and dropout masks the uninterrupted run would have drawn.
Streaming data (an IterableDataset already sharded per rank) resumes by skipping the
samples it had consumed.

Collectives per optimizer step: one small all-reduce, so all ranks agree on stopping
(SIGTERM), on a time-based checkpoint and, when streaming, on the end of the data.

Devices: every tensor that meets the engine or a collective lives on `self.device` (the
engine's: cuda:<local rank> under NCCL, cpu under gloo). NCCL refuses CPU tensors and a
CUDA model refuses CPU inputs, so batches, flags and the loss mean are created or moved
there; tests/training/test_device_placement.py checks it on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ftjobs.api.errors import PermanentError
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.storage import (
    ObjectNotFound,
    ObjectStore,
    open_store,
    options_for,
    upload_dir,
)
from ftjobs.storage.manifest import download_prefix
from ftjobs.storage.probe import probe_write
from ftjobs.storage.uri import parse_uri
from ftjobs.trainer import failures
from ftjobs.trainer.checkpoint import Checkpointer
from ftjobs.trainer.data import prepare_data
from ftjobs.trainer.ds_config import gradient_accumulation, resolve_ds_config
from ftjobs.trainer.errors import ModelError, Stopped
from ftjobs.trainer.export import (
    LINEAGE_FILE,
    export_blocker,
    model_card,
    read_lineage,
    save_model,
)
from ftjobs.trainer.hub import fetch_hub_model
from ftjobs.trainer.packing import pack, packed_collator
from ftjobs.trainer.performance import compile_engine, load_options, prepare_model
from ftjobs.trainer.pictures import PICTURES, draw_report
from ftjobs.trainer.prefetch import DeviceBatches
from ftjobs.trainer.progress import (
    EvaluationListener,
    NullReporter,
    ProgressReporter,
    Throughput,
    format_duration,
)
from ftjobs.trainer.runtime import (
    StopSignal,
    World,
    barrier,
    rng_state,
    scratch_dir,
    seed_everything,
    set_rng_state,
)
from ftjobs.trainer.setup_checks import check_export_space
from ftjobs.trainer.tasks import get_task

log = logging.getLogger("ftjobs.trainer")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Recipe:
    """One attempt of a FineTuneJob on this rank."""

    def __init__(
        self, config: TrainerConfig, world: World, reporter: ProgressReporter | None = None
    ) -> None:
        self.config = config
        self.spec = config.spec
        self.world = world
        self.reporter: ProgressReporter = NullReporter()
        if reporter is not None and world.is_main:
            self.reporter = reporter
        self.stop = StopSignal()
        self.timings: dict[str, float] = {}
        self.throughput: dict[str, float] = {}
        self.created = time.monotonic()
        self.last_loss: float | None = None

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        started = time.monotonic()
        spec, world = self.spec, self.world
        self.scratch = scratch_dir()
        storage = spec.storage
        self.out: ObjectStore = open_store(self.config.output_uri, storage=storage)
        if world.is_main:  # before any work: a read-only output would lose it all
            probe_write(self.out)
        seed_everything(spec.hyperparameters.seed)

        # 1-2. task and data: read, clean, format, split (every rank reads the same rows;
        # streaming train data arrives already sharded for this rank).
        self.task = get_task(str(spec.task))
        self.data = prepare_data(
            spec,
            rank=world.rank,
            world_size=world.size,
            storage_options=options_for(storage),
        )
        if world.is_main:
            self.out.put_bytes("data-report.json", _json(self.data.report))

        # The model: the same seed on every rank and attempt, so new heads start equal.
        model_dir = self._fetch_model()
        self.lineage = read_lineage(model_dir)  # when the base is an earlier ftjobs result
        seed_everything(spec.hyperparameters.seed)
        perf = spec.performance
        options = load_options(perf, dtype=self._dtype(), device_index=world.local_rank)
        try:
            model, self.tokenizer = self.task.load_model(
                model_dir,
                labels=self.data.labels,
                dtype=self._dtype(),
                gguf_file=spec.model.gguf_file,
                options=options,
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            raise ModelError(f"cannot load model {spec.model.uri}: {e}") from e
        if (blocker := export_blocker(model)) is not None:
            # Found before training: otherwise the run would fail only at export.
            raise ModelError(f"model {spec.model.uri} cannot be exported: {blocker}")
        if world.is_main:  # rank 0 writes the export to its scratch volume
            check_export_space(model, spec, self.scratch)
        model = prepare_model(model, perf)
        if spec.lora is not None:
            model = self._with_lora(model)

        # 3. configure: the plan in optimizer steps, and the DeepSpeed config.
        hp = spec.hyperparameters
        self.features = self.task.tokenize(self.data.train, self.tokenizer, hp.max_seq_length)
        self.collate = self.task.collator(self.tokenizer)
        if perf.packing:  # rows of up to maxSeqLength tokens; batch sizes count packed rows
            self.features = pack(self.features, hp.max_seq_length)
            self.collate = packed_collator(self.tokenizer.pad_token_id)
        self.streaming = bool(spec.dataset.streaming)
        self.gas = gradient_accumulation(spec, world.size)
        self.micro_per_epoch = self._micro_batches_per_epoch()
        self.steps_per_epoch = self.micro_per_epoch // self.gas
        if self.steps_per_epoch == 0:
            raise PermanentError(
                f"dataset.train has too few rows for one optimizer step of globalBatchSize "
                f"{hp.global_batch_size} on {world.size} processes"
            )
        self.total_steps = hp.max_steps or self.steps_per_epoch * (hp.epochs or 1)
        self.ds_config = resolve_ds_config(
            spec, world.size, self.total_steps, cuda=_accelerator() == "cuda"
        )
        if world.is_main:
            self.out.put_bytes("ds_config.json", _json(self.ds_config))

        import deepspeed

        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = None
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                params, lr=hp.learning_rate, weight_decay=hp.weight_decay, momentum=0.9
            )
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, model_parameters=params, optimizer=optimizer, config=self.ds_config
        )
        compile_engine(self.engine, perf)

        # 5a. the base model's test metrics, once per job (kept across attempts).
        self.base_metrics = self._base_metrics()

        # Resume: model, optimizer, scheduler, data position and RNG of this rank.
        token = [uuid.uuid4().hex[:12]]
        if dist.is_initialized():
            dist.broadcast_object_list(token, src=0)
        self.checkpointer = Checkpointer(
            self.out.child("checkpoints"),
            keep=spec.checkpointing.keep,
            world=world,
            scratch=self.scratch,
            token=token[0],
            on_commit=self.reporter.checkpoint,
        )
        self.step, self.epoch, self.micro, self.samples_seen = 0, 0, 0, 0
        self.resumed_from: int | None = None
        if self.config.resume:
            # resumeFromStep picks the first attempt's start; a retried attempt continues
            # from its own newest checkpoint.
            chosen = spec.checkpointing.resume_from_step if self.config.attempt == 1 else None
            state = self.checkpointer.resume(self.engine, from_step=chosen)
            if state is not None:
                self.step, self.epoch = state["step"], state["epoch"]
                self.micro, self.samples_seen = state["micro"], state["samples_seen"]
                set_rng_state(state["rng"])
                self.resumed_from = self.step
        self.stop.install()
        self.timings["setup_s"] = time.monotonic() - started
        log.info(
            "setup done in %.1fs: %d steps (%d per epoch), %d processes, accumulation %d%s",
            self.timings["setup_s"],
            self.total_steps,
            self.steps_per_epoch,
            world.size,
            self.gas,
            f", resumed at step {self.step}" if self.resumed_from is not None else "",
        )

    def _dtype(self) -> torch.dtype:
        wanted = self.spec.model.dtype
        if wanted == "auto":
            return torch.bfloat16 if self.spec.deepspeed.precision == "bf16" else torch.float32
        return _DTYPES[wanted]

    def _fetch_model(self) -> Path:
        """A local folder with the base model (downloaded once per node from its store)."""
        uri = self.spec.model.location
        storage = self.spec.storage
        if uri.startswith("hf://"):
            return fetch_hub_model(
                self.spec.model,
                target=self.scratch / "model",
                world=self.world,
                open_cache=lambda prefix: open_store(prefix, storage=storage),
            )
        parsed = parse_uri(uri)
        if parsed.scheme == "file":
            assert parsed.path is not None
            if not parsed.path.exists():
                raise ModelError(f"model {uri} does not exist")
            return parsed.path
        target = self.scratch / "model"
        if self.world.local_rank == 0:
            store = open_store(uri, storage=storage)
            if not target.exists():
                _download_model(store, target)
        barrier()
        return target

    def _with_lora(self, model: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, get_peft_model

        lora = self.spec.lora
        assert lora is not None
        encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
        task_type = self.task.peft_task_type(encoder_decoder)
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,  # None: peft's defaults for the architecture
            task_type=task_type,
        )
        peft_model: torch.nn.Module = get_peft_model(model, peft_config)
        return peft_model

    def _micro_batches_per_epoch(self) -> int:
        mbs = self.spec.hyperparameters.micro_batch_size
        if not self.streaming:
            return (len(self.features) // self.world.size) // mbs
        # Streaming: the size comes from the data report (rows of the whole train split).
        rows = int(self.data.report.get("splits", {}).get("train", {}).get("rows", 0))
        return (rows // self.world.size) // mbs

    def _base_metrics(self) -> dict[str, float]:
        if not self.spec.evaluation.compare_base_model:
            return {}
        found: list[Any] = [None]
        if self.world.is_main:
            with contextlib.suppress(ObjectNotFound):
                found[0] = _loads(self.out.get_bytes("eval/base.json"))["metrics"]
        if dist.is_initialized():
            dist.broadcast_object_list(found, src=0)
        if found[0] is not None:
            return dict(found[0])
        metrics = self.evaluate("test")
        if self.world.is_main:
            self.out.put_bytes("eval/base.json", _json({"split": "test", "metrics": metrics}))
        log.info("base model on test: %s", _fmt(metrics))
        return metrics

    # ------------------------------------------------------------------ train
    def _epoch_batches(self, epoch: int) -> Iterator[list[dict[str, Any]]]:
        """This rank's micro-batches of `epoch`, from the start of the epoch."""
        mbs = self.spec.hyperparameters.micro_batch_size
        if self.streaming:
            rows = iter(self.features)
            while chunk := list(itertools.islice(rows, mbs)):
                if len(chunk) < mbs:
                    return
                yield chunk
            return
        # A permutation from (seed, epoch), dealt round-robin: rank r takes r, r+W, ...
        generator = torch.Generator().manual_seed(self.spec.hyperparameters.seed + epoch)
        order = torch.randperm(len(self.features), generator=generator).tolist()
        mine = order[self.world.rank :: self.world.size][: self.micro_per_epoch * mbs]
        for start in range(0, len(mine), mbs):
            yield [self.features[i] for i in mine[start : start + mbs]]

    @property
    def device(self) -> torch.device:
        """The engine's device: batches, flags and reduced metrics go here."""
        return torch.device(self.engine.device)

    def _device_batches(self, source: Iterator[list[dict[str, Any]]]) -> DeviceBatches:
        return DeviceBatches(
            source,
            self.collate,
            self.device,
            prefetch=self.spec.performance.prefetch,
            depth=self.gas + 1,  # the next optimizer step's micro-batches, and one more
        )

    def _throughput(self, tokens: int, train_s: float) -> dict[str, float]:
        """Tokens/s (all ranks; after the attempt's first, warm-up step) and this rank's
        peak accelerator memory."""
        total = torch.tensor([float(tokens)], device=self.device)
        if dist.is_initialized():
            dist.all_reduce(total)
        out = {"tokensPerSecond": round(float(total) / max(train_s, 1e-9), 1)}
        if self.device.type == "cuda":
            out["peakMemoryBytes"] = float(torch.cuda.max_memory_allocated(self.device))
        return out

    def _agree(self, *flags: bool) -> list[bool]:
        """Each flag is true on all ranks when it is true on any (one all-reduce)."""
        values = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.device)
        if dist.is_initialized():
            dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]

    def train(self) -> None:
        spec, hp = self.spec, self.spec.hyperparameters
        ckpt, evaluation = spec.checkpointing, spec.evaluation
        log_every = max(1, self.total_steps // 100)
        throughput = Throughput(self.step, self.total_steps)
        last_checkpoint = time.monotonic()
        started = time.monotonic()
        # Summed on the device: no host sync per micro-batch, one at each log line.
        loss_sum = torch.zeros((), device=self.device)
        loss_steps = 0
        tokens = 0
        warm: tuple[float, int] | None = None  # (time, tokens) when the first step ended
        self.engine.train()
        # On the engine's device, prepared ahead (performance.prefetch). A stop leaves the
        # reader thread to die with the process; it holds nothing that needs closing.
        batches = self._device_batches(
            itertools.islice(self._epoch_batches(self.epoch), self.micro, None)
        )

        while self.step < self.total_steps:
            pending = list(itertools.islice(batches, self.gas))
            time_due = bool(
                self.world.is_main
                and ckpt.every_seconds
                and time.monotonic() - last_checkpoint >= ckpt.every_seconds
            )
            stop, out_of_data, time_due = self._agree(
                self.stop.requested is not None, len(pending) < self.gas, time_due
            )
            if stop:
                if self.checkpointer.last_saved_step == self.step:
                    self.checkpointer.wait()  # this step is saved already: let it commit
                else:
                    self.save_checkpoint(wait=True)
                raise Stopped(f"stopped by {self.stop.requested or 'a peer'} at step {self.step}")
            if time_due and self.checkpointer.last_saved_step != self.step:
                self.save_checkpoint()
                last_checkpoint = time.monotonic()
            if out_of_data:  # end of the epoch (the incomplete rest is dropped)
                if hp.epochs and self.epoch + 1 >= hp.epochs:
                    break
                self.epoch, self.micro = self.epoch + 1, 0
                batches.close()
                batches = self._device_batches(self._epoch_batches(self.epoch))
                continue

            for batch in pending:
                loss = self.engine(**batch.wait()).loss
                self.engine.backward(loss)
                self.engine.step()
                loss_sum += loss.detach().float()
                tokens += batch.tokens
                self.micro += 1
            self.step += 1
            failures.record_optimizer_step()
            if warm is None:
                if self.device.type == "cuda":  # once: the timed steps start after this one
                    torch.cuda.synchronize(self.device)
                warm = (time.monotonic(), tokens)
                self.timings["first_step_s"] = warm[0] - started
            samples = len(pending) * hp.micro_batch_size * self.world.size
            self.samples_seen += samples
            throughput.add(samples)
            loss_steps += 1

            if self.step % log_every == 0 or self.step == self.total_steps:
                mean = (loss_sum / (loss_steps * self.gas)).reshape(1)
                if dist.is_initialized():
                    dist.all_reduce(mean)
                    mean /= self.world.size
                epoch = self.epoch + self.micro / max(self.micro_per_epoch, 1)
                progress = throughput.progress(
                    self.step, epoch=epoch, loss=float(mean), lr=float(self.engine.get_lr()[0])
                )
                self.reporter.report(progress)
                self.last_loss = float(mean)
                log.info(
                    "step %d/%d epoch %.2f loss %.4f lr %.3g %.1f samples/s eta %s",
                    self.step,
                    self.total_steps,
                    epoch,
                    float(mean),
                    progress.learning_rate or 0.0,
                    progress.samples_per_second or 0.0,
                    progress.eta or "-",
                )
                loss_sum.zero_()
                loss_steps = 0
            if evaluation.every_steps and self.step % evaluation.every_steps == 0:
                metrics = self.evaluate("validation")
                if self.world.is_main:
                    doc = {"step": self.step, "split": "validation", "metrics": metrics}
                    self.out.put_bytes(f"eval/step-{self.step:09d}.json", _json(doc))
                    if isinstance(self.reporter, EvaluationListener):
                        self.reporter.evaluation(self.step, "validation", metrics)
                log.info("validation at step %d: %s", self.step, _fmt(metrics))
            if ckpt.every_steps and self.step % ckpt.every_steps == 0:
                self.save_checkpoint()
                last_checkpoint = time.monotonic()

        self.timings["train_s"] = time.monotonic() - started
        batches.close()
        if warm is not None:
            self.throughput = self._throughput(tokens - warm[1], time.monotonic() - warm[0])
        if self.checkpointer.last_saved_step != self.step and self.resumed_from != self.step:
            # The final weights are committed before export, whatever the checkpoint
            # settings: an export that fails is retried by an attempt that resumes here
            # and only evaluates and exports (nothing is trained twice).
            self.save_checkpoint()
        drain = time.monotonic()
        self.checkpointer.close()  # every upload committed (or its failure raised)
        self.timings["checkpoint_drain_s"] = time.monotonic() - drain
        log.info(
            "training done: %d steps in %s", self.step, format_duration(self.timings["train_s"])
        )

    def save_checkpoint(self, *, wait: bool = False) -> None:
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "micro": self.micro,
            "samples_seen": self.samples_seen,
            "rng": rng_state(),
        }
        blocked = self.checkpointer.save(self.engine, self.step, state, wait=wait)
        log.info("checkpoint step %d saved (training paused %.2fs)", self.step, blocked)

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, split: str) -> dict[str, float]:
        """Task metrics on `split` (validation/test); every rank runs the same forwards."""
        rows = getattr(self.data, split)
        if rows is None or len(rows) == 0:
            return {}
        if (cap := self.spec.evaluation.max_samples) is not None and len(rows) > cap:
            rows = rows.select(range(cap))
        wanted = self.spec.evaluation.metrics
        if split == "validation" and wanted is not None and "loss" not in wanted:
            wanted = [*wanted, "loss"]  # the validation curve of loss.png and TensorBoard
        return self.task.evaluate(
            self.engine.module,
            self.tokenizer,
            rows,
            batch_size=self.spec.hyperparameters.micro_batch_size,
            max_new_tokens=self.spec.evaluation.max_new_tokens,
            metrics=wanted,
            synced_gpus=self.spec.deepspeed.zero_stage == 3 and self.world.size > 1,
            max_seq_length=self.spec.hyperparameters.max_seq_length,
        )

    # ------------------------------------------------------------------ export
    def _summary(self, tuned: dict[str, float]) -> dict[str, Any]:
        """summary.json (timings are completed after the export)."""
        return {
            "name": self.config.name,
            "namespace": self.config.namespace,
            "task": str(self.spec.task),
            "baseModel": self.spec.model.uri,
            "continuedFrom": _parent(self.config),
            "outputModel": self.out.url("model/"),
            "metrics": {"split": "test", "base": self.base_metrics, "fineTuned": tuned},
            "steps": self.step,
            "epochs": round(self.epoch + self.micro / max(self.micro_per_epoch, 1), 4),
            "samplesSeen": self.samples_seen,
            "attempt": self.config.attempt,
            "resumedFromStep": self.resumed_from,
            "worldSize": self.world.size,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "throughput": self.throughput,
            # For `ftjobs compare`: this attempt's trainer wall time, the last logged
            # training loss, and the spec that made the run (a spec holds no credentials).
            "wallSeconds": round(time.monotonic() - self.created, 3),
            "finalLoss": None if self.last_loss is None else round(self.last_loss, 6),
            "spec": self.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }

    def _lineage_entry(self, tuned: dict[str, float]) -> dict[str, Any]:
        return {
            "job": self.config.name,
            "namespace": self.config.namespace,
            "model": self.out.url("model/"),
            "baseModel": self.spec.model.uri,
            "fromJob": self.config.parent.name if self.config.parent else None,
            "steps": self.step,
            "metrics": tuned,
        }

    def finish(self) -> dict[str, Any]:
        """Test the fine-tuned model, export it, write summary.json; the summary."""
        started = time.monotonic()
        tuned = self.evaluate("test")
        log.info("fine-tuned model on test: %s", _fmt(tuned))
        self.timings["evaluate_s"] = time.monotonic() - started

        started = time.monotonic()
        export_dir = self.scratch / f"export-rank-{self.world.rank:05d}"
        lora = self.spec.lora
        save_model(
            self.engine.module,
            self.tokenizer,
            export_dir,
            world=self.world,
            zero_stage=self.spec.deepspeed.zero_stage,
            merge_lora=bool(lora and lora.merge_on_export),
        )
        metrics = {"base": self.base_metrics, "fine_tuned": tuned}
        summary: dict[str, Any] = {}
        if self.world.is_main:
            summary = self._summary(tuned)
            # Pictures go into the model folder (the card shows them) and next to
            # summary.json, with report.html.
            report = draw_report(self.out, self.config.name, summary, self.data.report)
            pictures = [k for k in PICTURES if k in report]
            lineage = [self._lineage_entry(tuned), *self.lineage]
            for key in pictures:
                (export_dir / key).write_bytes(report[key])
            card = model_card(
                self.config,
                report=self.data.report,
                metrics=metrics,
                steps=self.step,
                world_size=self.world.size,
                pictures=pictures,
                lineage=lineage,
            )
            (export_dir / "README.md").write_text(card)
            (export_dir / LINEAGE_FILE).write_text(_json(lineage).decode())
            upload_dir(self.out, export_dir, "model")
            for key, data in report.items():
                self.out.put_bytes(key, data)
            self.timings["export_s"] = time.monotonic() - started
            summary["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
            summary["wallSeconds"] = round(time.monotonic() - self.created, 3)
            summary["cpuSeconds"] = round(time.process_time(), 3)  # this rank, all threads
            summary["report"] = sorted(report)
            self.out.put_bytes("summary.json", _json(summary))
            self.reporter.finished(summary)
        shutil.rmtree(export_dir, ignore_errors=True)
        barrier()
        return summary


def _accelerator() -> str:
    """The device type DeepSpeed trains on ("cuda", "cpu", ...)."""
    from deepspeed.accelerator import get_accelerator

    return str(get_accelerator().device_name())


def _download_model(store: ObjectStore, target: Path) -> None:
    """Every object under the model's prefix into `target` (a Hugging Face folder).

    All or nothing (`download_prefix`): a download cut short leaves no `target`, so the
    next attempt on this node downloads again instead of loading half a model. A missing
    bucket or an empty prefix is a ModelError (permanent) naming the URI.
    """
    try:
        download_prefix(store, target)
    except ObjectNotFound as e:
        raise ModelError(f"model {store.uri}: {e}") from None


def _parent(config: TrainerConfig) -> dict[str, Any] | None:
    """model.fromJob as resolved: the parent job's name, namespace and model URI."""
    return None if config.parent is None else config.parent.model_dump(by_alias=True)


def _json(doc: Any) -> bytes:
    import json

    return (json.dumps(doc, indent=2, default=str) + "\n").encode()


def _loads(data: bytes) -> Any:
    import json

    return json.loads(data)


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())) or "(none)"
