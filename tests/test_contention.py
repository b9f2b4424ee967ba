"""Other processes' share of the CPU while a cell runs: measured from /proc/stat less this process, and said
in the record, the progress line and the table when it is high."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra_bench.measure.contention import BUSY_FRACTION, Contention, note

from .conftest import read_records, run_cli, write_spec

linux = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc/stat")

BURN = "import time\nt = time.time() + 3\nwhile time.time() < t: pass\n"


@linux
def test_processes_burning_every_cpu_read_as_others():
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)  # they are running
        load = Contention().start()
        time.sleep(1.0)
        share = load.others()
    finally:  # measured: stop them, rather than let them take both cores from the other tests for 1.7 s more
        for b in burners:
            b.kill()
            b.wait()
    assert share is not None and share > 0.5  # every CPU was taken by processes other than this one


def test_the_note_names_the_share_only_above_the_threshold():
    assert note(None) is None and note(BUSY_FRACTION) is None
    assert note(0.51).startswith("machine busy: other processes used 51% of the host's CPU time")


@linux
def test_a_cell_run_while_others_take_the_cpus_says_the_machine_was_busy(tmp: Path):
    spec = write_spec(tmp, min_iters=2, warmup=0)
    burners = [subprocess.Popen([sys.executable, "-c", BURN.replace("3", "30")]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        p = run_cli("run", str(spec), "--out", "busy", "--device", "cpu", cwd=tmp)
    finally:
        for b in burners:
            b.kill()
    assert p.returncode == 0, p.stderr
    (r,) = read_records(tmp / "busy")
    assert r["metrics"]["host_others_cpu_frac"] > BUSY_FRACTION and r["notes"][-1].startswith("machine busy")
    assert "ok, busy" in p.stdout and "machine busy: others used" in p.stderr
