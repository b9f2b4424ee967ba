"""Shared helpers: run the real CLI in a subprocess, write small spec files."""
from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

TINY = {"kind": "llm", "arch": "llama-tiny", "batch_size": [1], "prompt_len": [16], "output_len": [8],
        "warmup": 1, "min_iters": 3, "min_time_s": 0.0}


def benchmark_script(name: str):
    """A benchmarks/ script imported as a module (its functions are tested directly), with benchmarks/ on
    sys.path while it loads, as `python benchmarks/NAME.py` has it: a script may import a sibling's helpers."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def run_cli(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None,
            python_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`infra-bench ARGS` as its own process in `cwd`: forked from this worker's fork server (cli_forkserver.py,
    the libraries imported once), or a fresh interpreter where it must be one: interpreter flags, or an
    environment other than the server's (libraries read some variables when they are imported)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("INFRA_BENCH_DEBUG", None)
    if not python_args and _import_time_environment(full_env) == _fork_server()[1]:
        return _forked(list(args), cwd, timeout, full_env)
    try:
        return subprocess.run([sys.executable, *python_args, "-m", "infra_bench", *args], cwd=cwd,
                              capture_output=True, text=True, timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired as e:
        _ran_over(args, timeout, e.stderr or b"")


def _ran_over(args, timeout: float, stderr: bytes | str):
    """Fails the test, saying what the process printed before it hung."""
    tail = stderr[-3000:]
    raise AssertionError(f"infra-bench {' '.join(args)} ran over {timeout:g} s; its stderr ended with:\n"
                         f"{tail.decode(errors='replace') if isinstance(tail, bytes) else tail}") from None


# Variables that may differ between a call and its fork server: pytest's per test, the one torch sets when it
# first compiles (to its default, as a child would), and the debug switch the CLI calls never get.
IGNORED_VARIABLES = ("INFRA_BENCH_DEBUG", "PYTEST_CURRENT_TEST", "TORCHINDUCTOR_CACHE_DIR")


def _import_time_environment(env: dict) -> dict:
    """The variables a forked child must share with its server."""
    return {k: v for k, v in env.items() if k not in IGNORED_VARIABLES}


@functools.cache
def _fork_server() -> tuple[subprocess.Popen, dict]:
    """This worker's fork server, started at its first CLI call, and the environment it was started with."""
    env = _import_time_environment(os.environ)
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cli_forkserver.py"))], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert json.loads(server.stdout.readline()) == {"ready": True}
    atexit.register(lambda: (server.stdin.close(), server.wait(timeout=60)))
    return server, env


def _answer(server: subprocess.Popen, key: str) -> int:
    line = server.stdout.readline()
    assert line, f"the tests' fork server (tests/cli_forkserver.py) ended with code {server.poll()}"
    return json.loads(line)[key]


def _forked(args: list[str], cwd: Path, timeout: float, env: dict) -> subprocess.CompletedProcess:
    server = _fork_server()[0]
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        server.stdin.write(json.dumps({"argv": args, "cwd": str(cwd), "env": env, "stdout": str(out),
                                       "stderr": str(err)}) + "\n")
        pid = _answer(server, "pid")
        killed = threading.Event()
        timer = threading.Timer(timeout, lambda: (killed.set(), os.kill(pid, signal.SIGKILL)))
        timer.start()
        try:
            returncode = _answer(server, "returncode")
        finally:
            timer.cancel()
        if killed.is_set():
            _ran_over(args, timeout, err.read_text(errors="replace"))
        return subprocess.CompletedProcess([sys.executable, "-m", "infra_bench", *args], returncode,
                                           out.read_text(errors="replace"), err.read_text(errors="replace"))


def write_spec(folder: Path, filename: str = "spec.yaml", **fields) -> Path:
    path = folder / filename
    path.write_text(yaml.safe_dump({**TINY, **fields}))
    return path


def assert_one_line_error(p: subprocess.CompletedProcess, fragment: str, code: int = 2) -> None:
    """The CLI refused with exactly one stderr line containing `fragment`, the exit code, no traceback."""
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in p.stderr


def refused_before_running(spec: dict, fragment: str, out: Path, trust_remote_code: bool = False) -> str:
    """The run engine's planning (what `run` does before it makes a run folder), in this process, refuses the
    spec with `fragment` and makes no run folder under `out`; returns the message. Cheaper than a CLI process
    per bad input: check the command line's one-line error and exit 2 once beside it."""
    import re

    from infra_bench.engine import RunOptions, plan
    from infra_bench.errors import UserError
    from infra_bench.spec.loader import spec_from_dict

    with pytest.raises(UserError, match=re.escape(fragment)) as e:
        plan([spec_from_dict(spec)], RunOptions(out=out, trust_remote_code=trust_remote_code))
    assert not out.exists()
    return str(e.value)


def write_cpu_profile(folder: Path, bandwidth_tbs: float = 0.025, fp32_tflops: float = 0.3) -> Path:
    """A user profile folder (`folder/mine`) whose `this_cpu` matches this machine's CPU."""
    from infra_bench.system import cpu_model

    mine = folder / "mine"
    mine.mkdir(exist_ok=True)
    (mine / "cpus.yaml").write_text(yaml.safe_dump({"this_cpu": {
        "kind": "cpu", "vendor": "Local", "model": cpu_model(),
        "match": [cpu_model().replace("(", r"\(").replace(")", r"\)")],
        "peak_tflops": {"fp32": fp32_tflops, "bf16": 4 * fp32_tflops}, "memory_bandwidth_tbs": bandwidth_tbs,
        "memory_gb": 24,
        "sources": ["infra-bench probe on this machine"]}}))
    return mine


def hint(extra: str) -> str:
    """The install hint a CLI process started outside the checkout prints for a missing extra."""
    from infra_bench.errors import install_hint

    here = os.getcwd()
    try:
        os.chdir(Path(__file__).resolve().parent)  # not the project folder, as for the tests' subprocesses
        return install_hint(extra)
    finally:
        os.chdir(here)


def read_records(out: Path) -> list[dict]:
    files = list(out.glob("*/records.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


@pytest.fixture(autouse=True, scope="session")
def _subprocess_environment(tmp_path_factory):
    """What CLI subprocesses inherit: ONNX exports in a per-session folder, not ~/.cache; and one
    OpenMP thread each, since two xdist workers already fill two cores (torch's default of one thread
    per core made 4 spinning threads on 2 cores; the suite ran 543 s instead of 560-590 s)."""
    os.environ["INFRA_BENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# The files that take longest (about 2.5, 1.6, 1.4 and 1.3 minutes on a 2-core VM, 2026-12-03): collected
# first, so that xdist's per-file scheduling starts them first and the two workers finish together instead
# of one of them running the Ray tests alone at the end. pyproject's --no-loadscope-reorder keeps this
# order: by default xdist hands out files by their number of tests, most first, which put the five Ray
# tests near the end and made this list do nothing (the suite took 597 s that way, 591 s this way, one
# run each on the same VM: the gain is within the noise, the order is what the list promised).
FIRST = ("test_scale.py", "test_benchmarks.py", "test_faults.py", "test_onnxruntime.py", "test_calibration.py",
         "test_dit.py", "test_report.py")


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))
