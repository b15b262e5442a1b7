"""The container a job runs in, as the batch shell hands it to the training: names and record.

    from unetbench.core.container_record import recorded
    recorded(os.environ)   # {"runtime": "apptainer", "image": "/images/pytorch.sif", "digest": "sha256:..."} or None

unetbench/cluster/container.py decides the container on the login node and puts these variables
in the job's environment; scripts/lib_job.sh reads them; the runtimes pass them into the image,
where training/environment.py records them with every result. Kept in core: both ends read it.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

ENV_RUNTIME = "UNETBENCH_CONTAINER_RUNTIME"   # apptainer, singularity or pyxis
ENV_IMAGE = "UNETBENCH_CONTAINER_IMAGE"       # as site.env names it
ENV_DIGEST = "UNETBENCH_CONTAINER_DIGEST"     # sha256:<hex>, or empty where none can be known
ENV_ARGS = "UNETBENCH_CONTAINER_ARGS"         # the launch words, shell-quoted (for the batch shell)


def recorded(env: Mapping[str, str] = os.environ) -> Optional[dict]:
    """The container a training runs in, for its results; None when it runs on the host. A run
    started in Apptainer by hand is recorded by the image path Apptainer itself sets."""
    if env.get(ENV_IMAGE):
        return {"runtime": env.get(ENV_RUNTIME), "image": env.get(ENV_IMAGE), "digest": env.get(ENV_DIGEST) or None}
    for runtime in ("apptainer", "singularity"):
        if env.get(f"{runtime.upper()}_CONTAINER"):
            return {"runtime": runtime, "image": env[f"{runtime.upper()}_CONTAINER"], "digest": None}
    return None
