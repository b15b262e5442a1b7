"""Dataset preparation: sources -> crops -> splits -> packed uint8 arrays.

Run it with ``python3 prepare_dataset.py --synthetic --num-images 40 --crop 64x96 --out data``
or from Python with :func:`unetbench.data.prepare.api.prepare`. The output format is
``docs/dataset_format.md``; the user guide is ``docs/prepare.md``.

    cli.py, api.py        the command line of prepare_dataset.py; the Python entry point
    defaults.py           which registered dataset's defaults a run uses (core/registry.py, DATASETS)
    sources.py            where source files come from: a folder, a .zip, a Kaggle download (cached)
    archives.py           tar and tar.gz sources, extracted once into the cache
    official.py           downloads from a dataset's official site, cached and checked
    layouts.py            image/mask folder pairs in a source, files paired by relative stem
    datasets.py           what a registered dataset adds: fixed mask encodings, classes, split lists
    encodings.py          mask label encodings: red-channel id, single-channel index, RGB palette
    classes.py            class tables: CARLA's semantic tags and their CityScapes palette colours
    plan.py, plan_files.py   what one run will do, resolved before any array is written; its files
    fingerprint.py        what makes an identical re-run a no-op
    resize.py             sources of other sizes brought to the crop: none, cover or stretch
    decode.py             one image/mask pair decoded, checked and cropped (in the workers)
    pair_error.py         the error one bad source pair raises in a worker
    pipeline.py           the parallel workers that write straight into the memory-mapped arrays
    splits.py             train/val/test by source image, folder or crop, reproducible from a seed
    synthetic.py          procedural CARLA-like street scenes
    writer.py             the packed arrays and the staging folder that makes a dataset appear whole
"""

__all__ = ["PrepareResult", "prepare", "prepare_synthetic"]


def __getattr__(name):  # lazy, so worker processes importing a submodule stay light
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(name)
