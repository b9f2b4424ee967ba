"""Fault injection on the results store: SIGKILL at random points of a sweep (resumed, nothing lost
or doubled), a full disk, a folder that cannot be written, corrupt lines, two writers at once.

The SIGKILL campaign runs INFRA_BENCH_FAULT_TRIALS trials (2 here; 20 for docs/reliability.md)."""
from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import assert_one_line_error, run_cli, write_spec

TRIALS = int(os.environ.get("INFRA_BENCH_FAULT_TRIALS", "2"))
FOUR_CELLS = {"batch_size": [1, 2], "prompt_len": [16, 24], "min_time_s": 0.4}
CELLS = 4
DONE = re.compile(r"^\[\d+/\d+\] (\S+) \.\.\. ok", re.M)


def _lines(path: Path) -> tuple[list[dict], int]:
    """The records that parse, and how many lines do not (a write torn by the kill)."""
    good, bad = [], 0
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                good.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
    return good, bad


def _start(spec: Path, out: Path, log: Path) -> tuple[subprocess.Popen, float]:
    """The run, once its folder exists; with the time its cells started."""
    proc = subprocess.Popen([sys.executable, "-m", "infra_bench", "run", str(spec), "--out", str(out)],
                            cwd=spec.parent, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 120
    while "cell(s), records in" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc, time.monotonic()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, float]:
    """An undisturbed run of the 4 cells: its results folder, and how long its cells took. Made once; the
    tests that only need a finished run of this spec read it too (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("reference")
    proc, t0 = _start(write_spec(folder, **FOUR_CELLS), folder / "res", folder / "log")
    assert proc.wait(timeout=300) == 0
    return folder / "res", time.monotonic() - t0


def test_sigkill_at_random_points_loses_no_finished_cell(tmp: Path, reference: tuple[Path, float]):
    spec = write_spec(tmp, **FOUR_CELLS)
    rng = random.Random(7)
    figures = []
    span = reference[1]
    for trial in range(TRIALS):
        out, log = tmp / f"res{trial}", tmp / f"log{trial}"
        proc, _ = _start(spec, out, log)
        time.sleep(rng.uniform(0.0, span))  # anywhere from the model build to the last cell
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        announced = DONE.findall(log.read_text())  # cells reported finished before the kill
        files = list(out.glob("*/records.jsonl"))
        kept, torn = _lines(files[0]) if files else ([], 0)
        assert set(announced) <= {r["cell_id"] for r in kept}, (announced, kept)
        assert torn <= 1
        if files:
            run_id = files[0].parent.name
            p = run_cli("run", "--resume", run_id, "--out", str(out), cwd=tmp)
            assert p.returncode == 0, p.stderr
            after, _ = _lines(files[0])
            assert sorted(r["cell_id"] for r in after) == sorted({r["cell_id"] for r in after})
            assert len(after) == CELLS and after[:len(kept)] == kept
        figures.append((len(announced), len(kept)))
    print(f"SIGKILL trials {TRIALS} over {span:.1f} s of cells: announced/kept per trial {figures}; lost 0")


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_is_a_one_line_error_and_leaves_no_partial_record(tmp: Path, reference: tuple[Path, float]):
    spec = write_spec(tmp, **FOUR_CELLS)
    first = len(next(reference[0].glob("*/records.jsonl")).read_text().splitlines()[0]) + 1  # a record of this spec
    p = subprocess.run([sys.executable, "-m", "infra_bench", "run", str(spec), "--out", "res"], cwd=tmp,
                       capture_output=True, text=True, timeout=300,
                       preexec_fn=_limit_file_size(first + first // 2))  # room for one record, whatever notes
    # (a busy machine's, a longer path) make this run's longer than the reference's; not for a second
    last = p.stderr.strip().splitlines()[-1]  # after the progress of the cell that was written
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert last.startswith("error: cannot append to") and last.endswith("File too large; free space or use --out DIR")
    (records,) = list((tmp / "res").glob("*/records.jsonl"))
    kept, torn = _lines(records)
    assert len(kept) == 1 and torn == 0 and records.read_text().endswith("\n")


def test_a_results_folder_that_cannot_be_written_is_a_one_line_error(tmp: Path):
    spec = write_spec(tmp)
    (tmp / "a-file").write_text("x")
    assert_one_line_error(run_cli("run", str(spec), "--out", "a-file", cwd=tmp), "Directory 'a-file' is a file")
    assert_one_line_error(run_cli("run", str(spec), "--out", "/proc/infra-bench", cwd=tmp),
                          "cannot write results under /proc/infra-bench")


def test_corrupt_lines_are_skipped_with_a_warning_naming_the_line(tmp: Path, reference: tuple[Path, float]):
    shutil.copytree(reference[0], tmp / "res")
    (path,) = list((tmp / "res").glob("*/records.jsonl"))
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", "\x00\x01garbage", lines[1]]) + "\n")
    p = run_cli("results", "show", path.parent.name, "--out", "res", cwd=tmp)
    assert p.returncode == 0
    assert "records.jsonl:2: unreadable record line skipped" in p.stderr
    assert "records.jsonl:3: unreadable record line skipped" in p.stderr
    assert p.stdout.count(" ok") == 2


def test_two_runs_into_one_folder_and_two_resumes_of_one_run(tmp: Path):
    spec = write_spec(tmp, batch_size=[1, 2, 3], min_time_s=0.5)
    cmd = [sys.executable, "-m", "infra_bench", "run", str(spec), "--out", "res"]
    a, b = (subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2))
    assert a.wait(timeout=300) == 0 and b.wait(timeout=300) == 0
    files = list((tmp / "res").glob("*/records.jsonl"))
    assert len(files) == 2
    for f in files:
        kept, torn = _lines(f)
        assert len(kept) == 3 and torn == 0 and len({r["run_id"] for r in kept}) == 1

    run_id = files[0].parent.name
    files[0].write_text("")  # as if killed before any cell finished
    first = subprocess.Popen([sys.executable, "-m", "infra_bench", "run", "--resume", run_id, "--out", "res"],
                             cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    second = None
    while time.monotonic() < deadline:  # the first resume holds the lock once it has started measuring
        if "cell(s), records in" in (first.stderr.readline() or ""):
            second = run_cli("run", "--resume", run_id, "--out", "res", cwd=tmp)
            break
    assert second is not None
    assert_one_line_error(second, f"run {run_id} is being written by another process")
    first.communicate(timeout=300)
    assert first.returncode == 0
    kept, torn = _lines(files[0])
    assert sorted(r["cell_id"] for r in kept) == sorted({r["cell_id"] for r in kept}) and len(kept) == 3
