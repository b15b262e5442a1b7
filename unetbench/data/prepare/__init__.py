"""Dataset preparation: sources -> crops -> splits -> packed uint8 arrays.

Run it with ``python3 prepare_dataset.py --synthetic --num-images 40 --crop 64x96 --out data``
or from Python with :func:`unetbench.data.prepare.api.prepare`. The output format is
``docs/dataset_format.md``; the user guide is ``docs/prepare.md``.
"""

__all__ = ["PrepareResult", "prepare", "prepare_synthetic"]


def __getattr__(name):  # lazy, so worker processes importing a submodule stay light
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(name)
