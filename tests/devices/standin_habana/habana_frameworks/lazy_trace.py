"""STAND-IN ONLY (no such module in Intel's bridge): an imitation of lazy-mode graph building,
for contract tests that need to see graphs.

    from habana_frameworks.lazy_trace import LazyTrace
    with LazyTrace() as trace:          # ops are recorded until the next mark_step
        ...
    trace.graphs                        # one entry per mark_step: what a lazy graph would be

What it imitates of lazy mode (Intel Gaudi docs, "mark_step"; PyTorch Gaudi Theory of Operations):
ops accumulate until ``htcore.mark_step()``; the accumulated ops form one graph, looked up in a
cache by its content (a miss is a compilation); only ops whose results are still alive at the
cut are executed (a result nobody holds is never computed). With ``wrap_int64`` an int64 result
is kept to 32 bits, as lazy mode keeps int64 tensors as int32 on the device
(PT_ENABLE_INT64_SUPPORT covers non-lazy mode only). Backward-pass kernels run inside autograd
and are not seen; the forward ops that produce them are.
"""
import weakref

import torch
from torch.overrides import TorchFunctionMode

from habana_frameworks import CALLS

ACTIVE = []


def current():
    return ACTIVE[-1] if ACTIVE else None


def _tensors(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _describe(value):
    return tuple((tuple(t.shape), str(t.dtype)) for t in _tensors(value))


class LazyTrace(TorchFunctionMode):
    def __init__(self, wrap_int64=False):
        super().__init__()
        self.wrap_int64 = wrap_int64
        self.pending = []      # (op signature, weak references to its results)
        self.graphs = []       # {"signature", "new", "ops", "executed", "ops_by_name"}
        self.cache = set()

    def __enter__(self):
        ACTIVE.append(self)
        return super().__enter__()

    def __exit__(self, *exc):
        ACTIVE.remove(self)
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        results = _tensors(out)
        if results:
            name = getattr(func, "__name__", repr(func))
            if self.wrap_int64:
                for t in results:
                    if t.dtype == torch.int64 and not t.requires_grad:
                        t.copy_(t.to(torch.int32).to(torch.int64))  # C conversion: wraps modulo 2**32
            self.pending.append(((name, _describe(args)), [weakref.ref(t) for t in results]))
        return out

    def cut(self):
        """What mark_step does to the accumulated ops: one graph, compiled on a cache miss."""
        if not self.pending:
            return None
        signature = tuple(op for op, _ in self.pending)
        executed = [op for op, refs in self.pending if any(r() is not None for r in refs)]
        graph = {"signature": hash(signature), "new": signature not in self.cache, "ops": len(signature),
                 "executed": len(executed), "executed_names": [name for name, _ in executed]}
        self.cache.add(signature)
        self.graphs.append(graph)
        self.pending = []
        CALLS.append(("graph", graph["new"], graph["ops"], graph["executed"]))
        return graph
