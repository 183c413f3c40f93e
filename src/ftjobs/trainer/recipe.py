"""The fine-tuning recipe: setup -> train -> evaluate -> export, on the DeepSpeed engine.

One class, read top to bottom (torchtune style): `setup` runs the `_setup_*` steps in
order, `train` the optimizer steps, `finish` the test and the export. Every rank runs the
same code; rank 0 alone writes the job's files (progress, evaluations, summary, the
model). Outputs under the job's prefix (docs/storage-layout.md): data-report.json,
ds_config.json, progress.jsonl, checkpoints/, eval/, model/, summary.json. The base model
comes from `trainer.base_model`, the exported model and summary.json from
`trainer.outcome`.

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

import itertools
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from ftjobs.api.errors import PermanentError
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.storage import ObjectStore, open_store, options_for
from ftjobs.storage.probe import probe_write
from ftjobs.trainer import failures
from ftjobs.trainer.base_model import fetch_model, load_base_model
from ftjobs.trainer.checkpoint import Checkpointer
from ftjobs.trainer.data import prepare_data
from ftjobs.trainer.ds_config import gradient_accumulation, resolve_ds_config
from ftjobs.trainer.errors import Stopped
from ftjobs.trainer.evaluation import base_metrics, evaluate_split, format_metrics
from ftjobs.trainer.export import read_lineage
from ftjobs.trainer.outcome import export_and_summarize, json_bytes
from ftjobs.trainer.packing import pack, packed_collator
from ftjobs.trainer.performance import compile_engine
from ftjobs.trainer.prefetch import DeviceBatch, DeviceBatches, epoch_batches
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
    agree,
    rng_state,
    scratch_dir,
    seed_everything,
    set_rng_state,
    throughput,
)
from ftjobs.trainer.tasks import get_task

log = logging.getLogger("ftjobs.trainer")


@dataclass
class _Meter:
    """Running totals of one `train` call."""

    throughput: Throughput
    started: float = field(default_factory=time.monotonic)
    last_checkpoint: float = field(default_factory=time.monotonic)
    loss_sum: torch.Tensor | None = None  # summed on the device: one host sync per log line
    loss_steps: int = 0
    tokens: int = 0
    warm: tuple[float, int] | None = None  # (time, tokens) when the first step ended


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
        self._setup_output()
        self._setup_data()
        model = self._setup_model()
        self._setup_plan()
        self._setup_engine(model)
        # 5a. the base model's test metrics, once per job (kept across attempts).
        self.base_metrics = self._base_metrics()
        self._setup_checkpointer()
        self.stop.install()
        self.timings["setup_s"] = time.monotonic() - started
        log.info(
            "setup done in %.1fs: %d steps (%d per epoch), %d processes, accumulation %d%s",
            self.timings["setup_s"],
            self.total_steps,
            self.steps_per_epoch,
            self.world.size,
            self.gas,
            f", resumed at step {self.step}" if self.resumed_from is not None else "",
        )

    def _setup_output(self) -> None:
        self.scratch = scratch_dir()
        storage = self.spec.storage
        self.out: ObjectStore = open_store(self.config.output_uri, storage=storage)
        if self.world.is_main:  # before any work: a read-only output would lose it all
            probe_write(self.out)
        seed_everything(self.spec.hyperparameters.seed)

    def _setup_data(self) -> None:
        """1-2. task and data: read, clean, format, split (every rank reads the same rows;
        streaming train data arrives already sharded for this rank)."""
        storage = self.spec.storage
        self.task = get_task(str(self.spec.task))
        self.data = prepare_data(
            self.spec,
            rank=self.world.rank,
            world_size=self.world.size,
            storage_options=options_for(storage),
        )
        if self.world.is_main:
            self.out.put_bytes("data-report.json", json_bytes(self.data.report))

    def _setup_model(self) -> torch.nn.Module:
        """The model: the same seed on every rank and attempt, so new heads start equal."""
        model_dir = fetch_model(self.spec, self.scratch, self.world)
        self.lineage = read_lineage(model_dir)  # when the base is an earlier ftjobs result
        seed_everything(self.spec.hyperparameters.seed)
        model, self.tokenizer = load_base_model(
            self.task,
            self.spec,
            model_dir,
            labels=self.data.labels,
            world=self.world,
            scratch=self.scratch,
        )
        return model

    def _setup_plan(self) -> None:
        """3. configure: the features, the plan in optimizer steps, the DeepSpeed config."""
        spec, hp, world = self.spec, self.spec.hyperparameters, self.world
        self.features = self.task.tokenize(self.data.train, self.tokenizer, hp.max_seq_length)
        self.collate = self.task.collator(self.tokenizer)
        if spec.performance.packing:  # rows of up to maxSeqLength tokens; batches count them
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
            self.out.put_bytes("ds_config.json", json_bytes(self.ds_config))

    def _setup_engine(self, model: torch.nn.Module) -> None:
        import deepspeed

        hp = self.spec.hyperparameters
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = None
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                params, lr=hp.learning_rate, weight_decay=hp.weight_decay, momentum=0.9
            )
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, model_parameters=params, optimizer=optimizer, config=self.ds_config
        )
        compile_engine(self.engine, self.spec.performance)

    def _setup_checkpointer(self) -> None:
        """Resume: model, optimizer, scheduler, data position and RNG of this rank."""
        token = [uuid.uuid4().hex[:12]]
        if dist.is_initialized():
            dist.broadcast_object_list(token, src=0)
        self.checkpointer = Checkpointer(
            self.out.child("checkpoints"),
            keep=self.spec.checkpointing.keep,
            world=self.world,
            scratch=self.scratch,
            token=token[0],
            on_commit=self.reporter.checkpoint,
        )
        self.step, self.epoch, self.micro, self.samples_seen = 0, 0, 0, 0
        self.resumed_from: int | None = None
        if not self.config.resume:
            return
        # resumeFromStep picks the first attempt's start; a retried attempt continues
        # from its own newest checkpoint.
        chosen = self.spec.checkpointing.resume_from_step if self.config.attempt == 1 else None
        state = self.checkpointer.resume(self.engine, from_step=chosen)
        if state is not None:
            self.step, self.epoch = state["step"], state["epoch"]
            self.micro, self.samples_seen = state["micro"], state["samples_seen"]
            set_rng_state(state["rng"])
            self.resumed_from = self.step

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
        return base_metrics(self.out, self.world, lambda: self.evaluate("test"))

    # ------------------------------------------------------------------ train
    def _epoch_batches(self, epoch: int) -> Iterator[list[dict[str, Any]]]:
        """This rank's micro-batches of `epoch`, from the start of the epoch."""
        return epoch_batches(
            self.features,
            streaming=self.streaming,
            micro_batch_size=self.spec.hyperparameters.micro_batch_size,
            seed=self.spec.hyperparameters.seed + epoch,
            world=self.world,
            per_epoch=self.micro_per_epoch,
        )

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

    def train(self) -> None:
        hp = self.spec.hyperparameters
        meter = _Meter(Throughput(self.step, self.total_steps))
        meter.loss_sum = torch.zeros((), device=self.device)
        self.engine.train()
        # On the engine's device, prepared ahead (performance.prefetch). A stop leaves the
        # reader thread to die with the process; it holds nothing that needs closing.
        batches = self._device_batches(
            itertools.islice(self._epoch_batches(self.epoch), self.micro, None)
        )
        while self.step < self.total_steps:
            pending = list(itertools.islice(batches, self.gas))
            if self._out_of_data(pending, meter):  # end of the epoch (the rest is dropped)
                if hp.epochs and self.epoch + 1 >= hp.epochs:
                    break
                self.epoch, self.micro = self.epoch + 1, 0
                batches.close()
                batches = self._device_batches(self._epoch_batches(self.epoch))
                continue
            self._optimizer_step(pending, meter)
            self._after_step(meter)
        batches.close()
        self._end_training(meter)

    def _out_of_data(self, pending: list[DeviceBatch], meter: _Meter) -> bool:
        """Agree on a stop (checkpoint and raise Stopped), a time-based checkpoint and
        the end of the data; whether the data ran out."""
        ckpt = self.spec.checkpointing
        time_due = bool(
            self.world.is_main
            and ckpt.every_seconds
            and time.monotonic() - meter.last_checkpoint >= ckpt.every_seconds
        )
        stop, out_of_data, time_due = agree(
            self.device, self.stop.requested is not None, len(pending) < self.gas, time_due
        )
        if stop:
            if self.checkpointer.last_saved_step == self.step:
                self.checkpointer.wait()  # this step is saved already: let it commit
            else:
                self.save_checkpoint(wait=True)
            raise Stopped(f"stopped by {self.stop.requested or 'a peer'} at step {self.step}")
        if time_due and self.checkpointer.last_saved_step != self.step:
            self.save_checkpoint()
            meter.last_checkpoint = time.monotonic()
        return out_of_data

    def _optimizer_step(self, pending: list[DeviceBatch], meter: _Meter) -> None:
        assert meter.loss_sum is not None
        for batch in pending:
            loss = self.engine(**batch.wait()).loss
            self.engine.backward(loss)
            self.engine.step()
            meter.loss_sum += loss.detach().float()
            meter.tokens += batch.tokens
            self.micro += 1
        self.step += 1
        failures.record_optimizer_step()
        if meter.warm is None:
            if self.device.type == "cuda":  # once: the timed steps start after this one
                torch.cuda.synchronize(self.device)
            meter.warm = (time.monotonic(), meter.tokens)
            self.timings["first_step_s"] = meter.warm[0] - meter.started
        samples = len(pending) * self.spec.hyperparameters.micro_batch_size * self.world.size
        self.samples_seen += samples
        meter.throughput.add(samples)
        meter.loss_steps += 1

    def _after_step(self, meter: _Meter) -> None:
        """Progress line, validation and the step-based checkpoint, when due."""
        ckpt, evaluation = self.spec.checkpointing, self.spec.evaluation
        if self.step % max(1, self.total_steps // 100) == 0 or self.step == self.total_steps:
            self._report_progress(meter)
        if evaluation.every_steps and self.step % evaluation.every_steps == 0:
            metrics = self.evaluate("validation")
            if self.world.is_main:
                doc = {"step": self.step, "split": "validation", "metrics": metrics}
                self.out.put_bytes(f"eval/step-{self.step:09d}.json", json_bytes(doc))
                if isinstance(self.reporter, EvaluationListener):
                    self.reporter.evaluation(self.step, "validation", metrics)
            log.info("validation at step %d: %s", self.step, format_metrics(metrics))
        if ckpt.every_steps and self.step % ckpt.every_steps == 0:
            self.save_checkpoint()
            meter.last_checkpoint = time.monotonic()

    def _report_progress(self, meter: _Meter) -> None:
        assert meter.loss_sum is not None
        mean = (meter.loss_sum / (meter.loss_steps * self.gas)).reshape(1)
        if dist.is_initialized():
            dist.all_reduce(mean)
            mean /= self.world.size
        epoch = self.epoch + self.micro / max(self.micro_per_epoch, 1)
        progress = meter.throughput.progress(
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
        meter.loss_sum.zero_()
        meter.loss_steps = 0

    def _end_training(self, meter: _Meter) -> None:
        self.timings["train_s"] = time.monotonic() - meter.started
        if meter.warm is not None:
            self.throughput = throughput(
                meter.tokens - meter.warm[1], time.monotonic() - meter.warm[0], self.device
            )
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
        return evaluate_split(
            self.task,
            self.engine.module,
            self.tokenizer,
            rows,
            split=split,
            spec=self.spec,
            world=self.world,
        )

    # ------------------------------------------------------------------ export
    def finish(self) -> dict[str, Any]:
        """Test the fine-tuned model, export it, write summary.json; the summary."""
        started = time.monotonic()
        tuned = self.evaluate("test")
        log.info("fine-tuned model on test: %s", format_metrics(tuned))
        self.timings["evaluate_s"] = time.monotonic() - started
        return export_and_summarize(self, tuned)


def _accelerator() -> str:
    """The device type DeepSpeed trains on ("cuda", "cpu", ...)."""
    from deepspeed.accelerator import get_accelerator

    return str(get_accelerator().device_name())
