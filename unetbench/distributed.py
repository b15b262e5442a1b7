"""Process layout: one process per device; a single process is a world of size one.

    ctx = DistContext.single()
    ctx.all_reduce_sum(tensor)      # identity when world_size == 1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    nodes: int = 1
    comm_backend: str | None = None   # nccl / hccl / gloo once a process group exists

    @classmethod
    def single(cls) -> "DistContext":
        return cls()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def devices_per_node(self) -> int:
        return max(1, self.world_size // self.nodes)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def describe(self, per_device_batch: int) -> dict:
        return {"world_size": self.world_size, "nodes": self.nodes, "devices_per_node": self.devices_per_node,
                "per_device_batch": per_device_batch, "global_batch": per_device_batch * self.world_size,
                "backend": self.comm_backend}
