"""A real single-node Slurm cluster for tests: munged + slurmctld + slurmd on this machine.

Usage (the ``slurm_cluster`` fixture in conftest.py does this)::

    cluster = SlurmCluster(tmp_path)
    cluster.start()                      # raises SlurmUnavailable when it cannot run here
    subprocess.run(["sbatch", ...], env=cluster.env)
    cluster.stop()                       # stops the daemons by their pids

Everything lives under one temporary folder: the configuration, state, spool, logs, pid
files and a private munge socket and key, and the daemons listen on free ports. Clients
find the cluster through ``SLURM_CONF`` in ``cluster.env``, so a second cluster started at
the same time on the same machine (another test session) does not interfere. Needs root
(slurmd runs jobs as their submitting user) and Debian's ``slurm-wlm`` and ``munge``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PARTITIONS = ("debug", "batch")   # two partitions on the one node; "debug" is the default


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be started on this machine (missing packages, not root)."""


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _memory_mib() -> int:
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 4096


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "the Slurm tests must run as root (slurmd runs jobs as their submitter)"
    for tool in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "sacct"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} not found: apt-get install slurm-wlm munge"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user: apt-get install munge"
    return None


def _daemon(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "etc" / "slurm.conf"
        # munged runs as the munge user, which cannot enter pytest's private (0700) temp folders:
        # its folder lives in the system temp dir instead (and keeps the socket path short).
        self.munge_dir = Path(tempfile.mkdtemp(prefix="unetbench-munge-"))
        self.munge_socket = self.munge_dir / "munge.socket"
        self.pid_files = {
            "munged": self.munge_dir / "munged.pid",
            "slurmctld": self.root / "run" / "slurmctld.pid",
            "slurmd": self.root / "run" / "slurmd.pid",
        }
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.cpus = os.cpu_count() or 1

    # -- set-up -----------------------------------------------------------------------------
    def _write_munge(self) -> None:
        munge = pwd.getpwnam("munge")
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        for path in (self.munge_dir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        os.chmod(self.munge_dir, 0o755)
        os.chmod(key, 0o600)

    def _write_conf(self) -> None:
        for sub in ("etc", "run", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        ctld_port, d_port = _free_ports(2)
        memory = max(1024, _memory_mib() - 2048)
        r = self.root
        lines = [
            "ClusterName=unetbenchtest",
            f"SlurmctldHost={self.host}",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            "JobRequeue=1",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            # Short timers so that tests spend their time on jobs, not on the scheduler.
            "SchedulerParameters=sched_interval=2,bf_interval=2",
            "MessageTimeout=20",
            "KillWait=10",
            "MinJobAge=600",
            "InactiveLimit=0",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={self.pid_files['slurmctld']}",
            f"SlurmdPidFile={self.pid_files['slurmd']}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # One pretend GPU (a count, no device file) so that --gres=gpu:1 jobs are accepted and
            # start; unet_cuda.py then finds no CUDA device - the failing backend the tests want.
            "GresTypes=gpu",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} Gres=gpu:1 State=UNKNOWN",
            f"PartitionName={PARTITIONS[0]} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName={PARTITIONS[1]} Nodes={self.host} Default=NO MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n", encoding="ascii")
        (self.conf.parent / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File=/dev/null\n", encoding="ascii")
        # Slurm also wants a cgroup.conf beside slurm.conf in some builds; an empty one is harmless.
        (self.conf.parent / "cgroup.conf").write_text("", encoding="ascii")

    # -- start / stop -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        reason = missing_reason()
        if reason:
            raise SlurmUnavailable(reason)
        self._write_munge()
        self._write_conf()
        munge = pwd.getpwnam("munge")
        self._run([
            _daemon("munged"), f"--socket={self.munge_socket}", f"--key-file={self.munge_dir / 'munge.key'}",
            f"--pid-file={self.pid_files['munged']}", f"--log-file={self.munge_dir / 'munged.log'}",
            f"--seed-file={self.munge_dir / 'munged.seed'}", "--force",
        ], user=munge.pw_uid, group=munge.pw_gid)
        self._wait_for(self.munge_socket.exists, timeout, "munged socket")
        self._run([_daemon("slurmctld"), "-f", str(self.conf)])
        self._run([_daemon("slurmd"), "-f", str(self.conf), "-N", self.host])
        self._wait_for(self._node_idle, timeout, "the node to become idle")
        return self

    def _run(self, cmd: list[str], **kw) -> None:
        # The daemons fork into the background; their pids land in the pid files.
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30, **kw)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()}\n{self.logs()}")

    def _node_idle(self) -> bool:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
        return proc.returncode == 0 and proc.stdout.strip().startswith("idle")

    def _wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"timed out waiting for {what}\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for log in sorted((self.root / "log").glob("*.log")) + [self.munge_dir / "munged.log"]:
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-30:]
                parts.append(f"--- {log.name} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the daemons by the pids in their pid files (never by name), slurmd first."""
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.pid_files[name]
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.munge_dir, ignore_errors=True)

    # -- helpers for tests ----------------------------------------------------------------------
    def job_state(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, ExitCode, Restarts, ...); {} when unknown."""
        proc = subprocess.run(["scontrol", "-o", "show", "job", job_id], env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            return {}
        fields = {}
        for token in proc.stdout.split():
            key, sep, value = token.partition("=")
            if sep:
                fields.setdefault(key, value)
        return fields

    def wait_requeued(self, job_id: str, timeout: float = 120) -> None:
        """Wait until the job has been requeued once and waits to start again (Slurm holds it: BeginTime)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state.get("Restarts") == "1" and state.get("JobState") == "PENDING":
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for job {job_id} to be requeued: {self.job_state(job_id)}")

    def release(self, job_id: str) -> None:
        """Start a requeued job now instead of after Slurm's delay, to keep a test short; not within
        the second of the requeue: slurmd compares credential times in whole seconds and refuses a
        start in that second ("Job credential revoked"). Slurm's own delay avoids this on a real cluster."""
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=self.env, check=True)

    def wait_jobs(self, job_ids, timeout: float) -> dict[str, dict[str, str]]:
        """Wait until every job has finished (any terminal state); return their states."""
        terminal = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
        deadline = time.monotonic() + timeout
        states: dict[str, dict[str, str]] = {}
        while time.monotonic() < deadline:
            states = {j: self.job_state(j) for j in job_ids}
            if all(s.get("JobState") in terminal for s in states.values()):
                return states
            time.sleep(1)
        summary = {j: s.get("JobState") for j, s in states.items()}
        raise TimeoutError(f"jobs not finished after {timeout}s: {summary}\n{self.logs()}")
