"""SLURM for real: a one-node cluster on localhost runs a small target through profiles/slurm.

The Debian packages (slurmctld, slurmd, slurm-client, munge) come from `.ci/run`, never
from pytest (the tests are skipped, with the reason, where they are missing). The module
fixture writes a throw-away cluster config into a temporary folder, starts
munged, slurmctld and slurmd directly (no systemd), and stops exactly those processes at
the end. The node advertises one (fake) GPU as GRES, so the training rules' `gpu=1` goes
to sbatch as `--gpus=1` exactly as on a real GPU cluster. The tests are skipped only where
SLURM is not installed; any other error while the cluster starts (a daemon dies, a bad
config, a bug here) fails them with the daemon logs' last lines, so a broken harness never
shows green.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, Workflow, tiny_config

pytestmark = pytest.mark.slurm

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
PROGRAMS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun"]
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
# Three partitions on the one node: the profile must send the trainings to
# $ANATOMY_GPU_PARTITION and everything else to $ANATOMY_PARTITION, not to the default.
PARTITIONS = {"ANATOMY_PARTITION": "cpu", "ANATOMY_GPU_PARTITION": "gpu"}
DEFAULT_PARTITION = "debug"
# The cheapest target that still has every kind of job: a data build, a shared
# initial-weights file, a window mask (a localrule: runs on the submitting host) and
# one training (gpu=1). Three jobs go through sbatch, one does not.
TARGET = "results/crops/window/s9_i0_j1/metrics.json"
SUBMITTED_RULES = {"mnist_h5", "crops_initial_weights", "crops_train"}
LOCAL_RULES = {"crops_mask"}
TRAINING_RULES = {"crops_train"}
SNAKEMAKE_TIMEOUT = 300  # seconds before SIGINT (Snakemake then scancels its jobs)
SIGINT_GRACE = 60  # seconds after SIGINT before SIGKILL


def _which(name: str) -> str | None:
    return shutil.which(name, path=SBIN_PATH)


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"({path.name}: no log)"
    return f"--- {path.name} (last {n} lines) ---\n" + "\n".join(lines[-n:])


def _ensure_packages() -> None:
    """Skip, saying why, when the SLURM programs are missing. pytest installs nothing: `.ci/run`
    installs Debian's slurmctld, slurmd, slurm-client and munge (as root) before the tests."""
    missing = [p for p in PROGRAMS if not _which(p)]
    if missing:
        pytest.skip(f"SLURM is not installed (missing {missing}); `.ci/run` installs it as root with "
                    f"`apt-get install {' '.join(PACKAGES)}`")


def _ensure_plugin() -> None:
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is missing: `pip install -e '.[test]'` installs it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """munged + slurmctld + slurmd on 127.0.0.1, everything under one folder."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.procs: dict[str, subprocess.Popen] = {}
        # nothing from an outer cluster (if pytest itself runs in a SLURM job) or an earlier setting
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "ANATOMY_"))}
        self.env.update(SLURM_CONF=str(self.path / "slurm.conf"), PATH=SBIN_PATH)

    def log(self, name: str) -> Path:
        return self.path / "log" / f"{name}.log"

    def logs(self) -> str:
        log = self.path / "log"  # munged in the foreground logs to stderr (munged.out)
        return "\n".join(_tail(log / n) for n in ("munged.out", "slurmctld.log", "slurmd.log"))

    def write_config(self) -> None:
        for d in ("state", "spool", "log", "munge"):
            (self.path / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.path / "munge", 0o755)  # munged: the socket folder must be searchable
        key = self.path / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)

        node = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30)
        fields = dict(f.split("=", 1) for f in node.stdout.splitlines()[0].split() if "=" in f)
        self.node, self.cpus = fields["NodeName"], int(fields.get("CPUs", "1"))
        mem = int(int(fields.get("RealMemory", "2000")) * 0.9)  # below what slurmd measures
        topo = " ".join(f"{k}={fields[k]}" for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket",
                                                       "ThreadsPerCore") if k in fields)
        p = self.path
        # The jobstep plugin (0.6) clears SLURM_* but a few ids before its `srun` inside a job;
        # a real node then reads /etc/slurm/slurm.conf (or a configless cache), this throw-away
        # cluster's config is only reachable through SLURM_CONF: put it back for that srun.
        (p / "bin").mkdir(exist_ok=True)
        (p / "bin" / "srun").write_text(f"#!/bin/sh\nSLURM_CONF={p}/slurm.conf; export SLURM_CONF\n"
                                        f"exec {_which('srun')} \"$@\"\n")
        os.chmod(p / "bin" / "srun", 0o755)
        self.env["PATH"] = os.pathsep.join([str(p / "bin"), SBIN_PATH])
        # A GPU needs a device file; /dev/null stands in (TaskPlugin=task/none: no cgroup device rules).
        (p / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n")
        (p / "plugstack.conf").write_text("")
        (p / "slurm.conf").write_text(f"""\
ClusterName=anatomytest
SlurmctldHost={socket.gethostname()}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={p}/munge/munge.socket
StateSaveLocation={p}/state
SlurmdSpoolDir={p}/spool
SlurmctldPidFile={p}/slurmctld.pid
SlurmdPidFile={p}/slurmd.pid
SlurmctldLogFile={self.log('slurmctld')}
SlurmdLogFile={self.log('slurmd')}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={p}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# Finished jobs stay visible to squeue (no slurmdbd here, so no sacct).
MinJobAge=3600
KillWait=10
MailProg=/bin/true
SchedulerType=sched/backfill
NodeName={self.node} NodeAddr=127.0.0.1 {topo} RealMemory={mem} Gres=gpu:1 State=UNKNOWN
PartitionName={DEFAULT_PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName={PARTITIONS["ANATOMY_PARTITION"]} Nodes={self.node} Default=NO MaxTime=INFINITE State=UP
PartitionName={PARTITIONS["ANATOMY_GPU_PARTITION"]} Nodes={self.node} Default=NO MaxTime=INFINITE State=UP
""")

    def _start(self, name: str, cmd: list[str]) -> None:
        out = open(self.path / "log" / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                            cwd=self.path, start_new_session=True)

    def start(self) -> None:
        m = self.path / "munge"
        self._start("munged", [_which("munged"), "--foreground", "--force", f"--socket={m}/munge.socket",
                               f"--key-file={m}/munge.key", f"--pid-file={m}/munged.pid",
                               f"--seed-file={m}/munged.seed", f"--log-file={self.log('munged')}"])
        self._wait(lambda: (m / "munge.socket").exists(), "munged", 15)
        conf = str(self.path / "slurm.conf")
        self._start("slurmctld", [_which("slurmctld"), "-D", "-c", "-i", "-f", conf])
        self._wait(lambda: self.cmd("sinfo", "-h", check=False).returncode == 0, "slurmctld", 30)
        self._start("slurmd", [_which("slurmd"), "-D", "-N", self.node, "-f", conf])
        self._wait(lambda: self.cmd("sinfo", "-h", "-n", self.node, "-o", "%T", check=False).stdout.strip()
                   in ("idle", "mixed", "allocated"), "slurmd (node idle)", 40)

    def _wait(self, ready, what: str, timeout: float) -> None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                out = "\n".join(_tail(self.path / "log" / f"{n}.out") for n in dead)
                raise RuntimeError(f"{dead} exited while waiting for {what}\n{out}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} not ready after {timeout} s")

    def cmd(self, *args: str, check=True, timeout=30) -> subprocess.CompletedProcess:
        p = subprocess.run([_which(args[0]) or args[0], *args[1:]], capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {p.stderr}")
        return p

    def jobs(self) -> list[dict]:
        """Every job the controller knows (MinJobAge keeps finished ones), as scontrol's fields."""
        out = self.cmd("scontrol", "--oneliner", "show", "job").stdout
        return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in out.splitlines() if line.startswith("JobId=")]

    def stop(self) -> None:
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.cmd("scancel", "--user", str(os.getuid()), check=False)  # only this cluster's jobs
            t0 = time.time()
            while time.time() - t0 < 20 and any(j["JobState"] in ("RUNNING", "COMPLETING", "PENDING")
                                                for j in self._jobs_quiet()):
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def _jobs_quiet(self) -> list[dict]:
        try:
            return self.jobs()
        except (AssertionError, subprocess.TimeoutExpired):
            return []


def bring_up(path: Path) -> Cluster:
    """Write the config and start the daemons. SLURM is installed by now, so any error is a failure
    of the tests (with the daemons' logs), never a skip."""
    c = Cluster(path)
    try:
        c.write_config()
        c.start()
    except Exception as e:
        c.stop()
        pytest.fail(f"could not bring up a one-node SLURM cluster: {type(e).__name__}: {e}\n{c.logs()}")
    return c


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if sys.platform != "linux":
        pytest.skip("the SLURM test needs Linux")
    _ensure_plugin()
    _ensure_packages()
    t0 = time.time()
    c = bring_up(tmp_path_factory.mktemp("slurm"))
    print(f"\nSLURM cluster up in {time.time() - t0:.1f} s at {c.path}")
    yield c
    c.stop()


def run_snakemake_on_slurm(cluster: Cluster, wf: Workflow, *args: str) -> tuple[int, str]:
    """`snakemake --profile profiles/slurm` in ``wf``, never hanging: SIGINT, then SIGKILL."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wf.path),
           "--profile", str(ROOT / "profiles" / "slurm"),
           # no slurmdbd on this test cluster, so no sacct: the status comes from squeue
           "--slurm-status-command", "squeue",
           "--slurm-init-seconds-before-status-checks", "2", *args]
    env = {**cluster.env, **PARTITIONS, "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = wf.path / "snakemake_slurm.log"
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=wf.path,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=SNAKEMAKE_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)  # Snakemake cancels its SLURM jobs on SIGINT
            try:
                p.wait(timeout=SIGINT_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            raise AssertionError(f"snakemake on SLURM ran past {SNAKEMAKE_TIMEOUT} s:\n"
                                 f"{log.read_text()[-6000:]}\n{cluster.logs()}")
    return rc, log.read_text()


@pytest.fixture(scope="module")
def slurm_and_local(cluster, tmp_path_factory):
    """The target on SLURM, beside the same target run locally in its own folder (the same tiny config). Not
    the session's tiny run: these tests then need no fixture of another module, so they can run on any
    pytest-xdist worker beside it."""
    on_slurm = Workflow(tmp_path_factory.mktemp("on_slurm"), tiny_config())
    local = Workflow(tmp_path_factory.mktemp("local"), tiny_config())
    local.run(TARGET)
    t0 = time.time()
    # threads -> cpus_per_task -> sbatch --cpus-per-task, seen on a job whose output does not
    # depend on its thread count (a seeded weights file)
    rc, out = run_snakemake_on_slurm(cluster, on_slurm, TARGET,
                                     "--set-threads", f"crops_initial_weights={init_threads(cluster)}")
    print(f"snakemake --profile profiles/slurm {TARGET}: {time.time() - t0:.1f} s")
    assert rc == 0, f"snakemake on SLURM failed ({rc}):\n{out[-8000:]}\n{cluster.logs()}"
    return on_slurm, local, out


def init_threads(cluster: Cluster) -> int:
    return min(2, cluster.cpus)


def _rule(job: dict) -> str:
    return job["Comment"].removeprefix("rule_").split("_wildcards_")[0]  # the plugin's comment


def test_every_non_local_job_went_through_sbatch(cluster, slurm_and_local):
    _, _, out = slurm_and_local
    jobs = cluster.jobs()
    by_rule = {_rule(j): j for j in jobs}
    assert set(by_rule) == SUBMITTED_RULES, (jobs, out[-4000:])
    assert len(jobs) == len(SUBMITTED_RULES), jobs  # one SLURM job each, no failed attempt
    assert all(j["JobState"] == "COMPLETED" and j["ExitCode"] == "0:0" for j in jobs), jobs
    # the profile's slurm_partition: trainings to $ANATOMY_GPU_PARTITION, the rest to $ANATOMY_PARTITION
    for rule, job in by_rule.items():
        want = "ANATOMY_GPU_PARTITION" if rule in TRAINING_RULES else "ANATOMY_PARTITION"
        assert job["Partition"] == PARTITIONS[want], (rule, job)
    assert len({j["JobName"] for j in jobs}) == 1  # the plugin names every job after the run
    # what the rules declare reached sbatch: the training's gpu=1 (-> --gpus=1), mem_mb, runtime
    train, data = by_rule["crops_train"], by_rule["mnist_h5"]
    assert train.get("TresPerJob") == "gres:gpu:1", train
    assert train["MinMemoryNode"] == "3000M" and train["TimeLimit"] == "04:00:00", train
    assert "gpu" not in data.get("TresPerJob", "") and data["MinMemoryNode"] == "2000M", data
    assert train["CPUs/Task"] == data["CPUs/Task"] == "1", (train, data)  # threads: 1 in the tiny config
    assert by_rule["crops_initial_weights"]["CPUs/Task"] == str(init_threads(cluster)), by_rule
    assert by_rule["crops_initial_weights"]["MinMemoryNode"] == "4000M"  # the profile's default mem_mb
    # Snakemake's own account: every submitted job has a SLURM job id; the localrule ran here
    assert out.count("has been submitted with SLURM jobid") == len(SUBMITTED_RULES), out[-4000:]
    for rule in LOCAL_RULES:
        assert f"localrule {rule}:" in out, out[-4000:]
    assert "(100%) done" in out, out[-4000:]


def test_outputs_match_a_local_run_of_the_same_target(slurm_and_local):
    on_slurm, local, _ = slurm_and_local
    a, b = on_slurm.path / "results", local.path / "results"
    with h5py.File(a / "data" / "mnist.h5") as fa, h5py.File(b / "data" / "mnist.h5") as fb:
        for key in ("train/x", "train/y", "test/x", "test/y"):
            np.testing.assert_array_equal(fa[key][()], fb[key][()], err_msg=key)
    with h5py.File(a / "crops" / "init" / "seed0.weights.h5") as fa, \
            h5py.File(b / "crops" / "init" / "seed0.weights.h5") as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert names
        for n in names:
            np.testing.assert_array_equal(fa[n][()], fb[n][()], err_msg=n)
    mask = "crops/masks/window/s9_i0_j1.npy"
    assert filecmp.cmp(a / mask, b / mask, shallow=False)
    run = "crops/window/s9_i0_j1"
    ha, hb = pd.read_csv(a / run / "history.csv"), pd.read_csv(b / run / "history.csv")
    assert ha["epoch"].tolist() == hb["epoch"].tolist() == [1, 2]
    cols = [c for c in ha.columns if c != "seconds"]
    pd.testing.assert_frame_equal(ha[cols], hb[cols], rtol=1e-4)
    ma, mb = (json.loads((x / run / "metrics.json").read_text()) for x in (a, b))
    assert ma["params"] == mb["params"] and ma["epochs_run"] == mb["epochs_run"] == 2
    assert ma["test"]["accuracy"] == pytest.approx(mb["test"]["accuracy"], abs=1e-3)
    for name in ("model.keras", "predictions.npz"):
        assert (a / run / name).stat().st_size > 0
    assert (a / "logs" / "crops" / "window" / "s9_i0_j1.log").exists()
    assert (a / "benchmarks" / "crops" / "window" / "s9_i0_j1.tsv").exists()


def test_an_error_while_the_cluster_starts_fails_rather_than_skips(tmp_path, monkeypatch):
    """Only a missing SLURM skips; an error in the harness or a dying daemon must show red."""
    def broken(self):
        raise RuntimeError("slurmctld exited while waiting for it")

    monkeypatch.setattr(Cluster, "write_config", broken)
    with pytest.raises(pytest.fail.Exception, match="RuntimeError: slurmctld exited"):
        bring_up(tmp_path)
