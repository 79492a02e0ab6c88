"""The launch recipes in deploy/ (docs/scaling.md): the SLURM batch script run against a fake srun and
scontrol that record their calls, and the KubeRay and cluster-launcher YAML files parsed and held to the
image, command and storage that docs/scaling.md and the README name."""
import os
import shlex
import subprocess
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
IMAGE = "svae-bench:latest"  # what deploy/Dockerfile's build line tags, and docs/scaling.md says
STORAGE = "/mnt/shared/svae-runs"  # the README's --storage
SHARES = "--gpus-per-trial mnist=0.25 cifar10=0.25 celeba=1"

FAKE = """#!/bin/bash
printf '%s\\n' "$(basename "$0") $*" >> "$CALLS"
case "$*" in *"show hostnames"*) printf 'gpu1\\ngpu2\\ngpu3\\n' ;; *hostname*) echo 10.1.2.3 ;; esac
"""


def run_sbatch(tmp_path, shared):
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).write_text(FAKE)
        (bin_dir / tool).chmod(0o755)
    calls.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), "SHARED": str(shared),
           "VENV": "/opt/venv", "SLURM_JOB_NODELIST": "gpu[1-3]", "SLURM_GPUS_ON_NODE": "8",
           "SLURM_CPUS_PER_TASK": "32"}
    out = subprocess.run(["bash", str(DEPLOY / "slurm.sbatch")], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    return [shlex.split(line) for line in calls.read_text().splitlines()]


def step(call):
    """(node, command) of a recorded srun call."""
    args = call[1:]
    node = args[args.index("-w") + 1]
    command = args[args.index("-w") + 2:]
    return node, command


def test_the_slurm_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(DEPLOY / "slurm.sbatch")], check=False).returncode == 0


def test_the_slurm_script_starts_the_head_first_workers_on_the_rest_and_the_sweep_on_the_head(tmp_path):
    shared = tmp_path / "shared"
    calls = run_sbatch(tmp_path, shared)
    assert calls[0] == ["scontrol", "show", "hostnames", "gpu[1-3]"]
    steps = [step(c) for c in calls if c[0] == "srun"]
    starts = sorted((node, cmd) for node, cmd in steps if cmd[:2] == ["/opt/venv/bin/ray", "start"])
    assert starts == [("gpu1", ["/opt/venv/bin/ray", "start", "--head", "--node-ip-address=10.1.2.3",
                                "--port=6379", "--num-cpus=32", "--num-gpus=8", "--block"])] + [
        (node, ["/opt/venv/bin/ray", "start", "--address=10.1.2.3:6379", "--num-cpus=32", "--num-gpus=8", "--block"])
        for node in ("gpu2", "gpu3")]
    # the workers start only once the head answers (the starts run in the background: recorded in any order)
    health = [i for i, (_, cmd) in enumerate(steps) if cmd[1:2] == ["health-check"]]
    workers = [i for i, (_, cmd) in enumerate(steps) if any(w.startswith("--address=") for w in cmd)]
    assert health and workers and health[0] < min(workers)
    ((node, driver),) = [(n, cmd) for n, cmd in steps if "bench.run" in cmd]
    assert node == "gpu1" and driver[:3] == ["/opt/venv/bin/python", "-m", "bench.run"]
    assert " ".join(driver[3:]) == (f"--address 10.1.2.3:6379 --storage {shared}/paper-ray --out {shared}/paper "
                                    f"--data-root {shared}/data --yes --preset paper {SHARES}")
    assert any("ray.nodes()" in " ".join(cmd) and "< 3" in " ".join(cmd) for _, cmd in steps[:-1])


def test_the_slurm_script_resumes_a_sweep_its_run_directory_holds(tmp_path):
    shared = tmp_path / "shared"
    (shared / "paper").mkdir(parents=True)
    (shared / "paper" / "manifest.json").write_text("{}")
    (driver,) = [cmd for _, cmd in map(step, run_sbatch(tmp_path, shared)[1:]) if "bench.run" in cmd]
    assert driver[-1] == "--resume"


def containers(pod_template):
    return pod_template["spec"]["containers"]


def test_the_kuberay_rayjob_runs_the_sweep_on_a_cpu_only_head_with_gpu_workers_and_shared_storage():
    job = yaml.safe_load((DEPLOY / "kuberay-rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    words = job["spec"]["entrypoint"].split()
    assert words[:5] == ["python", "-m", "bench.run", "--address", "auto"]
    assert words[words.index("--storage") + 1].startswith(STORAGE + "/")
    assert words[words.index("--out") + 1].startswith(STORAGE + "/")
    assert SHARES in job["spec"]["entrypoint"]
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    pods = [head["template"]] + [group["template"] for group in cluster["workerGroupSpecs"]]
    for pod in pods:
        (container,) = containers(pod)
        assert container["image"] == IMAGE
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert STORAGE.startswith(mounts["shared"] + "/")
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]}
        assert claims["shared"] == "svae-shared"
    assert all(int(containers(g["template"])[0]["resources"]["limits"]["nvidia.com/gpu"]) > 0
               for g in cluster["workerGroupSpecs"])


def test_the_cluster_launcher_config_names_the_image_a_cpu_only_head_and_the_shared_mount():
    text = (DEPLOY / "ray-cluster.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["docker"]["image"] == IMAGE
    assert "-v /mnt/shared:/mnt/shared" in config["docker"]["run_options"]
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"]["GPU"] == 0
    assert any(t["resources"]["GPU"] > 0 for t in types.values())
    assert any("--num-gpus=0" in c for c in config["head_start_ray_commands"])
    assert any("/mnt/shared" in c and "mount" in c for c in config["initialization_commands"])
    usage = [line for line in text.splitlines() if line.startswith("#   ray exec")]
    assert usage and f"--storage {STORAGE}/" in usage[0] and SHARES in usage[0]


def test_the_dockerfile_builds_the_image_the_recipes_name_and_the_docs_show_every_recipe():
    assert f"-t {IMAGE} ." in (DEPLOY / "Dockerfile").read_text()
    docs = (DEPLOY.parent / "docs" / "scaling.md").read_text()
    for recipe in ("deploy/slurm.sbatch", "deploy/kuberay-rayjob.yaml", "deploy/ray-cluster.yaml", "deploy/Dockerfile"):
        assert recipe in docs
    assert STORAGE in (DEPLOY.parent / "README.md").read_text()
