import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra_bench import load_results
from infra_bench.errors import UserError
from infra_bench.results import Record, RunStore, list_runs
from infra_bench.results.schema import Manifest

BASE = dict(run_id="r", cell_id="c", kind="llm", workload="w", started_at="t0", ended_at="t1", duration_s=1.0,
            spec={"name": "w", "dtype": "fp32"}, model={"arch": "llama-tiny", "weights": "random"},
            cell={"batch_size": 1, "prompt_len": 8, "output_len": 4}, backend={"name": "torch"},
            device={"name": "cpu"}, settings={}, environment={})


def test_record_status_rules():
    Record(status="failed", error="MemoryError: x", **BASE)
    with pytest.raises(ValidationError):
        Record(status="ok", **BASE)  # an ok record needs metrics
    with pytest.raises(ValidationError):
        Record(status="failed", **BASE)  # a failed one needs its error
    with pytest.raises(ValidationError):
        Record(status="ok", metrics={}, surprise=1, **BASE)


def _manifest(run_id: str, **fields) -> Manifest:
    return Manifest(**{"run_id": run_id, "created_at": "2026-12-02T00:00:00Z", "infra_bench": "test", "specs": [],
                       **fields})


def test_append_read_and_skip_a_torn_line(tmp_path: Path, capsys):
    store = RunStore.create(tmp_path, "run1", _manifest("run1", specs=[{"name": "w"}], cells_planned=2))
    rec = Record(status="ok", metrics={"ttft_s": {"p50": 0.1, "mean_ci95": [0.09, 0.11]},
                                       "output_tokens_per_s": 10.0}, **BASE).model_dump()
    store.append(rec)
    with open(store.folder / "records.jsonl", "a") as f:
        f.write('{"run_id": "r", "cell_')  # a write cut short by a kill
    store.append({**rec, "cell_id": "c2"})
    records = store.records()
    assert [r["cell_id"] for r in records] == ["c", "c2"]
    assert "records.jsonl:2: unreadable record line skipped" in capsys.readouterr().err
    assert store.finished_cells() == {"c", "c2"}
    (run,) = list_runs(tmp_path)
    assert run["ok"] == 2 and run["cells_planned"] == 2

    df = load_results("run1", root=tmp_path)
    assert list(df["cell_id"]) == ["c", "c2"]
    assert df.loc[0, "ttft_s.p50"] == 0.1 and df.loc[0, "ttft_s.mean_ci95_low"] == 0.09
    assert df.loc[0, "output_tokens_per_s"] == 10.0 and df.loc[0, "batch_size"] == 1
    assert len(load_results(store.folder)) == 2 and len(load_results(store.folder / "records.jsonl")) == 2


def test_store_errors_are_user_errors(tmp_path: Path):
    RunStore.create(tmp_path, "dup", _manifest("dup"))
    with pytest.raises(UserError, match="already exists"):
        RunStore.create(tmp_path, "dup", _manifest("dup", cells_planned=9))
    with pytest.raises(UserError, match="no run 'nope'"):
        RunStore.open(tmp_path, "nope")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write results under"):
        RunStore.create(blocker, "x", _manifest("x"))
    assert RunStore.open(tmp_path, "dup").manifest() == _manifest("dup")
    (tmp_path / "dup" / "run.json").write_text(json.dumps({"run_id": "dup"}))
    with pytest.raises(UserError, match=r"run.json is not a run manifest \(created_at: Field required\)"):
        RunStore.open(tmp_path, "dup").manifest()


def test_records_without_their_manifest_are_named_as_such(tmp_path: Path, capsys):
    """A run folder that lost run.json read 'no run X' (by id), 'holds no records' (by folder) or 'run.json is
    unreadable; the run cannot be resumed' (by records.jsonl), when its records are there and the manifest is the
    one thing to put back."""
    from infra_bench.report.loaders import load_inputs

    store = RunStore.create(tmp_path, "lost", _manifest("lost"))
    store.append(Record(status="ok", metrics={"output_tokens_per_s": 1.0}, **BASE).model_dump())
    (store.folder / "run.json").unlink()
    for given in ("lost", str(store.folder)):
        with pytest.raises(UserError, match=r"lost has records.jsonl but no run.json .*copy run.json back"):
            RunStore.open(tmp_path, given)
    with pytest.raises(UserError, match=r"lost has records.jsonl but no run.json"):
        load_inputs([store.folder / "records.jsonl"], tmp_path)
    # `results list` left the folder out without a word
    capsys.readouterr()
    assert list_runs(tmp_path, warn=True) == []
    assert capsys.readouterr().err == f"warning: not listed: {store.folder} has records.jsonl but no run.json\n"


def test_a_line_of_json_that_is_not_a_record_is_skipped_with_a_warning(tmp_path: Path, capsys):
    """A hand-edited or foreign line (`{"foo": 1}`, `[1, 2]`) stopped `results list`, `results show` and `report`
    with an internal error (KeyError, TypeError); it is skipped as a torn line is, with a warning naming it."""
    from infra_bench.report.loaders import load_inputs

    store = RunStore.create(tmp_path, "r", _manifest("r", cells_planned=1))
    store.append(Record(status="ok", metrics={"output_tokens_per_s": 1.0}, **BASE).model_dump())
    with open(store.folder / "records.jsonl", "a") as f:
        f.write('{"foo": 1}\n[1, 2]\n')
    assert [r["cell_id"] for r in store.records()] == [BASE["cell_id"]]
    path = store.folder / "records.jsonl"
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {path}:2: not an infra-bench record (run_id: Field required); line skipped",
        f"warning: {path}:3: not an infra-bench record (a JSON list); line skipped"]
    assert [(r["ok"], r["failed"]) for r in list_runs(tmp_path)] == [(1, 0)]
    assert len(load_inputs(["r"], tmp_path)[0][0].records) == 1 and len(load_results(store.folder)) == 1
    assert len(store.records(warn=False, checked=False)) == 3  # calibrate's read, which refuses them by number
