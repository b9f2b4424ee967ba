"""Bad input files and option mixes a new user meets: each is one line naming the file or option and
the fix, with exit 2, before any work is done."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra_bench.errors import install_hint

from .conftest import assert_one_line_error, run_cli, write_spec

BINARY = bytes(range(256)) * 4


@pytest.mark.parametrize("args", [
    ("run", "blob.bin"),
    ("plan", "blob.bin"),
    ("plan", "workloads/demand-example.yaml", "--assumptions", "blob.bin"),
    ("sweep", "blob.bin"),
    ("predict", "--model", "qwen3-8b", "--hardware", "nv_h100_sxm", "--calibration", "blob.bin"),
], ids=["spec", "demand", "assumptions", "matrix", "calibration"])
def test_a_binary_file_is_named_in_one_line(tmp: Path, args):
    (tmp / "blob.bin").write_bytes(BINARY)
    (tmp / "workloads").mkdir()
    demand = Path(__file__).resolve().parent.parent / "workloads" / "demand-example.yaml"
    (tmp / "workloads" / "demand-example.yaml").write_text(demand.read_text())
    p = run_cli(*args, cwd=tmp)
    assert_one_line_error(p, "blob.bin: not a text file")


def test_a_binary_profile_file_is_named(tmp: Path):
    (tmp / "mine" / "accelerators").mkdir(parents=True)
    (tmp / "mine" / "accelerators" / "x.yaml").write_bytes(BINARY)
    assert_one_line_error(run_cli("profiles", "list", "--profiles", "mine", cwd=tmp), "x.yaml: not a text file")


def test_a_folder_given_as_a_file(tmp: Path):
    (tmp / "d").mkdir()
    assert_one_line_error(run_cli("plan", "d", cwd=tmp), "d is a folder, not a demand file")


def test_a_profiles_folder_without_profiles_says_what_it_found(tmp: Path):
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("x")
    p = run_cli("profiles", "list", "--profiles", "empty", cwd=tmp)
    assert_one_line_error(p, "empty holds no profiles (found: notes.txt); expected accelerators/*.yaml")


def test_report_on_a_folder_without_records(tmp: Path):
    (tmp / "nothing").mkdir()
    p = run_cli("report", "nothing", "-o", "r.html", cwd=tmp)
    assert_one_line_error(p, "nothing holds no records")


def test_results_show_takes_the_results_folder(tmp: Path):
    spec = write_spec(tmp, min_iters=1, warmup=0)
    assert run_cli("run", str(spec), "--out", "elsewhere", cwd=tmp).returncode == 0
    (run,) = [d.name for d in (tmp / "elsewhere").iterdir()]
    for flag in ("--results", "--out"):
        p = run_cli("results", "show", run, flag, "elsewhere", cwd=tmp)
        assert p.returncode == 0 and "llama-tiny" in p.stdout, p.stderr
    listed = run_cli("results", "list", "--results", "elsewhere", "--json", cwd=tmp)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run]
    assert_one_line_error(run_cli("report", "elsewhere", "-o", "r.html", cwd=tmp),
                          f"it is a results folder; give one of its runs, e.g. elsewhere/{run}")


@pytest.mark.parametrize("args, message", [
    (("--mixed",), "--mixed needs --site"),
    (("--sensitivity",), "--sensitivity needs --site"),
    (("--limit", "nv_h20=4"), "--limit and --budget apply to --mixed"),
])
def test_plan_options_are_checked_before_the_demand_is_read(tmp: Path, args, message):
    """The demand file does not even exist: the option mix is refused first, so no planning time is spent."""
    assert_one_line_error(run_cli("plan", "missing.yaml", *args, cwd=tmp), message)


def test_install_hints_follow_the_installation():
    editable = {"url": "file:///src/infra-bench", "dir_info": {"editable": True}}
    assert install_hint("report", editable) == 'pip install -e "/src/infra-bench[report]"'
    wheel = {"url": "file:///wheels/infra_bench-0.1.0-py3-none-any.whl", "archive_info": {}}
    assert install_hint("report", wheel) == "pip install 'infra-bench[report]'"
    assert install_hint("report", {}) == "pip install 'infra-bench[report]'"


def test_a_missing_extra_names_the_command_for_this_installation(tmp: Path):
    """This checkout is installed editable (README, CI): the hint is `pip install -e`."""
    spec = write_spec(tmp, min_iters=1, warmup=0)
    p = run_cli("run", str(spec), "--report", "r.html", cwd=tmp,
                python_args=("-c", "import sys, runpy; sys.modules['matplotlib'] = None; sys.argv = ['infra-bench', "
                             f"'run', '{spec}', '--report', 'r.html']; runpy.run_module('infra_bench', "
                             "run_name='__main__')"))
    root = Path(__file__).resolve().parent.parent
    assert_one_line_error(p, f'pip install -e "{root}[report]"')
