"""Sweeps on real Ray clusters: a local one (ray.init in the driver) and `ray start` head + worker
on 127.0.0.1; a worker killed mid-cell, a killed driver resumed, placement by custom resources
and node labels, and the one-line errors."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

from .conftest import TINY, assert_one_line_error, hint, run_cli

pytest.importorskip("ray", reason="the Ray tests need infra-bench[ray]")

# Ray's GCS declares a node dead after 5 missed health checks (RayConfig health_check_*); on 2
# cores shared with the other test worker a raylet can miss them for a while without being dead.
PATIENT_RAY = {"RAY_health_check_failure_threshold": "60", "RAY_health_check_timeout_ms": "30000"}


@pytest.fixture(autouse=True, scope="module")
def _patient_ray():
    saved = {k: os.environ.get(k) for k in PATIENT_RAY}
    os.environ.update(PATIENT_RAY)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def write_matrix(folder: Path, name: str = "m.yaml", spec: dict | None = None, **fields) -> Path:
    (folder / "spec.yaml").write_text(yaml.safe_dump({**TINY, "name": "tiny", **(spec or {})}))
    path = folder / name
    path.write_text(yaml.safe_dump({"specs": ["spec.yaml"], "devices": ["cpu"], **fields}))
    return path


def records(out: Path, run_id: str | None = None) -> list[dict]:
    files = [out / run_id / "records.jsonl"] if run_id else sorted(out.glob("*/records.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def shape(d: dict, prefix: str = "") -> set[str]:
    """Every key path of a record, values aside (metrics and samples to one level)."""
    keys = set()
    for k, v in d.items():
        keys.add(prefix + k)
        if isinstance(v, dict) and k not in ("environment",):
            keys |= shape(v, prefix + k + ".")
    return keys


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "infra_bench", "sweep", *args]


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_driver_is_resumed_with_nothing_lost_or_duplicated_into_records_like_local_ones(tmp: Path):
    """The driver (and the local cluster it started) killed after its first record, then resumed on a new
    local cluster: every cell once, with the cell ids and keys the same matrix run here gives. One test for
    both, as each Ray sweep on a local cluster of its own pays a cluster start-up."""
    m = write_matrix(tmp, spec={"batch_size": [1, 2, 3], "min_time_s": 1.0})
    # A killed Ray session leaves its address in <ray temp>/ray_current_cluster, where ray.init()
    # without an address would try to join it and hang: --ray alone starts a cluster of its own.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))   # short: Ray's socket paths must fit
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")
    env = {"RAY_TMPDIR": str(ray_tmp)}
    try:
        driver = subprocess.Popen(sweep_cmd(str(m), "--ray", "--out", "res"), cwd=tmp, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **env})
        wait_for(lambda: (tmp / "res").is_dir() and records(tmp / "res"), 90, "the first record")
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local cluster it started ...
        driver.wait()
        # ... except its Ray workers, which have process groups of their own: end them too, as a killed
        # machine would, so the resumed driver's new cluster does not share 2 cores with them
        orphans = [p for p in psutil.process_iter(["cmdline"])
                   if (p.info["cmdline"] or [""])[0].startswith("ray::")]
        for p in orphans:
            p.kill()
        psutil.wait_procs(orphans, timeout=30)
        (run_id,) = [p.name for p in (tmp / "res").iterdir()]
        before = len(records(tmp / "res"))
        assert 1 <= before < 3
        # resumed here, not on Ray, its cells would be named by this side's devices and run again
        assert_one_line_error(run_cli("sweep", "--resume", run_id, "--out", "res", cwd=tmp),
                              "ran on Ray; resume it the same way")
        on_ray = run_cli("sweep", "--resume", run_id, "--ray", "--out", "res", cwd=tmp, timeout=180, env=env)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert on_ray.returncode == 0, on_ray.stderr
    assert "done 3, running 0, failed 0" in on_ray.stderr
    cells = [f"tiny/torch/cpu/fp32/b{n}-p16-o8" for n in (1, 2, 3)]
    b = sorted(records(tmp / "res"), key=lambda r: r["cell_id"])
    assert [r["cell_id"] for r in b] == cells  # none lost, none twice
    local = run_cli("sweep", str(m), "--out", "local", cwd=tmp)
    assert local.returncode == 0, local.stderr
    a = records(tmp / "local")
    assert [r["cell_id"] for r in a] == cells
    assert all(shape(x) == shape(y) for x, y in zip(a, b))
    assert {r["settings"]["executor"]["name"] for r in b} == {"ray"} and all(r["status"] == "ok" for r in b)
    assert all(r["settings"]["executor"]["node_id"] for r in b)
    assert b[0]["environment"]["host"]["hostname"] == socket.gethostname()  # the node's own sysinfo


def test_sweep_errors_are_one_line(tmp: Path):
    m = write_matrix(tmp, node_types=[{"name": "npu", "resources": {"NPU": 1}}])
    assert_one_line_error(run_cli("sweep", str(m), "--out", "res", cwd=tmp), "node_types place cells on Ray nodes")
    assert_one_line_error(run_cli("sweep", "nope.yaml", cwd=tmp), "matrix file not found: nope.yaml")
    assert "sweep [OPTIONS] [MATRIX.yaml]" in run_cli("sweep", "--help", cwd=tmp).stdout  # optional: --resume ID alone
    assert_one_line_error(run_cli("sweep", "spec.yaml", cwd=tmp), "spec.yaml is a workload spec, not a sweep matrix")
    assert_one_line_error(run_cli("sweep", "--ray", "m.yaml", cwd=tmp), "put the matrix first")
    (tmp / "bad.yaml").write_text(yaml.safe_dump({"specs": ["spec.yaml"], "device": ["cpu"]}))
    assert_one_line_error(run_cli("sweep", "bad.yaml", cwd=tmp), "device")
    (tmp / "blocked").mkdir()
    (tmp / "blocked" / "ray.py").write_text("raise ImportError('ray is not installed here')\n")
    plain = write_matrix(tmp, "plain.yaml")
    assert_one_line_error(run_cli("sweep", str(plain), "--ray", cwd=tmp, env={"PYTHONPATH": str(tmp / "blocked")}),
                          hint("ray"))
    assert_one_line_error(run_cli("sweep", str(plain), "--ray", "127.0.0.1:1", cwd=tmp),
                          "cannot reach the Ray cluster at 127.0.0.1:1")
    # both are said before the cells are planned, which imports torch (seconds) and resolves every spec
    timed = run_cli("sweep", str(plain), "--ray", "127.0.0.1:1", cwd=tmp, python_args=("-X", "importtime"))
    said = [line for line in timed.stderr.splitlines() if not line.startswith("import time:")]
    refused = ("error: cannot reach the Ray cluster at 127.0.0.1:1 (Connection refused); start one with `ray start "
               "--head` and pass its address, or use --ray alone for a local one")
    assert timed.returncode == 2 and said == [refused], said
    assert not [line for line in timed.stderr.splitlines() if line.rstrip().endswith("| torch")]


def test_sweep_resume_of_a_plain_run_names_the_run_command_with_its_folder(tmp: Path):
    """`sweep --resume ID --out DIR` of a `run`: the command it named lacked --out DIR, so it looked under
    results/ and did not find the run."""
    from infra_bench.results.schema import Manifest

    (tmp / "elsewhere" / "r1").mkdir(parents=True)  # a run's folder as `run` leaves it (not locked by this process)
    (tmp / "elsewhere" / "r1" / "run.json").write_text(Manifest(
        run_id="r1", created_at="2026-12-06T00:00:00Z", infra_bench="test", specs=[], cells_planned=1).model_dump_json())
    assert_one_line_error(run_cli("sweep", "--resume", "r1", "--out", "elsewhere", cwd=tmp),
                          "run r1 is not a sweep; finish it with `infra-bench run --resume r1 --out elsewhere`")


def test_an_axis_value_listed_twice_is_named_with_its_fix(tmp: Path):
    """`backends: [torch, torch]` (or a spec file listed twice) was refused as 'spec appears twice ... give each
    spec a distinct name', a fix that does not apply: the matrix lists a value twice."""
    from infra_bench.errors import UserError
    from infra_bench.scale.matrix import load_matrix

    for fields, said in [({"backends": ["torch", "torch"]}, "field 'backends': 'torch' is listed more than once"),
                         ({"devices": ["cpu", "cpu"]}, "field 'devices': 'cpu' is listed more than once"),
                         ({"specs": ["spec.yaml", "spec.yaml"]}, "field 'specs': 'spec.yaml' is listed more than once")]:
        with pytest.raises(UserError, match=f"{re.escape(said)}; list each once"):
            load_matrix(write_matrix(tmp, **fields))


def test_a_device_that_resolves_to_another_listed_one_is_refused_before_measuring(tmp: Path):
    """`devices: [cpu, auto]` where auto is the CPU named two specs' cells alike: both were measured and
    written under one cell id."""
    m = write_matrix(tmp, devices=["cpu", "auto"])
    p = run_cli("sweep", str(m), "--out", "res", cwd=tmp, env={"CUDA_VISIBLE_DEVICES": ""})
    assert_one_line_error(p, "devices 'cpu' and 'auto' both resolve to cpu here; list one of them")
    assert not (tmp / "res").exists() or not list((tmp / "res").glob("*/records.jsonl"))


def test_a_device_error_in_a_sweep_names_no_option_sweep_lacks(tmp: Path):
    """The device checks said "use --device cpu", which sweep refuses as an unknown option."""
    for device, fragment in (("cpu:1", "device 'cpu:1': the cpu has no index; use device cpu"),
                             ("musa", "device 'musa' is not present: ")):
        p = run_cli("sweep", str(write_matrix(tmp, devices=[device])), "--out", "res", cwd=tmp)
        assert_one_line_error(p, fragment)
        assert "--device" not in p.stderr and p.stderr.rstrip().endswith("use device cpu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}  # Ray's token authentication


def _ray(*args: str) -> subprocess.CompletedProcess:
    ray_cli = Path(sys.executable).parent / "ray"
    return subprocess.run([str(ray_cli), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **AUTH})


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` (1 CPU) and a worker declaring NPU=1 and label accel=npu, on 127.0.0.1,
    with a token the drivers must present; one for the file's two tests on it (a start-up and a `ray stop`
    take about 12 s here), which come last so that it idles beside no other test."""
    address = f"127.0.0.1:{_free_port()}"
    common = ("--node-ip-address", "127.0.0.1", "--disable-usage-stats")
    head = _ray("start", "--head", "--port", address.split(":")[1], "--num-cpus", "1", "--include-dashboard", "false",
                *common)
    assert head.returncode == 0, head.stderr
    try:
        worker = _ray("start", "--address", address, "--num-cpus", "1", "--resources", '{"NPU": 1}',
                      "--labels", "accel=npu", *common)
        assert worker.returncode == 0, worker.stderr
        yield address
    finally:
        _ray("stop", "--force")


def test_cells_are_placed_by_custom_resource_and_label_on_a_started_cluster(tmp: Path, cluster: str):
    npu = {"name": "npu-box", "resources": {"NPU": 1}, "labels": {"accel": "npu"}}
    m = write_matrix(tmp, spec={"batch_size": [1, 2]}, node_types=[npu])
    p = run_cli("sweep", str(m), "--ray", cluster, "--out", "res", cwd=tmp, env=AUTH)
    assert p.returncode == 0, p.stderr
    find = subprocess.run([sys.executable, "-c", "import ray; ray.init(address='%s', logging_level='ERROR'); "
                           "print([n['NodeID'] for n in ray.nodes() if n['Alive'] and 'NPU' in n['Resources']][0])"
                           % cluster], capture_output=True, text=True, timeout=60, env={**os.environ, **AUTH})
    npu_node = find.stdout.strip().splitlines()[-1]
    recs = records(tmp / "res")
    assert [r["cell_id"] for r in recs] == ["tiny@npu-box/torch/cpu/fp32/b1-p16-o8",
                                            "tiny@npu-box/torch/cpu/fp32/b2-p16-o8"]
    assert {r["settings"]["executor"]["node_id"] for r in recs} == {npu_node}
    assert {r["settings"]["executor"]["node_type"] for r in recs} == {"npu-box"}
    gpu = write_matrix(tmp, "gpu.yaml", node_types=[{"name": "g", "labels": {"accel": "gpu"}}])
    assert_one_line_error(run_cli("sweep", str(gpu), "--ray", cluster, "--out", "res", cwd=tmp, env=AUTH),
                          "no alive Ray node offers CPU=1, label accel=gpu")


def test_a_worker_killed_mid_cell_is_retried_into_one_record(tmp: Path, cluster: str):
    """On the started cluster the placement test used: Ray retries a task whose worker died alike on any
    cluster, and a local one is started by the driver test above."""
    m = write_matrix(tmp, spec={"min_time_s": 2.0, "min_iters": 3})
    driver = subprocess.Popen(sweep_cmd(str(m), "--ray", cluster, "--out", "res"), cwd=tmp, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **AUTH})

    def running_cell():
        for p in psutil.process_iter(["cmdline"]):
            if (p.info["cmdline"] or [""])[0].startswith("ray::run_cell"):
                return p
        return None
    victim = wait_for(running_cell, 60, "the cell's Ray worker")
    time.sleep(1.0)
    victim.send_signal(signal.SIGKILL)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, err
    (rec,) = records(tmp / "res")
    assert rec["status"] == "ok" and rec["cell_id"] == "tiny/torch/cpu/fp32/b1-p16-o8"
