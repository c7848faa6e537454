"""Where training runs: the device (CPU / CUDA / MPS), the torchrun process group, seeds."""

from __future__ import annotations

import os

import torch

from medvae.errors import UsageError


def physical_cores() -> int:
    """The physical CPU cores this process may run on (hyper-threads not counted; at least 1)."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo") as f:
            physical = core = ""
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "physical id":
                    physical = value
                elif key == "core id":
                    core = value
                elif not key and core:  # the blank line after each processor
                    cores.add((physical, core))
                    physical = core = ""
            if core:
                cores.add((physical, core))
    except OSError:
        pass
    logical = os.cpu_count() or allowed
    per_core = max(1, logical // len(cores)) if cores else 1  # hyper-threads per physical core
    return max(1, allowed // per_core)


def default_threads() -> int:
    """``--threads``' default: ``OMP_NUM_THREADS`` where the user set it (a positive integer), else the
    physical cores for one process and 1 per process under ``torchrun``."""
    try:
        chosen = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        chosen = 0
    if chosen > 0:
        return chosen
    return 1 if world()[2] > 1 else physical_cores()


def set_threads(n: int | None = None) -> int:
    """Run torch's CPU work on ``n`` threads (None: :func:`default_threads`); returns the number set.

    The inter-op pool can be sized only before torch first uses it: later calls leave it as it is."""
    if n is None:
        n = default_threads()
    if n < 1:
        raise UsageError(f"threads {n}: expected a positive number of CPU threads", param="threads")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already started (or already set) in this process: keep it
        pass
    return n


def world() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the environment ``torchrun`` sets (0, 0, 1 otherwise)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """True on rank 0 (and in any run not started by ``torchrun``): the process that writes files."""
    return world()[0] == 0


def resolve_device(name: str = "auto") -> torch.device:
    """Pick the device: ``auto`` prefers CUDA (this process's local rank), then MPS, then CPU."""
    _, local_rank, _ = world()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"device {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps", param="device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for but CUDA is not available here; use --device cpu", param="device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {name!r} asked for but MPS is not available here; use --device cpu", param="device")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bfloat16 arithmetic (AVX512-BF16 or AMX), where bf16 matmuls beat float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def seed_everything(seed: int) -> None:
    """Seed torch's generators (medvae draws all its randomness from torch)."""
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    """Torch's seed for ``epoch``: the same on every ``torchrun`` rank (see :func:`medvae.models.base.global_batch`)."""
    return (seed * 1_000_003 + epoch * 7919) % (2**63)


def _init_distributed(device: torch.device) -> bool:
    rank, _, world_size = world()
    if world_size < 2:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return True


