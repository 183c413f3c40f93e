"""A stand-in accelerator for CPU-only machines: where the trainer's tensors would live.

Named as what it is: a fake device, the one mock of the device tests, because CI has no
GPU and the bugs it catches (a batch never moved to the engine's device, a flag tensor
all-reduced on the CPU under NCCL) only show on one. The real DeepSpeed engine keeps
computing on the CPU; what changes is what the trainer is told:

- `engine.device` and the model's `.device` report FAKE (`privateuseone:0`), so the
  trainer's `.to(engine.device)` and `torch.*(..., device=engine.device)` target it;
- a TorchFunctionMode turns those calls into CPU tensors *registered* as living on
  FAKE, and propagates the registration through ops whose inputs are registered (as a
  real device does: what is computed from device tensors stays on the device);
- recording wrappers around the engine (forward, backward), the model under evaluation
  (forward, generate) and the collectives called from ftjobs code check that every
  tensor they get is registered, and register what the engine returns (its loss and
  logits would be device tensors).

A tensor that reaches one of those boundaries unregistered is a tensor a CUDA run would
have on the wrong device: it is recorded as a violation with the caller's location.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

# PyTorch's reserved out-of-tree device type: nothing in torch, transformers or DeepSpeed
# creates tensors there on its own (unlike `meta`, which transformers uses to build models
# before loading weights), so every use of it comes from the trainer asking for its
# engine's device.
FAKE = torch.device("privateuseone", 0)
_COLLECTIVES = ("all_reduce", "broadcast", "all_gather", "reduce", "all_gather_into_tensor")
# Ops whose result leaves the device (never registered).
_TO_HOST = {torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.item}


def _is_fake(device: Any) -> bool:
    if isinstance(device, str):
        return device.split(":")[0] == FAKE.type
    return isinstance(device, torch.device) and device.type == FAKE.type


@dataclass
class Placement:
    """What the wrappers saw: checks per boundary and the violations among them."""

    checks: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    _on_device: dict[int, weakref.ref[torch.Tensor]] = field(default_factory=dict)
    _inside_engine: int = 0

    # ---------------------------------------------------------------- registry
    def register(self, value: Any) -> Any:
        for t in tree_flatten(value)[0]:
            if isinstance(t, torch.Tensor):
                key = id(t)
                self._on_device[key] = weakref.ref(t, lambda _, k=key: self._on_device.pop(k, None))
        return value

    def on_device(self, t: torch.Tensor) -> bool:
        ref = self._on_device.get(id(t))
        return ref is not None and ref() is t

    def check(self, boundary: str, value: Any, where: str) -> None:
        tensors = [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]
        self.checks[boundary] = self.checks.get(boundary, 0) + len(tensors)
        for t in tensors:
            if not self.on_device(t):
                self.violations.append(
                    f"{boundary}: a {tuple(t.shape)} {t.dtype} tensor not on the engine's "
                    f"device, from {where}"
                )

    @contextlib.contextmanager
    def engine_call(self) -> Iterator[None]:
        """Inside the real engine everything is CPU: no rewriting, no propagation."""
        self._inside_engine += 1
        try:
            yield
        finally:
            self._inside_engine -= 1


class FakeDeviceMode(TorchFunctionMode):
    """Maps FAKE to CPU for tensor creation and `.to`, registering the results."""

    def __init__(self, placement: Placement) -> None:
        super().__init__()
        self.placement = placement

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if self.placement._inside_engine:
            return func(*args, **kwargs)
        to_fake = False
        if _is_fake(kwargs.get("device")):
            kwargs["device"], to_fake = torch.device("cpu"), True
        if func is torch.Tensor.to:
            rest = []
            for a in args[1:]:
                if _is_fake(a):
                    a, to_fake = torch.device("cpu"), True
                elif isinstance(a, torch.Tensor) and self.placement.on_device(a):
                    a, to_fake = a.dtype, True
                rest.append(a)
            args = (args[0], *rest)
        out = func(*args, **kwargs)
        if func in _TO_HOST or (func is torch.Tensor.to and not to_fake):
            return out
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if to_fake or any(self.placement.on_device(t) for t in inputs):
            if func is torch.Tensor.to and isinstance(out, torch.Tensor) and out is args[0]:
                out = out.view_as(out)  # a new tensor object, like a real copy to the device
            self.placement.register(out)
        return out


def _caller() -> str:
    """The innermost ftjobs frame that led here (file:line of the offending call)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("ftjobs"):
            return f"{module}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


class ModelOnDevice:
    """The model as the trainer sees it on an accelerator: `.device` is FAKE, and its
    forward and `generate` take device tensors only."""

    def __init__(self, model: Any, placement: Placement) -> None:
        self.__dict__["_model"] = model
        self.__dict__["_placement"] = placement

    @property
    def device(self) -> torch.device:
        return FAKE

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._placement.check("model.forward", (args, kwargs), _caller())
        with self._placement.engine_call():
            out = self._model(*args, **kwargs)
        return self._placement.register(out)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self._placement.check("model.generate", (args, kwargs), _caller())
        with self._placement.engine_call():
            out = self._model.generate(*args, **kwargs)
        return self._placement.register(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._model, name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        import copy

        return copy.deepcopy(self._model, memo)


class EngineOnDevice(ModelOnDevice):
    """The DeepSpeed engine as it is on an accelerator (forward, backward checked)."""

    @property
    def module(self) -> ModelOnDevice:
        return ModelOnDevice(self._model.module, self._placement)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._placement.check("engine.forward", (args, kwargs), _caller())
        with self._placement.engine_call():
            out = self._model(*args, **kwargs)
        return self._placement.register(out)

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._placement.check("engine.backward", loss, _caller())
        with self._placement.engine_call():
            return self._model.backward(loss, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._model, name)
        if callable(attr) and name in ("save_checkpoint", "load_checkpoint", "step"):

            @functools.wraps(attr)
            def call(*args: Any, **kwargs: Any) -> Any:
                with self._placement.engine_call():
                    return attr(*args, **kwargs)

            return call
        return attr


@contextlib.contextmanager
def fake_device(placement: Placement) -> Iterator[None]:
    """Inside: deepspeed.initialize returns an EngineOnDevice, ftjobs' collectives are
    checked, and FAKE tensors are registered CPU tensors."""
    import deepspeed

    initialize = deepspeed.initialize

    def initialize_on_device(*args: Any, **kwargs: Any) -> Any:
        with placement.engine_call():
            engine, *rest = initialize(*args, **kwargs)
        return (EngineOnDevice(engine, placement), *rest)

    originals = {name: getattr(dist, name) for name in _COLLECTIVES}

    def checked(name: str) -> Callable[..., Any]:
        real = originals[name]

        @functools.wraps(real)
        def collective(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("ftjobs") and not placement._inside_engine:
                placement.check(f"dist.{name}", (args, kwargs), _caller())
            with placement.engine_call():
                return real(*args, **kwargs)

        return collective

    deepspeed.initialize = initialize_on_device
    for name in _COLLECTIVES:
        setattr(dist, name, checked(name))
    try:
        with FakeDeviceMode(placement):
            yield
    finally:
        deepspeed.initialize = initialize
        for name, real in originals.items():
            setattr(dist, name, real)
