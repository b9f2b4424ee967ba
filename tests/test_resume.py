"""Nothing measured is lost: an interrupted run keeps its finished cells; --resume finishes the rest
(SIGKILL at random points: tests/test_faults.py)."""
import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra_bench.results import Record
from .conftest import assert_one_line_error, read_records, run_cli, write_spec


def test_out_of_memory_cell_becomes_a_failed_record_and_the_sweep_goes_on(tmp: Path):
    """A real allocation failure: the child's address space is capped, and one cell asks for more
    (at once: its first activation alone is 16 GiB, so the test does not wait on a slow climb)."""
    spec = write_spec(tmp, batch_size=[32768, 1], prompt_len=[512], output_len=[4], warmup=0, min_iters=1)

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    p = subprocess.run([sys.executable, "-m", "infra_bench", "run", str(spec), "--out", "res"], cwd=tmp,
                       capture_output=True, text=True, timeout=300, preexec_fn=cap_memory)
    assert p.returncode == 1, p.stderr  # some cells failed
    assert "Traceback" not in p.stderr
    failed, ok = read_records(tmp / "res")
    assert failed["status"] == "failed" and failed["cell"]["batch_size"] == 32768
    assert "allocate" in failed["error"] and failed["metrics"] is None
    assert ok["status"] == "ok" and ok["cell"]["batch_size"] == 1


def test_sigterm_is_handled_as_ctrl_c(tmp: Path):
    """A scheduler's stop or `kill` (SIGTERM) ended a run with 143 and no word of how to finish it."""
    spec = write_spec(tmp, batch_size=[1, 2], min_time_s=0.8)
    proc = subprocess.Popen([sys.executable, "-m", "infra_bench", "run", str(spec), "--out", "res"],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("[1/2]"):
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(60) == 130, rest
    assert rest.strip().splitlines()[-1].startswith("error: interrupted: run ") and "--resume" in rest


def test_ctrl_c_names_the_run_and_the_command_that_finishes_it(tmp: Path):
    """SIGINT mid-run: exit 130 and one line naming the run id, what it keeps and the exact --resume
    command; that command, run as printed, finishes the run."""
    spec = write_spec(tmp, batch_size=[1, 2], prompt_len=[16, 24], min_time_s=0.8)  # 4 cells, ~1 s each
    proc = subprocess.Popen([sys.executable, "-m", "infra_bench", "run", str(spec), "--out", "res"],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # interrupt once the first cell has finished
        if line.startswith("[1/4]"):
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(60) == 130, rest
    last = rest.strip().splitlines()[-1]
    assert "Traceback" not in rest and last.startswith("error: interrupted: run "), rest
    (files,) = list((tmp / "res").glob("*/records.jsonl"))
    run_id = files.parent.name
    command = f"infra-bench run --resume {run_id} --out res"
    assert run_id in last and f"`{command}`" in last, last

    before = read_records(tmp / "res")
    p = run_cli(*command.split()[1:], cwd=tmp)
    assert p.returncode == 0, p.stderr
    after = read_records(tmp / "res")
    assert len(after) == 4 and len({r["cell_id"] for r in after}) == 4
    assert after[:len(before)] == before  # finished cells untouched
    for r in after:
        Record(**r)
        assert r["status"] == "ok" and r["run_id"] == run_id
    again = run_cli("run", "--resume", run_id, "--out", "res", cwd=tmp)  # nothing left to do
    assert again.returncode == 0 and read_records(tmp / "res") == after
    mixed = run_cli("run", str(spec), "--resume", run_id, "--out", "res", cwd=tmp)
    assert mixed.returncode == 2 and "give only --resume RUN_ID" in mixed.stderr


def test_a_ctrl_c_that_library_code_swallows_still_stops_the_run_between_cells(tmp: Path):
    """A real SIGINT inside `resumable` whose KeyboardInterrupt is caught and dropped (as some library
    code mid-cell can): the check between cells still ends the run as interrupted, naming it."""
    import os

    import pytest

    from infra_bench import engine
    from infra_bench.errors import Interrupted
    from infra_bench.results.schema import Manifest
    from infra_bench.results.store import RunStore

    store = RunStore.create(tmp, "r1", Manifest(run_id="r1", created_at="2026-12-02T00:00:00Z", infra_bench="test",
                                                specs=[]))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="interrupted: run r1 keeps its 0 finished cell"):
        with engine.resumable(store, "infra-bench run --resume r1"):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)  # the handler runs here, inside the try
            except KeyboardInterrupt:
                pass
            engine.stop_if_interrupted()
    assert signal.getsignal(signal.SIGINT) is before
    engine.stop_if_interrupted()  # the press does not outlive its run


def test_run_resume_of_a_sweep_points_to_sweep_resume(tmp: Path):
    """`run --resume` took a sweep as a run: a Ray sweep's cells keep device `auto` in their ids, so every cell was
    measured again here under other names, off the nodes its matrix placed them on."""
    write_spec(tmp, min_iters=1, min_time_s=0, warmup=0)
    (tmp / "matrix.yaml").write_text("specs: [spec.yaml]\n")
    p = run_cli("sweep", "matrix.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    run_id = p.stderr.split("sweep ", 1)[1].split(":", 1)[0]
    assert_one_line_error(run_cli("run", "--resume", run_id, "--out", "res", cwd=tmp),
                          f"is a sweep; finish it with `infra-bench sweep --resume {run_id} --out res`")
    assert len(read_records(tmp / "res")) == 1


def test_resuming_a_finished_run_says_so_without_planning_it_again(tmp: Path):
    """A resume of a run whose cells all have records planned every spec again (backends imported, models resolved:
    seconds) to measure nothing; it now tells that from the records against the run's specs, so it no longer needs
    the model at all (here: its folder removed since), while an unfinished run's resume still plans (and refuses)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    AutoModelForCausalLM.from_config(AutoConfig.for_model("gpt2", n_embd=32, n_layer=1, n_head=2, vocab_size=64,
                                                          n_positions=64)).save_pretrained(tmp / "tiny")
    p = run_cli("run", "--model", "tiny", "--set", "prompt_len=[4,8]", "--set", "output_len=2", "--warmup", "0",
                "--min-iters", "1", "--min-time", "0", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    run_id = p.stderr.split("run ", 1)[1].split(":", 1)[0]
    before = read_records(tmp / "res")
    (tmp / "tiny" / "config.json").unlink()
    again = run_cli("run", "--resume", run_id, "--out", "res", cwd=tmp)
    assert again.returncode == 0, again.stderr
    assert f"run {run_id}: every cell has a record; nothing left to run" in again.stderr
    assert "TTFT p50 ms" in again.stdout and read_records(tmp / "res") == before
    (records,) = (tmp / "res").glob("*/records.jsonl")
    records.write_text(records.read_text().splitlines(keepends=True)[0])  # one cell left: planned, so refused
    left = run_cli("run", "--resume", run_id, "--out", "res", cwd=tmp)
    assert left.returncode == 2 and "nothing left" not in left.stderr and "config.json" in left.stderr, left.stderr


def test_resume_refuses_a_local_model_that_changed_since_the_run_measured_it(tmp: Path):
    """A folder saved again with other weights (here another shape) between the kill and --resume: the rest of
    the cells measured the new model under the run's spec, the records' weights_hash alone telling them apart."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from infra_bench import engine
    from infra_bench.results.store import RunStore
    from infra_bench.spec import spec_from_dict

    def save(folder: Path, width: int) -> None:
        cfg = AutoConfig.for_model("llama", hidden_size=width, intermediate_size=2 * width, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=1, vocab_size=200)
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    save(tmp / "ckpt", 32)
    shutil.copytree(tmp / "ckpt", tmp / "kept")
    p = run_cli("run", "--model", "ckpt", "--set", "batch_size=[1,2]", "--set", "prompt_len=4", "--set",
                "output_len=2", "--min-iters", "1", "--min-time", "0", "--warmup", "0", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (run,) = (tmp / "res").iterdir()
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    (run / "records.jsonl").write_text(lines[0])  # as if killed after its first cell
    save(tmp / "ckpt", 64)
    assert_one_line_error(run_cli("run", "--resume", run.name, "--out", "res", cwd=tmp),
                          f"spec 'ckpt': {(tmp / 'ckpt').resolve()} changed since the run measured it (weights_hash ")
    assert len(read_records(tmp / "res")) == 1
    for f in (tmp / "kept").iterdir():  # put back as it was: the run can be finished
        shutil.copy(f, tmp / "ckpt" / f.name)
    store = RunStore.open(tmp / "res", run.name)
    specs = [spec_from_dict(s) for s in store.manifest().specs]
    engine.check_same_models(store, engine.plan(specs, engine.RunOptions(out=tmp / "res")))


def _sleeps_in_a_pipe_read(pid: int, since_press: float) -> bool:
    """Whether the process sleeps in a read of a pipe or FIFO (Linux's /proc/PID/wchan); where that cannot be read,
    whether the last press is 5 s old."""
    try:
        return "pipe_read" in Path(f"/proc/{pid}/wchan").read_text() and since_press > 0.5
    except OSError:
        return since_press > 5.0


def test_ctrl_c_before_measuring_says_so_in_one_line_and_makes_no_run(tmp: Path):
    """SIGINT while the run resolves its model (torch imported, nothing measured): click's handling printed
    a blank line and 'error: aborted'. The weights file is a FIFO, so the run waits in planning, on its open and
    then its read, until the test has seen it there and pressed."""
    model = tmp / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    os.mkfifo(model / "model.safetensors")
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "  # as from a
             "sys.argv[0] = 'infra-bench'; runpy.run_module('infra_bench', run_name='__main__')")  # terminal
    # -W: the press can land between the FIFO's open() returning and its `with`, as nowhere but on a FIFO it
    # can in practice, and the file object then dropped warns as unclosed
    proc = subprocess.Popen([sys.executable, "-W", "ignore::ResourceWarning", "-c", start, "run", "--model", str(model), "--kind", "llm",
                             "--device", "cpu", "--out", "res"], cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:  # the FIFO opens for writing once the run has opened it for reading
        try:
            writer = os.open(model / "model.safetensors", os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if not (e.errno == errno.ENXIO and proc.poll() is None and time.monotonic() < deadline):
                proc.kill()  # a run still waiting would keep its stderr open
                raise AssertionError(proc.communicate()[1]) from e
            time.sleep(0.05)
    try:
        proc.send_signal(signal.SIGINT)
        # A press that lands after the run's open() returns and before its read() begins is taken, and acted on
        # once that read returns; on a FIFO nobody writes to, it never does (seen once, in a run of the suite with
        # three workers on 2 cores). The run then sleeps in the read with the press spent, so the test presses
        # again, as a user would, and only while the run sleeps there: a second press during the first one's
        # handling would interrupt that.
        end, last = time.monotonic() + 60, time.monotonic()
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.2)
            if _sleeps_in_a_pipe_read(proc.pid, time.monotonic() - last):
                proc.send_signal(signal.SIGINT)
                last = time.monotonic()
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 130, err
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(writer)
    assert err.strip() == ("error: interrupted before measuring began: no run was made; run the same command "
                           "again"), err
    assert not (tmp / "res").exists()
