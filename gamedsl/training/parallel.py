"""Data-parallel runs on torch.distributed, as started by `torchrun`.

Each process draws its own shards of the global batch. A run's data is cut into `shards`
streams (by default one per process at the start); a process owns a contiguous block of
them, so the global batch — the concatenation of all shards — does not depend on how
many processes share it. A run can therefore be resumed with any number of processes that
divides its shard count, and a single process that draws every shard reproduces a
distributed run exactly. Only rank 0 writes; checkpoints gather every shard's RNG state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gamedsl.errors import UsageError
from gamedsl.training import launch


@dataclass(frozen=True)
class Parallel:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard_ids(self, shards: int) -> list[int]:
        if shards % self.world:
            counts = [n for n in range(1, shards + 1) if shards % n == 0]
            raise UsageError(
                f"this run's data comes in {shards} shard(s), which {self.world} processes cannot share evenly",
                hint=f"use a number of processes that divides {shards}: " + ", ".join(map(str, counts))
                + "; new runs can choose more shards with --set shards=N",
            )
        per = shards // self.world
        return list(range(self.rank * per, (self.rank + 1) * per))

    def device(self, requested: str) -> str:
        """One GPU per process: cuda:LOCAL_RANK when CUDA is used."""
        if requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def broadcast(self, value):
        """Rank 0's value on every process (e.g. the run directory it chose)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every process if it is True on any (so that all stop at the same step)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather_rng(self, shard_ids: list[int], state: dict[str, list[torch.Tensor]]) -> dict[str, list[torch.Tensor]]:
        """Every shard's generator state, in shard order (a list per variable)."""
        if not self.active:
            return state
        pieces = [None] * self.world
        dist.all_gather_object(pieces, (shard_ids, {k: [s.cpu() for s in v] for k, v in state.items()}))
        merged: dict[str, dict[int, torch.Tensor]] = {}
        for ids, part in pieces:
            for name, states in part.items():
                merged.setdefault(name, {}).update(zip(ids, states))
        return {name: [by_shard[k] for k in sorted(by_shard)] for name, by_shard in merged.items()}


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def from_environment(device: str) -> Parallel:
    """The process group torchrun describes in the environment (a single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Parallel()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        if os.environ.get(launch.MARK):  # our launcher: rank 0's store listens on 127.0.0.1 only
            fd = os.environ.get(launch.STORE_FD) if rank == 0 else None
            store = dist.TCPStore(
                launch.LOOPBACK, int(os.environ["MASTER_PORT"]), world, is_master=rank == 0,
                master_listen_fd=int(fd) if fd else None, use_libuv=False,
            )  # fmt: skip
            dist.init_process_group(backend, store=store, rank=rank, world_size=world)
        else:  # torchrun's environment
            dist.init_process_group(backend)
    return Parallel(rank, world, local)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
