"""--storage s3://bucket/prefix against a real S3-compatible server (moto's, on 127.0.0.1): a sweep
whose driver is killed completes on --resume and equals an uninterrupted run, and the FID statistics cache is
kept per node (in ~/.cache/svae-bench), not in the bucket. Real sweeps: marked slow."""
import os

import pytest

from tests.result_counts import assert_row_counts
from tests.test_run_relocation import assert_same_results, kill_after_first_trial, sweep

pytestmark = pytest.mark.slow
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(environment for the commands, boto3 client): a moto server with one bucket, and a HOME of its own."""
    import boto3
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    # pyarrow (Ray's storage, the harness's markers) and boto3 both honour AWS_ENDPOINT_URL.
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true",
           "HOME": str(tmp_path_factory.mktemp("home"))}
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="bench")
    yield env, client
    server.stop()


def keys(client, prefix):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def resumed(s3, tmp_path_factory):
    """A sweep on S3 whose driver was SIGKILLed after its first trial, then resumed to its end."""
    env, _ = s3
    run_dir = tmp_path_factory.mktemp("s3") / "run"
    kill_after_first_trial(run_dir, "--storage", "s3://bench/killed", env=env)
    out = sweep(run_dir, "--resume", env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return run_dir


def test_a_sweep_on_s3_completes_and_caches_fid_statistics_per_node(s3, resumed):
    env, client = s3
    stored = [k for k in keys(client, "killed/") if not k.endswith("/")]  # not pyarrow's folder markers
    assert "killed/owner.json" in stored
    assert any(k.startswith("killed/sweep/") for k in stored)  # Ray's experiment state and checkpoints
    # The driver marks a trial in the storage just after its status.json lands in the run directory; the
    # kill (on seeing that status.json) can fall between the two, and the resume, which reads the run
    # directory, never runs s0 again. So s0's mark may be missing; s1, collected after the resume, has one.
    marks = {k for k in stored if k.startswith("killed/finished/")}
    assert "killed/finished/synthetic-vae-s1" in marks
    assert marks <= {"killed/finished/synthetic-vae-s0", "killed/finished/synthetic-vae-s1"}
    assert not any("fid-cache" in k for k in stored)  # object storage holds no cache: file locks need a filesystem
    cache = os.path.join(env["HOME"], ".cache", "svae-bench")
    assert os.listdir(cache)  # the node's own cache holds the real statistics
    assert_row_counts(resumed / "results.csv", 2 * 3 * 6)  # vae: 3 samplers x x_hat x 6 figures


def test_driver_kill_and_resume_on_s3_equal_an_uninterrupted_sweep(resumed, reference_sweep):
    assert_same_results(resumed, reference_sweep)  # the reference: the same sweep on local storage


def test_a_bucket_that_does_not_exist_is_refused_not_read_as_empty_storage(s3, resumed, tmp_path, monkeypatch):
    env, client = s3
    out = sweep(tmp_path / "run", "--storage", "s3://no-such-bucket/prefix", env=env)  # a new sweep: before Ray
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "no bucket 'no-such-bucket'" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "no-such-bucket" not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    # A resume reads the owner record the same way; a missing bucket must not read as "no record"
    # (which, with --storage given, would rerun every unfinished trial from scratch).
    from bench.rundir import read_owner
    from svae.errors import HarnessError
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert read_owner("s3://bench/killed")["run_id"]
    with pytest.raises(HarnessError, match="no bucket 'no-such-bucket'"):
        read_owner("s3://no-such-bucket/prefix")
