"""How a batch reaches the device beside the compute, and how device time is read: the small
objects a Backend hands the training loop.

    stream = backend.side_stream()        # InlineStream, CudaSideStream (or Gaudi's GraphCutStream)
    x, y = stream.run(lambda: transform(images, labels)); stream.hand_over(x, y)
    event = backend.new_event()           # TorchEvent over torch.cuda.Event / torch.hpu.Event
"""

from __future__ import annotations

import torch


class InlineStream:
    """Runs the transfer in line, on the compute stream (every device but CUDA)."""

    def run(self, fn):
        return fn()

    def hand_over(self, *tensors) -> None:
        pass


class CudaSideStream:
    """A second CUDA stream: the host-to-device copy and augmentation of batch i+1 overlap
    the kernels of step i instead of queueing in front of them."""

    def __init__(self, device: torch.device):
        self.stream = torch.cuda.Stream(device)

    def run(self, fn):
        with torch.cuda.stream(self.stream):
            return fn()

    def hand_over(self, *tensors) -> None:
        # The compute stream must wait for the copy, and the allocator must not recycle the
        # tensors' memory while the compute stream still reads them.
        current = torch.cuda.current_stream(self.stream.device)
        current.wait_stream(self.stream)
        for t in tensors:
            t.record_stream(current)


class TorchEvent:
    """Adapts torch.cuda.Event / torch.hpu.Event to the timer's Event protocol."""

    def __init__(self, event):
        self.event = event

    def record(self) -> None:
        self.event.record()

    def elapsed_ms(self, later: "TorchEvent") -> float:
        return self.event.elapsed_time(later.event)
