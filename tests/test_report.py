"""`infra-bench report`: HTML and Markdown reports of a real tiny run, two runs compared, and a real
plan; every section and embedded chart present, no external URL, bad inputs refused in one line,
and the page rendered by headless Chromium to a screenshot that is not blank."""
import base64
import json
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import assert_one_line_error, hint, run_cli, write_spec
from infra_bench.report.build import write_report

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
RUN_SECTIONS = ["Results", "Latency vs throughput", "TTFT and TPOT distributions", "Memory and energy per unit of work",
                "Environment", "Labels, units and sources (runs)"]
PLAN_SECTIONS = ["Plan for 'assistant'", "Ranked candidates", "Cost vs latency (Pareto)",
                 "Groups compared: domestic vs nvidia", "Cluster bill of materials", "Sensitivity of the TCO ranking",
                 "Candidates that cannot serve the demand", "Labels, assumptions and sources (plan)"]


class Page(HTMLParser):
    """Headings, images, tags and text of an HTML document (stdlib parser, as a browser-free check)."""

    def __init__(self, text: str):
        super().__init__()
        self.headings: list[str] = []
        self.images: list[dict] = []
        self.tags: set[str] = set()
        self.links: list[str] = []  # every src and href
        self.text: list[str] = []
        self._heading: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)


def check_page(path: Path, sections: list[str], images: int) -> Page:
    """Every section heading, exactly `images` embedded PNG charts that decode with the size they
    claim, nothing fetched from anywhere (no URL, script, stylesheet link or external source)."""
    html = path.read_text(encoding="utf-8")
    page = Page(html)
    missing = [s for s in sections if s not in page.headings]
    assert not missing, (missing, page.headings)
    assert len(page.images) == images, [i.get("alt") for i in page.images]
    assert html.count("data:image/png;base64,") == images
    for img in page.images:
        png = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000, img["alt"]
        assert struct.unpack(">II", png[16:24]) == (int(img["width"]), int(img["height"]))
    assert "http://" not in html and "https://" not in html
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in page.links)
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}
    return page


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two real tiny llama runs (batch 1 and 2) under one results folder."""
    folder = tmp_path_factory.mktemp("runs")
    spec = write_spec(folder, batch_size=[1, 2])
    ids = []
    for extra in ((), ("--report", str(folder / "run.html"))):  # the second one writes its report too
        p = run_cli("run", str(spec), "--out", str(folder / "results"), *extra, cwd=folder)
        assert p.returncode == 0, p.stderr
        ids.append(p.stderr.split("run ", 1)[1].split(":", 1)[0])
    return folder / "results", ids


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("plan")
    p = run_cli("plan", "workloads/demand-example.yaml", "--site", "cn-east", "--compare", "domestic,nvidia",
                "--sensitivity", "--mixed", "--json", "--report", str(folder / "plan.html"), cwd=REPO)
    assert p.returncode == 0, p.stderr
    path = folder / "plan.json"
    path.write_text(p.stdout)
    return path


def records(results: Path, run_id: str) -> list[dict]:
    return [json.loads(line) for line in (results / run_id / "records.jsonl").read_text().splitlines()]


def test_a_run_report_has_its_sections_charts_numbers_and_labels(runs, tmp):
    results, (run_id, _) = runs
    p = run_cli("report", run_id, "--results", str(results), "-o", str(tmp / "run.html"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"report: {tmp / 'run.html'}")
    page = check_page(tmp / "run.html", RUN_SECTIONS, images=4)
    text = " ".join(page.text)
    for r in records(results, run_id):
        assert f"{r['metrics']['output_tokens_per_s']:.1f}" in text and r["cell_id"] in text
    assert "weights: random" in text and "estimated" in text and "J/token" in text
    assert "Comparison across runs, machines and backends" not in page.headings  # one setup, nothing to compare


def test_two_runs_are_compared_side_by_side(runs, tmp):
    results, ids = runs
    out = tmp / "cmp.html"
    p = run_cli("report", *(str(results / i) for i in ids), "-o", str(out), cwd=tmp)
    assert p.returncode == 0, p.stderr
    page = check_page(out, RUN_SECTIONS + ["Runs", "Comparison across runs, machines and backends"], images=5)
    text = " ".join(page.text)
    assert "[A] torch on cpu" in text and "[B] torch on cpu" in text and "vs first setup" in text
    assert "1.00x" in text


def test_a_plan_report_has_its_sections_charts_and_sources(plan_file, tmp):
    p = run_cli("report", str(plan_file), "-o", str(tmp / "plan.html"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    page = check_page(tmp / "plan.html", PLAN_SECTIONS, images=3)
    text = " ".join(page.text)
    plan = json.loads(plan_file.read_text())
    top = next(c for c in plan["candidates"] if c["feasible"])
    assert top["hardware"] in text and top["cost"]["carbon"]["grid_source"] in text
    assert top["cost"]["capex"]["device_price_source"] in text and "estimated" in text
    assert f"{top['cost']['capex']['total']:,.0f} {top['cost']['currency']}" in text  # the bill of materials
    assert all(r["scenario"] in text for r in plan["sensitivity"])
    assert all(a["service"] in text for a in plan["mixed"]["assignments"])


def test_run_and_plan_write_their_report_with_report(runs, plan_file):
    results, (_, second) = runs
    text = " ".join(check_page(results.parent / "run.html", RUN_SECTIONS, images=4).text)
    assert all(r["cell_id"] in text for r in records(results, second))
    plan = json.loads(plan_file.read_text())
    text = " ".join(check_page(plan_file.parent / "plan.html", PLAN_SECTIONS, images=3).text)
    assert plan["candidates"][0]["hardware"] in text


def test_markdown_report_links_its_chart_files(runs, plan_file, tmp):
    results, (run_id, _) = runs
    p = run_cli("report", run_id, str(plan_file), "--results", str(results), "--md", "-o", str(tmp / "r.md"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    md = (tmp / "r.md").read_text()
    links = [line[line.index("](") + 2:-1] for line in md.splitlines() if line.startswith("![")]
    assert len(links) == 7 and sorted(links) == sorted(f"r_files/{f.name}" for f in (tmp / "r_files").iterdir())
    assert all((tmp / link).read_bytes().startswith(PNG_SIGNATURE) for link in links)
    for title in RUN_SECTIONS + PLAN_SECTIONS:
        assert f"# {title}\n" in md, title
    assert "http://" not in md and "https://" not in md and "> **Note:** weights: random" in md


def test_write_report_takes_a_run_folder_and_a_plan_dict_as_run_and_plan_do(runs, plan_file, tmp):
    """The entry point `run --report` and `plan --report` call, with their own objects."""
    results, (run_id, _) = runs
    out = write_report([results / run_id, json.loads(plan_file.read_text())], tmp / "deep" / "both.html")
    page = check_page(out, RUN_SECTIONS + PLAN_SECTIONS, images=7)
    assert "Plan input: infra-bench plan." in " ".join(page.text)


def test_records_of_an_unknown_kind_and_failed_cells_get_a_table_not_a_crash(runs, tmp):
    """A future kind (an endpoint load test, say) is shown generically, with its percentiles."""
    results, (run_id, _) = runs
    folder = tmp / "mixed"
    shutil.copytree(results / run_id, folder)
    real = records(results, run_id)[0]
    endpoint = {**real, "kind": "endpoint", "cell_id": "m/chat/rate2", "cell": {"load": "rate", "rate": 2.0},
                "metrics": {"request_rate": 2.0, "completed": 40, "ttft_s": real["metrics"]["ttft_s"],
                            "errors": {}}, "samples": []}
    failed = {**real, "cell_id": real["cell_id"] + "-x", "status": "failed", "error": "out of memory", "metrics": None}
    with open(folder / "records.jsonl", "a") as f:
        f.write(json.dumps(endpoint) + "\n" + json.dumps(failed) + "\n")
    page = check_page(write_report([folder], tmp / "mixed.html"), RUN_SECTIONS, images=4)
    text = " ".join(page.text)
    assert "ttft_s p50 / p95 / p99" in text and "request_rate" in text and "m/chat/rate2" in text
    assert "failed: out of memory" in text


@pytest.mark.parametrize("name,content,args,fragment", [
    ("missing-run", None, ("--results", "nowhere"), "no run 'missing-run' under nowhere"),
    ("x.json", '{"a": 1}', (), "x.json: not a plan (no 'demand' key); make one with `infra-bench plan"),
    ("x.json", "[1, 2]", (), "x.json: not a plan (a JSON list"),
    ("spec.yaml", "kind: llm\n", (), "spec.yaml: not a readable JSON plan"),
])
def test_bad_inputs_are_one_line_errors_naming_the_fix(tmp, name, content, args, fragment):
    if content is not None:
        (tmp / name).write_text(content)
    p = run_cli("report", name, *args, "-o", "r.html", cwd=tmp)
    assert_one_line_error(p, fragment)
    assert not (tmp / "r.html").exists()


def test_md_with_an_html_name_is_refused(plan_file, tmp):
    assert_one_line_error(run_cli("report", str(plan_file), "--md", "-o", str(tmp / "r.html"), cwd=tmp), "--md with -o")
    assert_one_line_error(run_cli("report", str(plan_file), "--md", "-o", str(tmp / "r.txt"), cwd=tmp), "--md with -o")


def test_without_matplotlib_the_error_names_the_extra(plan_file, tmp):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from infra_bench.cli import main; main(sys.argv[1:])")
    p = subprocess.run([sys.executable, "-c", code, "report", str(plan_file), "-o", str(tmp / "r.html")], cwd=tmp,
                       capture_output=True, text=True, timeout=120)
    assert_one_line_error(p, hint("report"))


def test_the_cli_does_not_import_matplotlib():
    p = subprocess.run([sys.executable, "-c", "import sys, infra_bench.cli; print('matplotlib' in sys.modules)"],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "False", p.stderr


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium: apt-get install -y chromium")
def test_the_report_renders_in_headless_chromium(runs, plan_file, tmp):
    import matplotlib.image
    import numpy as np

    results, (run_id, _) = runs
    page = write_report([results / run_id, plan_file], tmp / "both.html")
    shot = tmp / "shot.png"
    p = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync",
                        f"--user-data-dir={tmp / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
                        page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and shot.exists(), p.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    ink = (pixels < 0.9).any(axis=2).mean()
    assert len(colours) > 500 and 0.03 < ink < 0.9, (len(colours), ink)


def test_a_plan_report_without_a_site_has_no_energy_or_operational_carbon_rows(tmp):
    """Without --site there is no PUE, power price or grid factor: the report leaves those rows out
    instead of failing (it raised KeyError: 'it_kw_avg')."""
    p = run_cli("plan", "workloads/demand-example.yaml", "--hardware", "nv_h100_sxm", "--report",
                str(tmp / "plan.md"), cwd=REPO)
    assert p.returncode == 0, p.stderr
    text = (tmp / "plan.md").read_text()
    assert "capex: total" in text and "average IT power" not in text and "carbon per year" not in text


def test_a_report_named_neither_html_nor_markdown_is_refused_before_any_work(tmp):
    """`plan --report plan.txt` wrote HTML into a file named .txt without a word; every way to ask for a report
    now refuses such a name in one line, before measuring or planning."""
    for args in (("plan", "workloads/demand-example.yaml", "--report", str(tmp / "plan.txt")),
                 ("run", "--report", str(tmp / "run.pdf"), "--out", str(tmp / "results")),
                 ("report", "-o", str(tmp / "both.txt"), "no-such-run")):
        assert_one_line_error(run_cli(*args, cwd=REPO), "a report is HTML or Markdown; name the file .html or .md")
    assert not (tmp / "results").exists() and not list(tmp.iterdir())


def test_a_report_path_that_cannot_be_written_is_refused_before_measuring(tmp):
    """`run --report` to a place where no file can be made measured every cell first, then exited 2 saying
    'choose another path with -o', a flag run does not have; now refused before the run, naming --report."""
    (tmp / "afile").write_text("")
    p = run_cli("run", "--arch", "llama-tiny", "--report", "/proc/none/r.html", "--out", str(tmp / "results"), cwd=REPO)
    assert_one_line_error(p, "cannot write the report to /proc/none/r.html: No such file or directory; choose "
                             "another path with --report")
    assert not (tmp / "results").exists()
    from infra_bench.errors import UserError
    from infra_bench.report.build import can_write

    with pytest.raises(UserError, match="afile is a file, not a folder; choose another path with -o$"):
        can_write(tmp / "afile" / "r.md", "-o")
    can_write(tmp / "new" / "r.html")  # a folder to make is fine; the probe leaves no file behind
    assert not (tmp / "new" / "r.html").exists()


def test_cells_that_computed_different_work_are_not_compared_as_setups():
    """Two sd-tiny cells of one shape, one at guidance 7.5 (two UNet passes a step) and one at 1.0: the comparison
    set them side by side as two setups of one measurement (1.42x); now each is labelled by what differs."""
    from infra_bench.report.run_report import _same_work

    def rec(run: str, guidance: float, backend: str = "torch") -> dict:
        return {"kind": "diffusion", "workload": "sd", "run_id": run, "model": {"arch": "sd-tiny"},
                "cell": {"batch_size": 1, "resolution": 32, "steps": 2},
                "spec": {"name": "sd", "arch": "sd-tiny", "backend": backend, "device": "cpu", "dtype": "fp32",
                         "guidance_scale": guidance, "batch_size": [1], "resolution": [32], "steps": [2]}}
    groups = _same_work([rec("a", 7.5), rec("b", 1.0), rec("c", 7.5, "onnxruntime")])
    assert sorted(len(v) for v in groups.values()) == [1, 2]
    assert any(label.endswith("(guidance_scale 1.0)") for label in groups)


def test_a_cpu_setup_names_its_threads():
    """A Ray task on a 1-CPU slot runs torch on 1 thread where a local run takes every core: the comparison listed
    the two as one setup at 0.03x."""
    from infra_bench.report.labels import Names

    r = {"run_id": "a", "device": {"name": "cpu"}, "backend": {"name": "torch", "threads": 1},
         "spec": {"dtype": "fp32", "backend": "torch"}}
    assert Names(["a"]).setup(r).endswith("fp32, 1 thread")
    assert Names(["a"]).setup({**r, "backend": {"name": "torch", "threads": 2}}).endswith("fp32, 2 threads")


def test_specs_of_one_run_that_read_as_one_setup_are_named(runs):
    """Two ONNX Runtime specs of one run that differ only in intra_op_threads read 'ort:cpu on cpu, fp32' both: the
    comparison listed two rows of one name (and bars of one colour), or left them out when they were the only two."""
    from infra_bench.report.labels import Names
    from infra_bench.report.run_report import _comparison

    results, (run_id, _) = runs
    one = records(results, run_id)[0]
    ort = {**one, "spec": {**one["spec"], "backend": "onnxruntime", "ep": "cpu"}}
    pair = [{**ort, "workload": "ort-1t", "spec": {**ort["spec"], "options": {"intra_op_threads": 1}}},
            {**ort, "workload": "ort-2t", "spec": {**ort["spec"], "options": {"intra_op_threads": 2}}}]
    section = _comparison(pair, Names([run_id]), several=False)
    assert section is not None
    setups = [row[1] for row in section.blocks[0].rows]
    assert setups[0].endswith("[ort-1t]") and setups[1].endswith("[ort-2t]"), setups


def test_the_comparison_says_which_cells_ran_on_a_busy_machine(runs):
    """A cell measured while other processes took most of the CPU read 'ok, busy' in the results table, but its row
    in the comparison (the ratio a reader takes away: '21.34x') did not say so."""
    from infra_bench.measure.contention import note
    from infra_bench.report.labels import Names
    from infra_bench.report.run_report import _comparison

    results, ids = runs
    idle, busy = ({**r, "notes": [n for n in r["notes"] if not n.startswith("machine busy")]}  # as on an idle host
                  for r in (records(results, i)[0] for i in ids))
    busy["notes"].append(note(0.75))
    rows = _comparison([idle, busy], Names(ids), several=True).blocks[0].rows
    assert [row[-1] for row in rows] == ["ok", "ok, busy"]


def test_a_setup_hundreds_of_times_slower_does_not_read_as_zero(runs):
    """bert-tiny-embed on torch against ONNX Runtime (20.9 against 13,830 sequences/s) read '0.00x'."""
    from infra_bench.report.labels import Names
    from infra_bench.report.run_report import _comparison

    results, ids = runs
    fast, slow = (records(results, i)[0] for i in ids)
    slow = {**slow, "metrics": {**slow["metrics"], "output_tokens_per_s": fast["metrics"]["output_tokens_per_s"] / 660}}
    rows = _comparison([fast, slow], Names(ids), several=True).blocks[0].rows
    assert [row[3] for row in rows] == ["1.00x", "0.0015x"]


@pytest.mark.parametrize("fields, fragment", [
    ({"kind": "probe"}, "it was a probe stopped before its first test ended; run the probe again"),
    ({"matrix": {"executor": "ray"}}, "finish it with `infra-bench sweep --resume R1 --ray --out "),
    ({}, "finish it with `infra-bench run --resume R1 --out "),
])
def test_a_run_without_records_is_refused_with_the_command_that_finishes_it(tmp, fields, fragment):
    """A probe or a sweep stopped before its first record was to be finished with `run --resume`, which refuses both
    (and the command left out the results folder the run is in)."""
    from infra_bench.errors import UserError
    from infra_bench.report.loaders import load_inputs
    from infra_bench.results.schema import Manifest
    from infra_bench.results.store import RunStore

    RunStore.create(tmp, "R1", Manifest(run_id="R1", created_at="2026-12-05T10:00:00", infra_bench="0", specs=[],
                                        **fields))
    with pytest.raises(UserError, match="run R1 has no records yet; ") as err:
        load_inputs(["R1"], tmp)
    assert fragment in str(err.value)


def test_a_plan_report_marks_and_explains_approximated_sizes_as_the_terminal_does():
    """The compared groups and the sensitivity ranking marked approximated sizes with ~ in the terminal but not in
    the report, whose legend said "within about 25%" and its chart "an upper bound", where the terminal says the
    approximation reads 0.76-0.97 of the simulation (conservative)."""
    from infra_bench.planner import compare, selection, sizing
    from infra_bench.planner.cost import Assumptions
    from infra_bench.planner.demand import load_demand
    from infra_bench.planner.profiles import load_hardware, load_sites
    from infra_bench.report.loaders import plan_from_dict
    from infra_bench.report.plan import APPROXIMATED, compare_text, sensitivity_text
    from infra_bench.report.plan_report import plan_sections

    hw, site = load_hardware(), load_sites()["eu-average"]
    d = load_demand(REPO / "workloads" / "demand-example.yaml")
    d = d.model_copy(update={"services": d.services[:1]})  # the chat alone
    p = sizing.plan(d, hw, ["nv_l40s", "hw_910b2"], site, confirm_top=0, rank_by="tco")  # nothing simulated
    extra = {"compare": compare.by_group(p, selection.catalog(hw, []), ["nvidia", "ascend"]),
             "sensitivity": compare.sensitivity(p, hw, d.services, site, Assumptions())}
    assert [r.get("approximated") for r in extra["compare"]] == [True, True]
    sections = plan_sections(plan_from_dict({**p.to_dict(), **extra}, "t"))
    tables = {s.title: b for s in sections for b in s.blocks if hasattr(b, "rows")}
    groups, scenarios = tables["Groups compared: nvidia vs ascend"], tables["Sensitivity of the TCO ranking"]
    terminal = compare_text(extra["compare"])
    for row in groups.rows:  # the same devices cell as the terminal's, ~ included
        assert row[3].startswith("~") and f" {row[3]} " in terminal
    assert all(f"1. ~{r['ranking'][0]}" in row[1] for r, row in zip(extra["sensitivity"], scenarios.rows))
    assert "1. ~" in sensitivity_text(extra["sensitivity"], "EUR")
    captions = " ".join(getattr(b, "caption", "") for s in sections for b in s.blocks)
    assert APPROXIMATED in tables["Ranked candidates"].caption and APPROXIMATED in groups.caption
    assert "upper bound" not in captions.replace("image and video capacities are upper bounds", "")
    assert "within about 25%" not in captions


def test_a_setup_whose_cell_failed_stays_in_the_comparison_as_failed(runs, tmp):
    """Run B's batch-2 cell failed: the comparison dropped that shape (one setup left), so the page compared
    batch 1 alone and never said the other setup could not run batch 2. And the page kept 60 characters of the
    error, which cut torch's out-of-memory error before it said so: the whole error is under the results."""
    results, (a, b) = runs
    folder = tmp / b
    shutil.copytree(results / b, folder)
    recs = records(results, b)
    oom = ("RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
           "you tried to allocate 17179869184 bytes. Error code 12 (Cannot allocate memory)")
    recs[1] = {**recs[1], "status": "failed", "error": oom, "metrics": None, "samples": None}
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    md = write_report([results / a, folder], tmp / "cmp.md").read_text()
    rows = [line for line in md.split("### Comparison across")[1].split("###")[0].splitlines()
            if line.startswith(f"| {recs[1]['workload']}")]
    assert len(rows) == 4, rows
    assert rows[2].split(" | ")[3] == "1.00x" and rows[3].endswith(f"| - | - | - | - | - | - | failed: {oom[:60]} |")
    assert f"| [B] {recs[1]['cell_id']} | {oom} |" in md.split("### Results")[1].split("###")[0]


def test_a_load_test_report_shows_slo_attainment_saturation_and_errors(tmp):
    """A load point's SLO entries, `slo_met`, `saturated`, `stopped_early` and its errors were left out of the
    report's table (lists, booleans and a dict), so a point that missed its SLO with half its requests failed
    read as goodput and percentiles alone; the terminal table said 'missed' and '4 x HTTP 503'."""
    pytest.importorskip("aiohttp")
    from tests.standins import serving
    from tests.test_endpoints import _fault_app

    with serving(_fault_app()) as url:
        p = run_cli("loadtest", "--endpoint", f"{url}/flaky/v1", "--model", "m", "--num-requests", "8", "--warmup",
                    "0", "--output-len", "2", "--slo", "ttft_p50=5,e2e_p90=10", "--max-failure-rate", "0.5",
                    "--out", str(tmp / "r"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    md = write_report([next((tmp / "r").iterdir())], tmp / "lt.md").read_text()
    header, _, row = [line for line in md.split("### Results")[1].splitlines() if line.startswith("|")][:3]
    shown = dict(zip(header.split(" | "), row.split(" | ")))
    assert shown["slo"] == "ttft_p50 a failed request (limit 5 s) missed; e2e_p90 a failed request (limit 10 s) missed"
    assert (shown["slo_met"], shown["saturated"], shown["stopped_early"]) == ("no", "no", "no")
    assert shown["errors"] == "4 x HTTP 503: overloaded" and shown["good_requests"] == "4"


def test_a_diffusion_request_is_split_into_its_own_phases():
    """The phase bars took the median step times the steps run: on a busy machine whose slow steps came in runs
    within some requests, that read 2.5 s of a 10.5 s request. Each phase is now the median over requests, a
    request's steps summed, so the split adds up to about the request."""
    from infra_bench.report.run_charts import phase_times

    fast, slow = 0.01, 1.0
    steps = [[fast] * 4, [fast, fast, slow, slow], [fast, fast, slow, slow]]
    r = {"samples": [{"text_encode_s": 0.002, "step_s": s, "vae_decode_s": 0.05, "image_s": 0.052 + sum(s)}
                     for s in steps]}
    split = phase_times(r)
    assert split == {"text encode": 0.002, "denoising steps": 2 * fast + 2 * slow, "VAE decode": 0.05}
    assert sum(split.values()) == pytest.approx(sorted(s["image_s"] for s in r["samples"])[1])


def test_a_slow_measurement_is_not_printed_as_zero(runs):
    """Fixed decimals printed a slow cell's 0.04 output tokens/s as '0.0' and a load point's goodput of 0.004 req/s
    as '0.00' (no goodput at all); where a column's format rounds a figure that is not zero to zero, it takes two
    significant digits."""
    from infra_bench.report.endpoint_table import format_points
    from infra_bench.report.table import format_table

    results, (run_id, _) = runs
    r = records(results, run_id)[0]
    slow = {**r, "metrics": {**r["metrics"], "output_tokens_per_s": 0.04}}
    header, _, row = format_table([slow]).splitlines()[:3]
    assert row[header.index("out tok/s"):].split()[0] == "0.04"
    point = {"spec": {"api": "completions"}, "cell": {"load": "rate", "rate": 0.5, "concurrency": None},
             "metrics": {"sent": 500, "completed": 500, "failed": 0, "cancelled": 0, "requests_per_s": 0.4,
                         "output_tokens_per_s": 51.2, "ttft_s": r["metrics"]["ttft_s"], "goodput": 0.004,
                         "slo_met": False, "saturated": False, "errors": {}}}
    header, _, row = format_points([point]).splitlines()[:3]
    assert row.split()[-3:] == ["0.004", "missed", "-"]


def test_a_run_with_cells_missing_says_so_at_the_top(runs, tmp):
    """A run killed mid-write (its last line torn) read 'ok 1, planned 2' in a table cell and nothing else: the page
    now says, first, how many planned cells have no record and how to finish the run."""
    results, (run_id, _) = runs
    folder = tmp / "res" / run_id
    shutil.copytree(results / run_id, folder)
    text = (folder / "records.jsonl").read_text()
    (folder / "records.jsonl").write_text(text[:-len(text.splitlines()[-1]) // 2])  # half the last line
    md = write_report([run_id], tmp / "part.md", results=tmp / "res").read_text()
    assert md.split("> **Note:** ")[1].startswith(
        f"run {run_id}: 1 of 2 planned cells have no record (it stopped before them, or an unreadable line was "
        f"skipped); finish it with `infra-bench run --resume {run_id} --out {tmp / 'res'}`")


def test_a_load_test_report_shows_the_servers_own_metrics(tmp):
    """A point's `metrics.server` (the engine's /metrics over the point: tokens, latency histograms, prefix-cache
    hits) was left out of the report as a nested dict; it is a table of its own under the results."""
    pytest.importorskip("aiohttp")
    from tests.standins import StandIn, serving

    with serving(StandIn("vllm").app()) as url:
        p = run_cli("loadtest", "--endpoint", f"{url}/v1", "--model", "m", "--num-requests", "4", "--warmup", "0",
                    "--input-len", "8", "--output-len", "4", "--out", str(tmp / "r"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    folder = next((tmp / "r").iterdir())
    server = records(tmp / "r", folder.name)[0]["metrics"]["server"]
    md = write_report([folder], tmp / "lt.md").read_text()
    header, _, row = md.split("*The server's own metrics")[0].strip().split("\n\n")[-1].splitlines()
    shown = dict(zip(header.split(" | "), row.split(" | ")))
    assert shown["prompt_tokens"] == "32" and shown["generation_tokens"] == f"{server['generation_tokens']:.4g}"
    ttft = server["ttft_s"]
    assert shown["ttft_s mean / p50 / p99"] == " / ".join(f"{ttft[k]:.4g}" for k in ("mean", "p50", "p99"))


def test_results_show_gives_a_failed_cells_whole_error(runs, tmp):
    """`results show` kept 60 characters of a failed cell's error in its status column, which cut torch's
    out-of-memory error before it said so; a line under the table now gives it whole."""
    results, (run_id, _) = runs
    shutil.copytree(results / run_id, tmp / "res" / run_id)
    recs = records(results, run_id)
    oom = "RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory"
    recs[1] = {**recs[1], "status": "failed", "error": oom, "metrics": None, "samples": None}
    (tmp / "res" / run_id / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    p = run_cli("results", "show", run_id, "--results", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert f"\nerror at {recs[1]['cell_id']}: {oom}\n" in p.stdout


def test_a_run_measured_on_two_machines_names_both(runs, tmp):
    """A Ray sweep's records carry each node's fingerprint (and a run can be resumed on another machine): the runs
    table and the environment named the first record's machine for the whole run."""
    results, (run_id, _) = runs
    folder = tmp / run_id
    shutil.copytree(results / run_id, folder)
    recs = records(results, run_id)
    env = recs[1]["environment"]
    recs[1] = {**recs[1], "environment": {**env, "host": {**env["host"], "hostname": "node-2", "cpu_model": "EPYC"}}}
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    md = write_report([folder], tmp / "two.md").read_text()
    first = f"{env['host']['hostname']}: {env['host']['cpu_model']}"
    assert f"| {first}; node-2: EPYC |" in md and f"| host | 2 machines: {first}; node-2: EPYC |" in md


def test_a_curve_lost_to_failed_cells_says_so(runs, tmp):
    """With batch 2 failed, one point was left and the page advised 'give the spec several (batch_size: [1, 4, 16])'
    to a spec that had given two; it says the others failed."""
    results, (run_id, _) = runs
    folder = tmp / run_id
    shutil.copytree(results / run_id, folder)
    recs = records(results, run_id)
    recs[1] = {**recs[1], "status": "failed", "error": "RuntimeError: out of memory", "metrics": None, "samples": None}
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    md = write_report([folder], tmp / "one.md").read_text()
    curve = md.split("### Latency vs throughput")[1].split("###")[0]
    assert "llm: one batch size per workload was measured, so no curve; the others failed" in curve
    assert "give the spec several" not in curve


def test_a_cell_lost_with_its_ray_node_is_compared_as_failed(runs, tmp):
    """A cell whose node was lost is recorded by the driver with no model and no environment: it was compared
    under its spec's name ('chat b2-p16-o8'), apart from the model's other setups, and its empty fingerprint named
    a machine '?: ?' beside the run's real one."""
    from infra_bench import engine
    from infra_bench.spec.loader import spec_from_dict

    results, (a, b) = runs
    folder = tmp / b
    shutil.copytree(results / b, folder)
    recs = records(results, b)
    spec = spec_from_dict({**recs[1]["spec"], "name": "chat"})
    recs[1] = engine.failed_record(b, spec, recs[1]["cell"], "on node 10.0.0.2: node lost", {}, engine.RunOptions(),
                                   {"name": "ray", "node_ip": "10.0.0.2"})
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    md = write_report([results / a, folder], tmp / "ray.md").read_text()
    compared = md.split("### Comparison across")[1].split("###")[0]
    arch = recs[0]["model"]["arch"]
    assert f"| {arch} b2-p16-o8 | [B] torch on cpu, fp32 | - | - |" in compared and "chat b2" not in compared
    assert "?: ?" not in md


def test_a_report_that_fails_leaves_no_folder_it_made(plan_file, tmp):
    """`run` and `plan` with --report in a new folder made that folder to check the path could be written, then
    refused their bad input and left it behind, empty; `report --md` to a file that cannot be written made its
    <name>_files/ (and its charts) first and left that behind."""
    (tmp / "bad.yaml").write_text("x: 1\n")
    for command in ("run", "plan"):
        assert_one_line_error(run_cli(command, "bad.yaml", "--report", "new/sub/r.md", cwd=tmp), "bad.yaml")
    assert not (tmp / "new").exists()
    (tmp / "r.md").symlink_to("/proc/none/r.md")  # a link to nowhere: the report cannot be written through it
    p = run_cli("report", str(plan_file), "--md", "-o", "r.md", cwd=tmp)
    assert_one_line_error(p, "cannot write the report to r.md: No such file or directory; choose another path with -o")
    assert sorted(f.name for f in tmp.iterdir()) == ["bad.yaml", "r.md"] and (tmp / "r.md").is_symlink()
