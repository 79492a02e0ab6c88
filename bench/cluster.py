"""The Ray cluster of a sweep: its address checked before Ray is asked (Ray itself waits for minutes),
joined or started, its nodes checked to fit a trial and to reach the storage; and shut down when the command ends."""
import ipaddress
import os
import socket
import sys
from pathlib import Path

from svae.errors import HarnessError
from svae.interrupt import keep_sigterm

ADDRESS_TIMEOUT_S = 5  # a cluster address that does not answer within this is an error, not a wait
SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "9p")


def check_address(address: str) -> None:
    """Something must answer at a cluster's address within seconds; Ray itself would wait for minutes."""
    if address in ("auto", "local"):
        return
    if address.startswith("ray://"):
        # Through Ray Client, Ray Tune runs the Tuner as an actor on the cluster: the sweep's callbacks,
        # which collect the trials into the run directory here, would run there without this driver.
        head = address[len("ray://"):].rpartition(":")[0]
        raise HarnessError(f"--address {address} is Ray Client, which cannot run a sweep (Ray Tune would run it "
                           f"on the cluster, away from --out); run bench.run on a node of the cluster with "
                           f"--address {head}:6379 (the head's `ray start --port`, 6379 by default), or submit "
                           f"it there with `ray job submit`")
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise HarnessError(f"--address {address} is not HOST:PORT (or ray://HOST:PORT); give the head node's "
                           f"address, as `ray status` prints it there")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as e:
        raise HarnessError(f"nothing answers at --address {address} within {ADDRESS_TIMEOUT_S} s "
                           f"({e.strerror or type(e).__name__}); check the address and that the cluster is up "
                           f"(`ray status` on its head node)") from None


def check_resources(cpus: float, gpus: float, nodes: list) -> None:
    """A trial must fit on some node, or Ray would wait for it forever."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return
    largest = ", ".join(sorted({f"{r.get('CPU', 0):g} CPUs and {r.get('GPU', 0):g} GPUs" for r in alive})) or "none"
    raise HarnessError(f"no node of the cluster has {cpus:g} CPUs and {gpus:g} GPUs for a trial (nodes: "
                       f"{largest}); lower --cpus-per-trial or --gpus-per-trial, or add a larger node")


def start_ray(args):
    import logging
    # A quiet console: the legacy reporter honours verbose=0, and Ray's warnings go to its log files.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray").setLevel(logging.ERROR)
    if not args.address:
        # Ray's single-machine mode: the node's address is loopback, so every server binds to
        # 127.0.0.1 (read when Ray is imported, inherited by its processes).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    try:
        if args.address:
            try:
                with keep_sigterm():  # a SIGTERM stops the sweep as Ctrl-C does, with a resume hint
                    ray.init(address=args.address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, TimeoutError) as e:
                raise HarnessError(f"cannot join the Ray cluster at --address {args.address} "
                                   f"({' '.join(str(e).split())[:200]}); "
                                   "check the address and the Ray versions") from None
            node_ips = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
            check_storage(args.storage, node_ips, {"127.0.0.1", ray.util.get_node_ip_address()})
        else:
            with keep_sigterm():
                ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                         logging_level=logging.ERROR, log_to_driver=False)
        gpus = args.gpus_per_trial
        if gpus is None:
            share = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
            gpus = {d: share for d in dict.fromkeys(args.datasets)}
        for share in set(gpus.values()):
            check_resources(args.cpus_per_trial, share, ray.nodes())
    except HarnessError:
        ray.shutdown()
        raise
    return gpus


def stop_ray() -> None:
    """Shut down Ray if this process started or joined it: no Ray process outlives the command."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def filesystem_type(path: Path) -> str:
    """The type of the mount holding path, from /proc/mounts (longest matching mount point)."""
    path = path.resolve()
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and str(path).startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def check_cluster_storage(address, storage) -> None:
    """--storage where a cluster is joined; an address from RAY_ADDRESS, perhaps set unknowingly, is named so."""
    if address and not storage:
        where = "a path mounted on every node, or s3://..."  # trials write where every node reaches
        if address == os.environ.get("RAY_ADDRESS"):
            raise HarnessError(f"RAY_ADDRESS={address} (set in the environment) names a Ray cluster, which needs "
                               f"--storage: {where}; or unset RAY_ADDRESS for a local cluster")
        raise HarnessError(f"--address needs --storage: {where}")


def check_storage(storage: str, node_ips: set, local_ips: set) -> None:
    """Trials on other machines must reach the storage: a URI, or a path on a shared filesystem."""
    remote = {ip for ip in node_ips - local_ips if not ipaddress.ip_address(ip).is_loopback}
    if "://" in storage or not remote:
        return
    kind = filesystem_type(Path(storage))
    if not kind.startswith("fuse") and kind not in SHARED_FILESYSTEMS:
        raise HarnessError(f"--storage {storage} is a local {kind} path, but the cluster has nodes on other "
                           f"machines ({', '.join(sorted(remote))}); pass a path mounted on every node (NFS, ...) "
                           f"or s3://...")
