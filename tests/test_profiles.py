"""Hardware and site profiles: shipped data validates, bad profiles are refused, user overrides
win, and the CPU probe gives plausible numbers."""
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from infra_bench.errors import UserError
from infra_bench.measure.contention import BUSY_FRACTION
from infra_bench.planner import profiles as pr
from .conftest import assert_one_line_error, run_cli, write_cpu_profile

DOMESTIC_VENDORS = {"Huawei", "Cambricon", "Hygon", "Kunlunxin", "Biren", "Moore Threads", "MetaX", "Iluvatar",
                    "Enflame", "Alibaba T-Head"}


def test_every_shipped_profile_validates_and_carries_sources():
    hw, sites = pr.load_hardware(), pr.load_sites()
    assert len(hw) >= 60 and len(sites) >= 6
    assert DOMESTIC_VENDORS <= {p.vendor for p in hw.values()}
    assert {"nv_a800_80g_sxm", "nv_h800_sxm", "nv_h20", "nv_l20", "hw_910b1", "hw_910b4", "hw_910c",
            "hw_910c_die", "hw_300i_duo", "cb_mlu370_x8", "hg_k100_ai", "amd_mi300x", "intel_gaudi3"} <= set(hw)
    for p in hw.values():
        assert p.sources, p.id
        if p.price:
            assert p.price.currency and p.price.source
    h100 = hw["nv_h100_sxm"]
    assert h100.ridge_flop_per_byte() == pytest.approx(989.5 / 3.35)
    assert h100.available_in("CN") is False and hw["hw_910b2"].available_in("CN") is True
    assert hw["hw_950pr"].available_in("CN") is False  # roadmap parts cannot be bought yet
    assert hw["hw_910a"].scale_up.link == "HCCS"  # 3 x 240 Gb/s HCCS (S11), ~90 GB/s; it was labelled PCIe
    assert pr.match_device(hw, "NVIDIA H100 80GB HBM3").id == "nv_h100_sxm"
    assert pr.match_device(hw, "NVIDIA H20").id == "nv_h20" and pr.match_device(hw, "NVIDIA H200").id == "nv_h200_sxm"


def test_every_mee_regional_grid_has_a_china_site_and_the_hubs_factor_matches_its_provinces():
    """energy_cost_carbon.md's 2023 MEE factors for all seven regional grids, each a site (a Guangdong or Hubei
    buyer had none: South, Central, Northeast and Northwest were missing); cn-west-hub named Inner Mongolia but
    carried the Northwest grid's 0.5543, where Inner Mongolia's own factor is 0.6849 (MEE 2022)."""
    sites = pr.load_sites()
    regional = {"cn-north": 0.6361, "cn-northeast": 0.5122, "cn-east": 0.5500, "cn-central": 0.5271,
                "cn-northwest": 0.5543, "cn-south": 0.4042, "cn-southwest": 0.2472}
    for sid, factor in regional.items():
        s = sites[sid]
        assert s.market == "CN" and s.grid_kgco2_per_kwh == factor and "MEE 2023" in s.grid_source, sid
    assert "Inner Mongolia" not in sites["cn-west-hub"].region
    im = sites["cn-inner-mongolia"]
    assert im.grid_kgco2_per_kwh == 0.6849 and "MEE 2022" in im.grid_source
    for hub in (im, sites["cn-west-hub"]):  # 0.40 is a subsidy for domestic-chip data centres only, said as such
        assert (hub.power_price, hub.domestic_power_price) == (0.44, 0.40)
        assert "domestic-chip" in hub.domestic_power_source


def test_shipped_yaml_parses_without_libyaml():
    """PyYAML without its C extension (a source build on an air-gapped host) is stricter than libyaml: a plain
    scalar ending in '?' inside [...] (servers.yaml's form factor OAM?) stopped every plan there."""
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "hardware_profiles").rglob("*.yaml")) + sorted((root / "workloads").rglob("*.yaml"))
    assert len(files) > 20
    for f in files:
        list(yaml.load_all(f.read_text(), Loader=yaml.SafeLoader))  # the pure-Python loader


GOOD = {"kind": "accelerator", "vendor": "Acme", "model": "X1", "peak_tflops": {"bf16": 100.0, "fp8": 200.0},
        "memory_gb": 64, "memory_bandwidth_tbs": 2.0, "sources": ["Acme datasheet 2026"]}


@pytest.mark.parametrize("change, message", [
    ({"memory_bandwidth_tbs": -1}, "profile 'acme_x1': field 'memory_bandwidth_tbs': Input should be greater than 0"),
    ({"peak_tflops": {"bf61": 100.0}}, "unknown dtype key 'bf61' (did you mean 'bf16'?)"),
    ({"sources": []}, "has numbers but no sources"),
    ({"peak_tflops": {"bf16": 100.0, "fp8": 50.0}}, "contradictory peaks: fp8 50 is below bf16 100"),
    ({"price": {"amount": 100, "date": "2026", "source": "quote"}}, "missing required field 'price.currency'"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"memory_type": "fast"}, "memory_type 'fast' is not a memory technology; give one such as HBM3e"),
])
def test_bad_profiles_are_refused_with_file_profile_and_field(tmp_path: Path, change, message):
    (tmp_path / "accelerators").mkdir()
    path = tmp_path / "accelerators" / "acme.yaml"
    path.write_text(yaml.safe_dump({"acme_x1": {**GOOD, **change}}))
    with pytest.raises(UserError) as e:
        pr.load_hardware([tmp_path])
    assert str(e.value).startswith(f"{path}: profile 'acme_x1'") and message in str(e.value)


@pytest.mark.parametrize("change, message", [
    ({"tdp_w": 0.55}, "tdp_w 0.55 is below 10 W, so it looks like kilowatts; give watts (0.55 kW = 550)"),
    ({"memory_bandwidth_tbs": 2400}, ("memory_bandwidth_tbs 2400 is above 100 TB/s, so it looks like GB/s; give "
                                      "TB/s (2400 GB/s = 2.4)")),
    ({"memory_gb": 96000}, "memory_gb 96000 is above 4096 GB per device, so it looks like MB; give GB"),
    ({"peak_tflops": {"bf16": 0.4, "fp8": 0.8}}, ("peak_tflops.bf16 0.4 is below 1, so it looks like PFLOPS; give "
                                                  "TFLOPS (0.4 PFLOPS = 400)")),
    ({"peak_tflops": {"bf16": 100000.0}}, "is 5e+04 FLOP per byte, outside 2-5000"),
    ({"peak_tflops": {"bf16_sparse": 200.0}}, ("'bf16_sparse': peaks are dense; a sparse (2:4) figure is twice the "
                                               "dense one, so give half of it under 'bf16'")),
])
def test_a_spec_sheet_figure_in_the_wrong_unit_is_refused(tmp: Path, change, message):
    """A spec sheet's kW, GB/s, MB, PFLOPS or GFLOPS went in as W, TB/s, GB and TFLOPS without a word, and every
    prediction on the part was off by 1000x; a sparse peak was answered 'did you mean bf16?', doubling it."""
    (tmp / "mine" / "accelerators").mkdir(parents=True)
    (tmp / "mine" / "accelerators" / "acme.yaml").write_text(yaml.safe_dump({"acme_x1": {**GOOD, **change}}))
    assert_one_line_error(run_cli("profiles", "show", "acme_x1", "--profiles", "mine", cwd=tmp), message)


def test_a_server_in_kilowatts_is_refused(tmp: Path):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "servers.yaml").write_text(yaml.safe_dump({"srv_x": {
        "name": "X box", "vendor": "Acme", "hosts": ["nv_h100_sxm"], "slots": 8, "max_power_w": 10.2,
        "sources": ["Acme sheet"]}}))
    assert_one_line_error(run_cli("profiles", "servers", "--profiles", "mine", cwd=tmp),
                          "max_power_w 10.2 is below 100 W, so it looks like kilowatts; give watts (10.2 kW = 10200)")


def test_a_server_hosting_an_unknown_part_is_refused(tmp: Path):
    """A typo in a server's `hosts` (xx_nova8 for xx_nova9) was accepted: the part fell back to the generic
    8-module server and plan priced and powered it as that, without a word."""
    (tmp / "mine" / "accelerators").mkdir(parents=True)
    (tmp / "mine" / "accelerators" / "nova.yaml").write_text(yaml.safe_dump({"xx_nova9": {**GOOD, "form_factor": "OAM"}}))
    (tmp / "mine" / "servers.yaml").write_text(yaml.safe_dump({"srv_nova": {
        "name": "Nova box", "vendor": "Novachip", "hosts": ["xx_nova8"], "slots": 8, "sources": ["Novachip sheet"]}}))
    assert_one_line_error(run_cli("profiles", "show", "xx_nova9", "--profiles", "mine", cwd=tmp),
                          "server 'srv_nova': hosts 'xx_nova8', which no accelerator profile has (did you mean "
                          "'xx_nova9'?); fix the id or add the part's profile")


def test_bad_site_and_missing_directory(tmp_path: Path):
    site = {"region": "x", "grid_kgco2_per_kwh": 0.5, "grid_factor_type": "average", "grid_source": "src",
            "power_price": 0.1, "power_currency": "USD", "power_source": "src", "pue": 0.9, "pue_source": "src"}
    (tmp_path / "sites.yaml").write_text(yaml.safe_dump({"bad": site}))
    with pytest.raises(UserError, match="profile 'bad': field 'pue': Input should be greater than or equal to 1"):
        pr.load_sites([tmp_path])
    (tmp_path / "sites.yaml").write_text(yaml.safe_dump({"hub": site | {"pue": 1.2, "domestic_power_price": 0.05}}))
    with pytest.raises(UserError, match="profile 'hub': domestic_power_price has no domestic_power_source"):
        pr.load_sites([tmp_path])
    with pytest.raises(UserError, match="profiles directory not found"):
        pr.load_hardware([tmp_path / "nope"])


def test_user_profiles_extend_and_override_and_feed_probe_and_sysinfo(tmp: Path):
    import platform

    from infra_bench.system import cpu_model
    user = tmp / "mine"
    (user / "accelerators").mkdir(parents=True)
    builtin = pr.load_hardware()["nv_h100_sxm"].model_dump(exclude={"id"})
    (user / "accelerators" / "override.yaml").write_text(yaml.safe_dump({
        "nv_h100_sxm": {**builtin, "memory_gb": 81.0}, "acme_x1": GOOD}))
    local = {"kind": "cpu", "vendor": "Local", "model": cpu_model(), "match": [cpu_model().replace("(", r"\(")
                                                                                 .replace(")", r"\)")],
             "peak_tflops": {"fp32": 1.0, "bf16": 2.0}, "memory_bandwidth_tbs": 0.05,
             "sources": [f"test profile for {platform.node()}"]}
    (user / "cpus.yaml").write_text(yaml.safe_dump({"local_cpu": local}))
    p = run_cli("profiles", "show", "nv_h100_sxm", "--json", "--profiles", str(user), cwd=tmp)
    assert p.returncode == 0 and json.loads(p.stdout)["memory_gb"] == 81.0  # the user's wins
    assert "warning" not in p.stderr  # it repeats every field of the built-in
    # a quote that gives only some fields replaces the built-in whole: what it drops is said, once
    quote = tmp / "quote"
    (quote / "accelerators").mkdir(parents=True)
    ascend = pr.load_hardware()["hw_910b2"].model_dump(include={"kind", "vendor", "model", "peak_tflops", "memory_gb",
                                                              "memory_bandwidth_tbs", "sources"})
    (quote / "accelerators" / "q.yaml").write_text(yaml.safe_dump({"hw_910b2": {**ascend, "price": {
        "amount": 110000, "currency": "CNY", "source": "our quote", "date": "2026-11"}}}))
    p = run_cli("profiles", "show", "hw_910b2", "--json", "--profiles", str(quote), cwd=tmp)
    assert p.returncode == 0 and json.loads(p.stdout)["domestic"] is False
    [warning] = p.stderr.splitlines()
    assert warning.startswith(f"warning: hw_910b2 in {quote} replaces the profile of that id whole; it leaves out ")
    assert "domestic" in warning and "repeat them in your profile to keep them" in warning
    p = run_cli("profiles", "list", "--vendor", "acme", "--json", cwd=tmp, env={"INFRA_BENCH_PROFILES": str(user)})
    assert [r["id"] for r in json.loads(p.stdout)] == ["acme_x1"]
    p = run_cli("probe", "--device", "cpu", "--quick", "--out", "res", "--json", "--profiles", str(user), cwd=tmp)
    assert p.returncode == 0, p.stderr
    records = {(r["cell"]["test"], r["cell"]["dtype"]): r for r in json.loads(p.stdout)}
    fp32 = records[("matmul", "fp32")]["metrics"]
    assert fp32["profile"] == "local_cpu" and fp32["spec"] == 1.0
    assert fp32["measured_over_spec"] == pytest.approx(fp32["value"])
    assert records[("memory_copy", "fp32")]["metrics"]["spec"] == pytest.approx(50.0)
    s = run_cli("sysinfo", "--results", "res", "--profiles", str(user), cwd=tmp)
    assert "profile   cpu: local_cpu; measured/spec matmul fp32" in s.stdout
    # --json carries what the text shows (it left the probe out)
    s = run_cli("sysinfo", "--results", "res", "--profiles", str(user), "--json", cwd=tmp)
    shown = {(r["test"], r["dtype"]): r for r in json.loads(s.stdout)["probe"]["cpu"]}
    assert shown.keys() == records.keys()
    assert shown[("matmul", "fp32")]["measured_over_spec"] == pytest.approx(fp32["measured_over_spec"])
    assert shown[("matmul", "fp32")]["profile"] == "local_cpu" and shown[("matmul", "fp32")]["value"] == fp32["value"]
    # without that profile no ratio is shown: the probe's ratios were against local_cpu's figures
    s = run_cli("sysinfo", "--results", "res", cwd=tmp)
    assert "measured/spec" not in s.stdout
    s = run_cli("sysinfo", "--results", "res", "--json", cwd=tmp)
    assert all(r["measured_over_spec"] is None for r in json.loads(s.stdout)["probe"]["cpu"])


@pytest.fixture(scope="module")
def probed(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`probe --device cpu --quick` with no user profiles, once: the process and its results folder, for the two
    tests that only read them."""
    folder = tmp_path_factory.mktemp("probe")
    p = run_cli("probe", "--device", "cpu", "--quick", "--out", "res", cwd=folder)
    assert p.returncode == 0, p.stderr
    return p, folder / "res"


def test_cpu_probe_numbers_are_positive_and_plausible(probed: tuple[subprocess.CompletedProcess, Path]):
    (run,) = list(probed[1].glob("*/records.jsonl"))
    recs = [json.loads(x) for x in run.read_text().splitlines()]
    assert {r["kind"] for r in recs} == {"probe"} and all(r["status"] == "ok" for r in recs)
    by = {(r["cell"]["test"], r["cell"]["dtype"]): r["metrics"] for r in recs}
    assert 1e-3 < by[("matmul", "fp32")]["value"] < 50  # TFLOPS of a 2-core VM up to a big server
    assert 0.5 < by[("memory_copy", "fp32")]["value"] < 2000  # GB/s
    assert by[("matmul", "fp32")]["rate"]["n"] >= 5


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="others' CPU time is read from Linux's /proc/stat")
def test_a_probe_says_whether_the_machine_was_busy_and_plans_its_cells(
        probed: tuple[subprocess.CompletedProcess, Path]):
    """Probe records had no host_others_cpu_frac, so a busy machine's low rates read as the device's own,
    and `results show` said '5 of ? cells recorded'. Whether this machine is busy now does not matter:
    each record's flag, note and table label must agree with its own share."""
    p, res = probed
    (folder,) = [f.parent for f in res.glob("*/records.jsonl")]
    recs = [json.loads(x) for x in (folder / "records.jsonl").read_text().splitlines()]
    busy = [r["metrics"]["host_others_cpu_frac"] > BUSY_FRACTION for r in recs]
    assert all(0.0 <= r["metrics"]["host_others_cpu_frac"] <= 1.0 for r in recs)
    assert busy == [any(n.startswith("machine busy") for n in r["notes"]) for r in recs]
    rows = [line for line in p.stdout.splitlines() if line.startswith("cpu ")]
    assert [row.endswith("ok, busy") for row in rows] == busy
    shown = run_cli("results", "show", folder.name, "--out", "res", cwd=res.parent)
    assert f"{len(recs)} of {len(recs)} cells recorded" in shown.stdout


def test_profiles_cli_filters_and_errors(tmp: Path):
    rows = json.loads(run_cli("profiles", "list", "--market", "cn", "--available", "--json", cwd=tmp).stdout)
    ids = {r["id"] for r in rows}  # the market's code in any case
    assert "hw_910b2" in ids and "nv_h100_sxm" not in ids and "nv_h20" not in ids  # H20: licensed, discouraged
    rows = json.loads(run_cli("profiles", "list", "--domestic", "--json", cwd=tmp).stdout)
    assert rows and all(r["domestic"] for r in rows)
    shown = json.loads(run_cli("profiles", "show", "hw_910b2", "--json", cwd=tmp).stdout)
    assert shown["derived"]["ridge_flop_per_byte"] == pytest.approx(353.9 / 1.6)
    p = run_cli("profiles", "compare", "nv_h20", "hw_910b2", "nv_h100_sxm", cwd=tmp)
    assert p.returncode == 0 and "ridge point FLOP/byte" in p.stdout and "USD per bf16 TFLOP" in p.stdout
    table = {line.split("  ")[0]: line for line in p.stdout.splitlines()}
    assert "e+" not in p.stdout and " 1,979" in table["fp8 dense TFLOPS"]  # whole numbers, not 1.98e+03
    assert "110,000 CNY" in table["price (estimate)"] and "..." in table["CN available"]  # a long status says it is cut
    # one currency: the 910B2 is priced in CNY, the H100 in USD (it printed 226 CNY beside 31 USD, unlabelled)
    rows = json.loads(run_cli("profiles", "compare", "nv_h100_sxm", "hw_910b2", "--json", cwd=tmp).stdout)["rows"]
    h100, ascend = (pr.load_hardware()[k] for k in ("nv_h100_sxm", "hw_910b2"))
    assert rows["USD per bf16 TFLOP"] == pytest.approx([h100.price.amount / h100.dense_tflops,
                                                        ascend.price.amount / 7.2 / ascend.dense_tflops])
    # the fp4 peak that sets a Blackwell part apart (GB300 over GB200: 1.5x) is shown, unknown stays null
    fp4 = json.loads(run_cli("profiles", "compare", "nv_gb200_gpu", "nv_gb300_gpu", "nv_h100_sxm", "--json",
                             cwd=tmp).stdout)["rows"]["fp4 dense TFLOPS"]
    assert fp4[1] / fp4[0] == pytest.approx(1.5) and fp4[2] is None
    assert json.loads(run_cli("profiles", "show", "NV_H100_SXM", "--json", cwd=tmp).stdout)["id"] == "nv_h100_sxm"
    for args, message in [(["profiles", "show", "nv_h10_sxm"], "unknown hardware profile 'nv_h10_sxm' (did you mean"),
                          (["profiles", "list", "--available"], "--available needs --market"),
                          (["profiles", "list", "--market", "XX"], ("--market XX: no profile records availability "
                                                                     "there; use a known market (CN) or leave --market out"))]:
        assert_one_line_error(run_cli(*args, cwd=tmp), message)
    # one message from one place: plan's --market check said it in other words
    (tmp / "d.yaml").write_text("services:\n  - {model: vits-mms, traffic: {concurrent_streams: 1}}\n")
    assert run_cli("plan", "d.yaml", "--market", "XX", cwd=tmp).stderr == \
        run_cli("profiles", "list", "--market", "XX", cwd=tmp).stderr


def test_sysinfo_marks_measured_over_spec_from_a_busy_probe(tmp: Path):
    """A probe measured while other processes took the CPU reads low ('matmul fp32 0.31') and `probe` says 'ok, busy';
    sysinfo's measured/spec line, read later, did not, so the part looked a third as fast as its spec."""
    mine = write_cpu_profile(tmp)
    p = run_cli("probe", "--device", "cpu", "--quick", "--out", "res", "--profiles", str(mine), cwd=tmp)
    assert p.returncode == 0, p.stderr
    (path,) = (tmp / "res").glob("*/records.jsonl")
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    for r in recs:  # fp32 matmul ran beside another job; the rest on an idle host
        r["metrics"]["host_others_cpu_frac"] = 0.7 if r["cell"] == {"test": "matmul", "dtype": "fp32"} else 0.0
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    line = run_cli("sysinfo", "--results", "res", "--profiles", str(mine), cwd=tmp).stdout.splitlines()[-1]
    assert re.search(r"matmul fp32 \d+\.\d\d \(busy\), matmul bf16 \d+\.\d\d, ", line), line
    assert "re-run `infra-bench probe` when the machine is idle" in line


def test_a_peak_taken_from_another_precision_is_said_and_an_embedding_needs_bandwidth(tmp: Path):
    """A spec sheet giving only fp16: bf16 predictions took the fp16 peak and fp32 ones half of it, with nothing
    said (no shipped profile publishes fp32, so every fp32 figure was such a guess); an embedding on a part with no
    bandwidth read its weights in no time at all, where `plan` refused the part for that gap."""
    fp16_only = {**GOOD, "peak_tflops": {"fp16": 400.0}, "memory_bandwidth_tbs": 2.4}
    no_bandwidth = {k: v for k, v in fp16_only.items() if k != "memory_bandwidth_tbs"}
    (tmp / "mine" / "accelerators").mkdir(parents=True)
    (tmp / "mine" / "accelerators" / "nova.yaml").write_text(yaml.safe_dump({"xx_nova": fp16_only,
                                                                              "xx_nobw": no_bandwidth}))
    mine = ("--profiles", "mine")
    llm = run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "xx_nova", *mine, cwd=tmp)
    assert llm.returncode == 0, llm.stderr
    assert "note: xx_nova publishes no bf16 peak: its fp16 peak (400 TFLOPS) is used" in llm.stdout
    emb = run_cli("predict", "--model", "bge-m3", "--precision", "fp32", "--hardware", "xx_nova", *mine, cwd=tmp)
    assert emb.returncode == 0, emb.stderr
    assert "note: xx_nova publishes no fp32 peak: taken as half its 16-bit peak (200 TFLOPS)" in emb.stdout
    own = run_cli("predict", "--model", "bge-m3", "--hardware", "xx_nova", *mine, cwd=tmp)
    assert "publishes no" not in own.stdout  # fp16 is published
    assert_one_line_error(run_cli("predict", "--model", "bge-m3", "--hardware", "xx_nobw", *mine, cwd=tmp),
                          "xx_nobw lacks a memory bandwidth in its profile; add memory_bandwidth_tbs with --profiles DIR")


def test_plan_and_speech_lms_say_which_peak_stood_in_and_attention_is_not_priced_at_fp8_silently(tmp: Path):
    """`plan` sized a part publishing only fp16 on its fp16 peak for bf16 and on half of it for fp32, and a speech
    LM's `predict` did the same, with nothing said in text or JSON; a part publishing only fp8 priced the 16-bit
    attention of an fp8 LLM at its fp8 rate, also unsaid."""
    parts = {"xx_nova": {**GOOD, "peak_tflops": {"fp16": 400.0}, "memory_bandwidth_tbs": 2.4},
             "xx_eight": {**GOOD, "peak_tflops": {"fp8": 400.0}}}
    (tmp / "mine" / "accelerators").mkdir(parents=True)
    (tmp / "mine" / "accelerators" / "nova.yaml").write_text(yaml.safe_dump(parts))
    (tmp / "d.yaml").write_text(yaml.safe_dump({"services": [
        {"name": "chat", "model": "qwen3-0.6b", "traffic": {"requests_per_s": 1, "input_len": 256, "output_len": 64},
         "slo": {"ttft_p95_s": 5, "tpot_p99_s": 0.5}},
        {"name": "img", "model": "sd-1.5", "precision": "fp32", "traffic": {"images_per_hour": 10},
         "slo": {"latency_p95_s": 60}}]}))
    mine = ("--profiles", "mine", "--confirm", "0")
    text = run_cli("plan", "d.yaml", "--hardware", "xx_nova", *mine, cwd=tmp)
    assert text.returncode == 0, text.stderr
    bf16 = "xx_nova publishes no bf16 peak: its fp16 peak (400 TFLOPS) is used"
    fp32 = "xx_nova publishes no fp32 peak: taken as half its 16-bit peak (200 TFLOPS)"
    assert f"note: xx_nova: {bf16}" in text.stdout and f"note: xx_nova: {fp32}" in text.stdout
    (cand,) = json.loads(run_cli("plan", "d.yaml", "--hardware", "xx_nova", "--json", *mine, cwd=tmp).stdout)["candidates"]
    assert any(n == bf16 for n in cand["notes"]) and any(n.startswith(fp32) for n in cand["notes"])
    speech = json.loads(run_cli("predict", "--model", "csm-1b", "--precision", "fp32", "--hardware", "xx_nova",
                                "--json", *mine[:2], cwd=tmp).stdout)
    assert any(n.startswith(fp32) for n in speech["notes"])
    fp8 = run_cli("predict", "--model", "qwen3-0.6b", "--precision", "fp8", "--hardware", "xx_eight", *mine[:2], cwd=tmp)
    assert fp8.returncode == 0, fp8.stderr
    assert ("note: xx_eight publishes no 16-bit peak: attention, which runs in 16-bit, is priced at its fp8 peak "
            "(400 TFLOPS)") in fp8.stdout


def test_profiles_show_json_keeps_unknown_server_figures_as_null(tmp: Path):
    """The server block of `profiles show --json` dropped its unknown price and power, where the part's own unknown
    figures read null: a reader could not tell 'unpriced' from 'not reported'."""
    shown = json.loads(run_cli("profiles", "show", "cb_mlu590", "--json", cwd=tmp).stdout)
    assert shown["memory_gb"] is None and shown["peak_tflops"] == {}  # unpublished: null, never 0
    assert shown["server"]["id"] == "srv_module8"
    assert shown["server"]["price"] is None and shown["server"]["max_power_w"] is None


def test_a_yml_profile_file_is_not_left_out_silently(tmp: Path):
    """accelerators/nova.yml beside a .yaml file was skipped without a word, and its part was 'unknown'."""
    (tmp / "mine" / "accelerators").mkdir(parents=True)
    (tmp / "mine" / "accelerators" / "acme.yaml").write_text(yaml.safe_dump({"acme_x1": GOOD}))
    (tmp / "mine" / "accelerators" / "nova.yml").write_text(yaml.safe_dump({"xx_nova9": GOOD}))
    assert_one_line_error(run_cli("profiles", "show", "xx_nova9", "--profiles", "mine", cwd=tmp),
                          "nova.yml: profile files are read only as .yaml, so this one was left out; rename it nova.yaml")


def test_hbm_sizes_are_binary_as_the_runtime_sees_them(tmp: Path):
    """A datasheet's 80 GB of HBM is 80 GiB (nvidia-smi: 81,559 MiB on an H100); it was read as 80 x 10^9 bytes,
    which left Qwen3-32B in bf16 on one H100 under vLLM room for 2 sequences of 4,100 tokens where GPUStack's runs
    held more. GDDR cards lose 1/16 to ECC and read as decimal GB, as does a part whose memory type is not given."""
    hw = pr.load_hardware()
    assert hw["nv_h100_sxm"].memory_bytes == 80 * 2**30 and hw["nv_l4"].memory_bytes == 24e9
    assert pr.HardwareProfile(**GOOD, id="acme_x1").memory_bytes == 64e9
    p = run_cli("predict", "--model", "qwen3-32b", "--hardware", "nv_h100_sxm", "--engine", "vllm", "--input-len",
                "4000", "--output-len", "200", "--concurrency", "8", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)["memory"]
    device = 80 * 2**30 / 1e9  # vLLM takes 0.9 of the device, less the weights and the runtime reserve
    assert m["device_gb"] == pytest.approx(device)
    assert m["kv_room_gb_per_device"] == pytest.approx(device * 0.9 - m["weights_gb_per_device"] - 3.5)
    per_seq = m["kv_bytes_per_token_per_device"] * m["context_tokens"] / 1e9
    assert m["max_sequences"] == int(m["kv_room_gb_per_device"] / per_seq) == 7
