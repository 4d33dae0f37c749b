"""Multi-process training with torch.distributed, started by ``torchrun``.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; one process per rank, gloo on CPU, nccl on GPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or a process on its own: the one that writes the run directory (known before
    the process group is set up)."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device: str) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun; return this rank's view and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(), torch.device(device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        # torchrun's store outlives a restart (--max-restarts): a relaunched rank would read the peers' addresses of
        # the attempt before (pytorch#167288) and fail to connect. Each attempt's keys get a prefix of their own.
        store, _, _ = next(dist.rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group("nccl" if cuda else "gloo", store=dist.PrefixStore(f"vaelab/attempt_{attempt}/", store),
                                rank=rank, world_size=world)
    if cuda:
        torch.cuda.set_device(local)
    return Dist(rank, world, local), torch.device(f"cuda:{local}" if cuda else "cpu")


def teardown(finished: bool = True) -> None:
    """Leave the process group. After a clean finish all ranks meet first, so that none exits while a
    peer still holds its gloo connections (a rank leaving early was seen to abort at exit, 1 run in 10).
    After an error there is no barrier: the other ranks may never reach it."""
    if dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
