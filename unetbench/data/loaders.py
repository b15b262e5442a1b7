"""Read the prepared dataset (docs/dataset_format.md) and feed it to the device.

    splits = load_splits("data/dataset_splits.json")    # unetbench.data.prepared
    train = SplitArrays(splits, "train")             # memory-mapped uint8 arrays
    loader = make_loader(train, batch_size=16, ...)  # yields uint8 (images, labels) batches
    transform = DeviceTransform(backend.device, backend.memory_format, pinned=backend.loader_pinning)
    for x, y, wait_s in feed(iter(loader), range(len(loader)), transform, backend.side_stream(), clock):
        ...                                          # normalised and flipped on the device

The loader moves raw uint8 (4x fewer bytes than float); conversion to float, normalisation
and random horizontal flips happen on the device, where they cost microseconds.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..core.errors import UserError
from .prepared import REPREPARE, Splits, open_array

# ImageNet statistics: a fixed, documented normalisation identical on every backend.
MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


class SplitArrays(Dataset):
    """One split's memory-mapped arrays; items are uint8 (H, W, 3) images and (H, W) labels."""

    def __init__(self, splits: Splits, name: str):
        entry = splits.meta["splits"][name]
        self.name = name
        self.images = open_array(splits, name, "images")
        self.labels = open_array(splits, name, "labels")
        if len(self.images) != len(self.labels) or len(self.images) != int(entry["count"]):
            raise UserError(f"{name} split: {len(self.images)} images, {len(self.labels)} labels, "
                            f"split file says {entry['count']}; {REPREPARE}")
        if self.images.shape[1:3] != self.labels.shape[1:] or self.images.shape[1:3] != splits.crop:
            raise UserError(f"{name} split: image {self.images.shape[1:3]} and label {self.labels.shape[1:]} "
                            f"sizes disagree with the crop {splits.crop}; {REPREPARE}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return torch.from_numpy(np.array(self.images[index])), torch.from_numpy(np.array(self.labels[index]))

    def __getitems__(self, indices: list):
        # One batched read per step instead of B small ones; sorted reads are sequential on disk.
        order = np.argsort(indices)
        rows = np.asarray(indices)[order]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        images = self.images[rows][inverse]
        labels = self.labels[rows][inverse]
        return torch.from_numpy(images), torch.from_numpy(labels)


def _collate_batch(batch):
    return batch  # __getitems__ already returns a stacked batch


class ResumableSampler(DistributedSampler):
    """DistributedSampler (reshuffled by ``set_epoch``) that can skip the first batches of an
    epoch, so a run interrupted mid-epoch resumes on exactly the samples it had not seen."""

    def __init__(self, dataset, num_replicas: int, rank: int, shuffle: bool, seed: int, drop_last: bool):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.skip = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation: every sample exactly once across ranks, no padding (rank r takes r::world)."""

    def __init__(self, length: int, num_replicas: int, rank: int):
        self.indices = list(range(rank, length, num_replicas))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class WorkerLoader(DataLoader):
    """A DataLoader whose workers are started inside ``worker_start()``, a context manager."""

    def __init__(self, *args, worker_start=contextlib.nullcontext, **kwargs):
        super().__init__(*args, **kwargs)
        self.worker_start = worker_start

    def __iter__(self):
        # Persistent workers are forked by the first iter(); later ones only reset them.
        with self.worker_start():
            return super().__iter__()


def make_loader(dataset: SplitArrays, batch_size: int, sampler, workers: int, pin_memory: bool | str,
                drop_last: bool, seed: int, worker_init_fn=None, worker_start=contextlib.nullcontext) -> DataLoader:
    """``pin_memory``: False, True (pinned for the default accelerator) or the name of the
    device to pin for (Gaudi: "hpu", as Intel's loaders do). ``worker_init_fn``: run in each
    worker as it starts; ``worker_start``: the context the workers are forked in (the trainer's
    pair holds the stop signals from the fork until each worker ignores them)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    device = pin_memory if isinstance(pin_memory, str) else ""
    return WorkerLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=bool(pin_memory), pin_memory_device=device, drop_last=drop_last,
                      collate_fn=_collate_batch, persistent_workers=workers > 0,
                      prefetch_factor=4 if workers > 0 else None,
                      generator=generator, worker_init_fn=worker_init_fn, worker_start=worker_start)


class DeviceTransform:
    """uint8 NHWC on the host -> normalised float NCHW on the device, flips on the device."""

    def __init__(self, device: torch.device, memory_format: torch.memory_format, pinned: bool | str):
        """``pinned``: what the loaders pin their batches for (Backend.loader_pinning): False,
        True (the default accelerator) or a device name (Gaudi: "hpu")."""
        self.device = device
        self.memory_format = memory_format
        # A copy from pinned memory can overlap the device's work; Intel's Gaudi training
        # scripts copy their hpu-pinned batches with non_blocking=True as CUDA's do.
        self.non_blocking = bool(pinned)
        # The flip draws are made here, not by the loader: they are pinned by torch.rand, which
        # pins for the default accelerator only, so elsewhere they are copied from pageable memory.
        self.pin_draws = pinned is True
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self.inv_std = (1.0 / torch.tensor(STD, device=device)).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, flip_key: int | None = None):
        """``flip_key`` (training only) seeds this batch's flips: the same key gives the same
        flips whatever ran before, so a resumed run sees exactly the flips it would have."""
        # Pinned host memory + non_blocking lets the copy overlap the previous step's kernels.
        images = images.to(self.device, non_blocking=self.non_blocking)
        labels = labels.to(self.device, non_blocking=self.non_blocking)
        x = images.permute(0, 3, 1, 2).float()   # NHWC storage: a channels_last view of NCHW
        x = ((x - self.mean) * self.inv_std).contiguous(memory_format=self.memory_format)
        y = labels.long()
        if flip_key is not None:
            # B coin flips from a host generator (a few bytes; the same flips on every backend),
            # applied on the device per sample. The draws go into pinned memory where batches do:
            # from pageable memory a "non_blocking" copy may block the host until the device has
            # caught up, the very stall the side stream is there to avoid. (The caching host
            # allocator keeps the pinned block until the copy has completed.)
            draws = torch.rand(x.shape[0], generator=torch.Generator().manual_seed(flip_key),
                               pin_memory=self.pin_draws)
            flip = draws.to(self.device, non_blocking=self.pin_draws) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            y = torch.where(flip.view(-1, 1, 1), y.flip(2), y)
        return x, y


def batch_sizes(loader: DataLoader) -> set:
    """The batch sizes ``loader`` yields: the full batch, and the last partial one if any."""
    samples, batch = len(loader.sampler), loader.batch_size
    sizes = {batch} if samples >= batch else set()
    if samples % batch and not loader.drop_last:
        sizes.add(samples % batch)
    return sizes


def flip_key(seed: int, epoch: int, step: int, rank: int) -> int:
    # Plain arithmetic, not hash(): stable across Python versions and processes.
    return (((seed * 1_000_003 + epoch) * 1_000_003 + step) * 10_007 + rank) % (2**63 - 1)


def feed(batches, steps: range, transform: DeviceTransform, stream, clock, key=None):
    """Yield one device batch ``(x, y, data_wait_s)`` per step in ``steps``, one batch ahead.

    Batch i+1 is fetched from the loader and its copy and transform are queued on ``stream``
    before batch i is handed to the step, so on CUDA the transfer overlaps the step's
    kernels. ``key(step)`` gives the step's flip key (None: no augmentation).
    ``data_wait_s`` is the host time blocked on the loader since the last yield.
    """
    waited = 0.0

    def load(step):
        nonlocal waited
        t0 = clock()
        images, labels = next(batches)
        waited += clock() - t0
        return stream.run(lambda: transform(images, labels, key(step) if key else None))

    steps = list(steps)
    upcoming = load(steps[0]) if steps else None
    for i, _ in enumerate(steps):
        x, y = upcoming
        stream.hand_over(x, y)
        if i + 1 < len(steps):
            upcoming = load(steps[i + 1])
        wait, waited = waited, 0.0
        yield x, y, wait
