"""The CPU backend's registry entry (torch-free: the login node reads it)."""

from ..spec import BackendSpec, SbatchDefaults

SPECS = (
    BackendSpec(
        name="cpu", title="CPU cores (the baseline, and the backend the tests run)", package=__package__,
        order=90, site_group="CPU", dist_backend="gloo", needs_device=False, in_cluster_default=False,
        runs_anywhere=True, color="#7f7f7f", sbatch=SbatchDefaults(time="04:00:00", cpus=8, mem="16G")),
)
