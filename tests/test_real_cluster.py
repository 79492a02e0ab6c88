"""The README's cluster command against real Ray processes, as a cluster has them: a head started with
`ray start --head` (loopback, its own temp dir and ports, the Ray Client server on, no GPU) and a second
node joined with `ray start --address` (2 logical GPUs, its own loopback address 127.0.0.2 so that the
trials it ran show in Ray's results). The grid runs with `--address HOST:PORT` while the worker node is
SIGKILLed mid-grid; `--address ray://HOST:PORT` (Ray Client) is refused in one line naming the
alternative. Every process the test starts is stopped by its id. Minutes: marked slow."""
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.test_faults import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).parent / "ray")
HEAD_IP, WORKER_IP = "127.0.0.1", "127.0.0.2"
# four tiny trials, a checkpoint every epoch: a trial cut off by the node's loss resumes mid-training
GRID = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200", "--models", "vae", "--seeds", "4",
        "--checkpoint-every", "0", "--gpus-per-trial", "0",
        "--set", "epochs=2", "train_subset=512", "model.backbone.base_width=8", "gmm.fit_n=512", "gmm.components=4",
        "--no-reports"]  # the tests read results.csv, the trials and Ray's result.json files
LOCAL_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}


def cluster_env(token_file: Path, driver: bool) -> dict:
    """Token authentication, as the README asks of a shared cluster (and `ray start` turns on by default):
    this cluster's own token, in a file of its own. A driver runs on the head node: Ray finds a driver's
    node by the machine's outward address unless told that Ray is on loopback here, as the head is."""
    env = {**LOCAL_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}
    return {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"} if driver else env


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HEAD_IP, 0))
        return s.getsockname()[1]


def node_ports() -> list:
    """Every port a node listens on, chosen free (other Ray clusters may run on this machine). Its 100
    worker ports lie above Ray's default worker ports (10002-19999) and below the kernel's ephemeral
    range, which free_port() draws from: a free port inside the worker range made Ray refuse to start
    ("trying to use a port number ... used by other components"; CI, 2026-12-06)."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    first = random.randrange(20000, ephemeral_low - 100, 100)
    return [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
            f"--min-worker-port={first}", f"--max-worker-port={first + 99}"]


def start_node(args: list, log: Path, env: dict) -> subprocess.Popen:
    """`ray start --block`: the node's processes are this process's descendants, stopped with it."""
    with open(log, "w") as out:
        return subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_node(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    """Stop one node: its `ray start` process and every descendant, by id (never `ray stop`, which would
    stop every Ray process on the machine)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)


def alive_nodes(address: str, env: dict) -> int:
    code = (f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
            f"print(sum(n['Alive'] for n in ray.nodes()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def bench_run(*args) -> list:
    return [sys.executable, "-m", "bench.run", *GRID, *args]


def results(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "results.csv").drop(columns=["train_seconds"])


def reports(storage: Path) -> dict:
    """trial id -> Ray's results of every attempt, in order (each carries the node_ip it ran on)."""
    out = {}
    for path in storage.glob("*/*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        out.setdefault(path.parent.name, []).extend(lines)
    return out


def finished(run_dir: Path) -> set:
    done = set()
    for path in run_dir.glob("trials/*/status.json"):
        try:
            if json.loads(path.read_text()).get("status") == "finished":
                done.add(path.parent.name)
        except ValueError:
            pass
    return done


def test_a_sweep_on_real_ray_nodes_survives_losing_a_node_and_ray_client_is_refused(tmp_path):
    started = time.time()
    local = tmp_path / "local"
    out = subprocess.run(bench_run("--out", str(local)), capture_output=True, text=True, env=LOCAL_ENV, timeout=900,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    timings = {"local run": time.time() - started}

    temp_dir = tempfile.mkdtemp(prefix="svae-rc-", dir="/tmp")  # short: Ray's socket paths have a length limit
    token = Path(temp_dir) / "auth-token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    node_env, driver_env = cluster_env(token, driver=False), cluster_env(token, driver=True)
    port, client_port = free_port(), free_port()
    address = f"{HEAD_IP}:{port}"
    nodes = []
    try:
        nodes.append(start_node(["--head", f"--node-ip-address={HEAD_IP}", f"--port={port}",
                                 f"--ray-client-server-port={client_port}", "--include-dashboard=false",
                                 f"--temp-dir={temp_dir}", "--num-cpus=2", "--num-gpus=0", *node_ports()],
                                tmp_path / "head.log", node_env))
        wait_until(lambda: alive_nodes(address, driver_env) == 1, 180, what="the head node")
        nodes.append(start_node([f"--address={address}", f"--node-ip-address={WORKER_IP}", "--num-cpus=2",
                                 "--num-gpus=2", *node_ports()], tmp_path / "worker.log", node_env))
        wait_until(lambda: alive_nodes(address, driver_env) == 2, 180, what="the worker node")
        timings["cluster up"] = time.time() - started - timings["local run"]

        # Ray Client: refused at once, in one line that names the address to use instead
        storage = tmp_path / "storage"
        out = subprocess.run(bench_run("--address", f"ray://{HEAD_IP}:{client_port}", "--storage", str(storage),
                                       "--out", str(tmp_path / "client")),
                             capture_output=True, text=True, env=driver_env, timeout=120, check=False)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert "Ray Client" in out.stderr and f"--address {HEAD_IP}:6379" in out.stderr
        assert not (tmp_path / "client").exists() and not storage.exists()
        socket.create_connection((HEAD_IP, client_port), timeout=5).close()  # the Ray Client server is on

        # HOST:PORT: the grid spreads over both nodes; the worker node is killed while a trial trains there
        run_dir = tmp_path / "run"
        with open(tmp_path / "driver.log", "w") as log:
            driver = subprocess.Popen(bench_run("--address", address, "--storage", str(storage), "--out",
                                                str(run_dir)), stdout=log, stderr=subprocess.STDOUT, env=driver_env)

        def training_on_worker():
            return [trial for trial, lines in reports(storage).items() if trial not in finished(run_dir)
                    and any(line.get("node_ip") == WORKER_IP and line.get("epoch", 0) >= 1 for line in lines)]
        wait_until(lambda: training_on_worker() or driver.poll() is not None, 900,
                   what="a trial training on the worker")
        cut_off = training_on_worker()
        assert cut_off, "the grid ended before a trial trained on the worker node"
        stop_node(nodes[1], signal.SIGKILL)
        killed_at = time.time()
        assert driver.wait(timeout=900) == 0, (tmp_path / "driver.log").read_text()[-3000:]
        timings["sweep, worker killed"] = time.time() - killed_at

        assert finished(run_dir) == finished(local)
        pd.testing.assert_frame_equal(results(run_dir), results(local))
        ran = reports(storage)
        # the head's trials report the machine's outward address (Ray asks the route, not the node);
        # the worker node's report 127.0.0.2: two nodes, one of them the worker
        ips = {line["node_ip"] for lines in ran.values() for line in lines}
        assert WORKER_IP in ips and len(ips) == 2, ips
        for trial in cut_off:  # retried on the head from its last checkpoint, not from its first epoch
            after = ran[trial][[line.get("node_ip") for line in ran[trial]].index(WORKER_IP):]
            on_head = [line for line in after if line["node_ip"] != WORKER_IP]
            assert on_head and all(line.get("epoch", 99) > 1 for line in on_head), ran[trial]
        assert "retrying" in (run_dir / "logs" / "driver.log").read_text()
    finally:
        for node in reversed(nodes):
            stop_node(node)
        shutil.rmtree(temp_dir, ignore_errors=True)
        print("timings (s):", {k: round(v) for k, v in timings.items()}, f"total {time.time() - started:.0f}")
