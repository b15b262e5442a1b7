"""Process layout: one process per device, launched by torchrun or srun; one process is a world of one.

    torchrun --nproc_per_node=4 unet_cuda.py ...        # env:// (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_*)
    srun --ntasks-per-node=4 python3 unet_cuda.py ...   # SLURM_PROCID / SLURM_LOCALID / SLURM_NTASKS
    python3 unet_cuda.py ...                             # a single process: no process group at all

``DistContext.from_environment()`` reads whichever launcher started us; ``init(backend)``
creates the process group (nccl / hccl / gloo, from the backend) with a bounded timeout, so a
launch that does not match its world size fails with a message instead of hanging.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import inspect
import os
from dataclasses import dataclass, field

import torch

from ..core.errors import UserError
from . import rankenv
from .rankenv import first_host  # noqa: F401  (part of this module's interface)
from .rankenv import int_env as _int

# Two limits, because one does not fit both. Forming the group must fail fast: a launch with the
# wrong number of processes would otherwise hang until Slurm's time limit. A collective must
# wait much longer: the first DDP backward waits for the slowest rank's compilation, and with
# max-autotune or a cold compile cache that takes many minutes (the NCCL watchdog would abort).
DEFAULT_TIMEOUT_S = 300              # UNETBENCH_DIST_TIMEOUT: every rank has joined the group
DEFAULT_COLLECTIVE_TIMEOUT_S = 7200  # UNETBENCH_COLLECTIVE_TIMEOUT: one collective, once joined


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    nodes: int = 1
    launcher: str = "single"          # single / torchrun / srun
    comm_backend: str | None = None   # nccl / hccl / gloo once a process group exists
    master: str | None = None
    # gloo group for agreements between the ranks' host threads (None: the default group is
    # gloo already, or there is no process group)
    host_group: object = field(default=None, repr=False, compare=False)

    @classmethod
    def single(cls) -> "DistContext":
        return cls()

    @classmethod
    def from_environment(cls, env=None) -> "DistContext":
        env = os.environ if env is None else env
        # srun, one task per device; not torchrun's workers inside an srun task (they have
        # TORCHELASTIC_RUN_ID, and SLURM_PROCID there counts nodes, not ranks).
        if rankenv.is_srun_task(env) and "TORCHELASTIC_RUN_ID" not in env:
            layout = rankenv.rank_environment(env)
            if env is os.environ:
                # Assigned, not setdefault: the Gaudi bridge, loaded with torch, fills in
                # WORLD_SIZE=1 and MASTER_ADDR=localhost:12345 where they were missing.
                os.environ.update(layout)
            ctx = cls(rank=int(layout["RANK"]), local_rank=int(layout["LOCAL_RANK"]),
                      world_size=int(layout["WORLD_SIZE"]), nodes=_int(env, "SLURM_NNODES", 1), launcher="srun",
                      master=f"{layout['MASTER_ADDR']}:{layout['MASTER_PORT']}")
        elif "RANK" in env and "WORLD_SIZE" in env and "LOCAL_RANK" in env:  # torchrun (env://)
            world = _int(env, "WORLD_SIZE")
            local_world = _int(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else world
            ctx = cls(rank=_int(env, "RANK"), local_rank=_int(env, "LOCAL_RANK"), world_size=world,
                      nodes=max(1, world // max(1, local_world)), launcher="torchrun",
                      master=f"{env.get('MASTER_ADDR')}:{env.get('MASTER_PORT')}")
        else:
            return cls.single()
        if not 0 <= ctx.rank < ctx.world_size:
            raise UserError(f"rank {ctx.rank} is outside the world size {ctx.world_size}: the launch is inconsistent")
        return ctx

    # -- process group --------------------------------------------------------------------
    def init(self, comm_backend: str, timeout_s: float | None = None) -> None:
        """Form the process group: every rank must join within ``timeout_s`` (default
        UNETBENCH_DIST_TIMEOUT or 300 s); after that each collective may take up to
        UNETBENCH_COLLECTIVE_TIMEOUT (default 2 h) seconds."""
        if self.world_size == 1:
            return
        timeout_s = timeout_s or _seconds_env("UNETBENCH_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)
        collective = datetime.timedelta(seconds=_seconds_env("UNETBENCH_COLLECTIVE_TIMEOUT",
                                                             DEFAULT_COLLECTIVE_TIMEOUT_S))
        self.comm_backend = comm_backend
        try:
            # torch's own env:// rendezvous (the store of torchrun's agent where it serves one,
            # else rank 0's), bounded by the joining timeout: rank 0 waits for every other rank
            # to connect, the others to reach it, within timeout_s. The group's own timeout,
            # the one every later collective gets, is the long one.
            store, _, _ = next(torch.distributed.rendezvous("env://", rank=self.rank, world_size=self.world_size,
                                                            timeout=datetime.timedelta(seconds=timeout_s)))
            torch.distributed.init_process_group(comm_backend, store=store, rank=self.rank,
                                                 world_size=self.world_size, timeout=collective)
            if comm_backend != "gloo":
                # Host-side agreements (any_rank) go through gloo on CPU tensors: on the device's
                # own backend (nccl, hccl) they would need a device tensor and a read back.
                self.host_group = torch.distributed.new_group(backend="gloo", timeout=collective)
            # The first collective proves every rank's group works; joining the store alone may not.
            self.barrier()
        except Exception as err:  # timeouts and refused connections come as several types
            raise UserError(f"rank {self.rank}: the process group did not form within {timeout_s:.0f} s "
                            f"({type(err).__name__}); {self.world_size} processes were expected at {self.master} "
                            f"via {self.launcher}: check that the number of started processes matches "
                            "(srun --ntasks, torchrun --nproc_per_node x nodes)") from None

    def close(self, clean: bool = True) -> None:
        if self.world_size > 1 and torch.distributed.is_initialized():
            # Under srun rank 0 hosts the rendezvous store: after a clean run no rank may tear
            # down while another still talks to it, or that rank aborts at exit. After a
            # failure the others may never arrive, so no barrier then.
            try:
                if clean:
                    self.barrier()
            finally:
                # The process group must be destroyed now, while Python is fully alive: gloo's
                # worker threads release finished work (and the tensors in it) after wait()
                # returns, and one doing so during interpreter finalisation cannot take the GIL
                # and aborts the process ("terminate called without an active exception", seen
                # in a core dump of a two-rank CPU run). destroy_process_group() alone leaves the
                # group alive while anything still holds it: the host group below, or a DDP
                # wrapper in a reference cycle (the caller releases its own), which collect() frees.
                self.host_group = None
                gc.collect()
                torch.distributed.destroy_process_group()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def devices_per_node(self) -> int:
        return max(1, self.world_size // self.nodes)

    # -- collectives ----------------------------------------------------------------------
    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any: agreed between the host threads
        (a CPU tensor over gloo), so the device queue is neither touched nor drained. The hosts
        wait for each other, the kernels they have queued keep running."""
        if self.world_size == 1:
            return flag
        vote = torch.tensor([1 if flag else 0], dtype=torch.int32)  # on the host, deliberately
        torch.distributed.all_reduce(vote, op=torch.distributed.ReduceOp.SUM, group=self.host_group)
        return bool(vote.item() > 0)  # a host tensor: reading it waits for no device

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def gather_strings(self, text: str) -> list[str]:
        if self.world_size == 1:
            return [text]
        gathered = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, text)
        return gathered

    def check_same(self, what: str, value: str) -> None:
        """Every rank must hold the same ``value`` (e.g. dataset checksum); all ranks fail alike."""
        values = self.gather_strings(value)
        odd = [r for r, v in enumerate(values) if v != values[0]]
        if odd:
            raise UserError(f"rank(s) {', '.join(map(str, odd))} see a different {what} than rank 0 "
                            f"({values[odd[0]][:16]}... vs {values[0][:16]}...); give every rank the same one")

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

        DDP keeps parameters identical, but each rank updates its running statistics with its
        own last batch; evaluation must use one model, so all ranks take rank 0's."""
        if self.world_size > 1:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def replicas_identical(self, model: torch.nn.Module) -> bool:
        """True when every rank holds bit-identical weights and buffers (checked once, at the end)."""
        digest = hashlib.sha256()
        for tensor in model.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        values = self.gather_strings(digest.hexdigest())
        return all(v == values[0] for v in values)

    def describe(self, per_device_batch: int) -> dict:
        return {"world_size": self.world_size, "nodes": self.nodes, "devices_per_node": self.devices_per_node,
                "per_device_batch": per_device_batch, "global_batch": per_device_batch * self.world_size,
                "backend": self.comm_backend, "launcher": self.launcher}


def no_buffer_broadcast_per_forward() -> dict:
    """DDP's keyword for "do not send rank 0's buffers before every forward" (buffers are still
    synced once, when DDP wraps the model): ``forward_sync_buffers`` from torch 2.14, where
    ``broadcast_buffers`` is deprecated, and ``broadcast_buffers`` before it."""
    from torch.nn.parallel import DistributedDataParallel
    accepted = inspect.signature(DistributedDataParallel.__init__).parameters
    return {"forward_sync_buffers" if "forward_sync_buffers" in accepted else "broadcast_buffers": False}


def _seconds_env(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"{name}={text!r} must be a number of seconds above 0; unset it for the default ({default:.0f})")
    return value
