"""Plans a buyer can defend: parts chosen by group, partial fits, server-level prices, unpriced parts
never ranked as free, explained rows and the shipped fit named."""
import json
import math
import re
from pathlib import Path

import pytest

from infra_bench.planner import compare, sizing
from infra_bench.planner.cost import Assumptions, cost_of, peak_kw
from infra_bench.planner.demand import demand_from_dict
from infra_bench.planner.fleet import optimise
from infra_bench.planner.profiles import HardwareProfile, ServerProfile, SiteProfile, load_hardware
from infra_bench.planner.selection import catalog
from infra_bench.report.plan import fleet_text, plan_text, ranks

from .conftest import assert_one_line_error, run_cli

EXAMPLE = Path(__file__).parents[1] / "workloads" / "demand-example.yaml"
SITE = SiteProfile(id="t", region="t", grid_kgco2_per_kwh=0.5, grid_factor_type="average", grid_source="test",
                   power_price=0.1, power_currency="USD", power_source="test", pue=1.5, pue_source="test")
CHAT_AND_IMAGES = demand_from_dict({"name": "t", "services": [
    {"name": "chat", "model": "llama-3.1-8b", "traffic": {"requests_per_s": 2, "input_len": 512, "output_len": 128},
     "slo": {"ttft_p95_s": 2, "tpot_p99_s": 0.05}},
    {"name": "images", "model": "sd-1.5", "resolution": 512, "steps": 30, "traffic": {"images_per_hour": 600},
     "slo": {"latency_p95_s": 1.5}}]})


def part(hid: str, tflops: float, memory_gb: float, price: float | None = None, tdp: float = 400) -> HardwareProfile:
    """A one-device-per-node test part (no tensor parallelism to rescue a model that does not fit)."""
    return HardwareProfile(id=hid, kind="accelerator", vendor="Test", model=hid, peak_tflops={"bf16": tflops, "fp16": tflops},
                           memory_gb=memory_gb, memory_bandwidth_tbs=3.0, tdp_w=tdp, typical_node_size=1,
                           sources=["test"], price=price and {"amount": price, "currency": "USD", "date": "2026",
                                                               "source": "test"})


def test_a_part_that_serves_some_services_is_listed_with_why_and_mixed_combines_them():
    profiles = {"fast_small": part("fast_small", 1000, 6, 5000), "slow_big": part("slow_big", 20, 80, 5000)}
    boxes = {f"srv_{h}": ServerProfile(id=f"srv_{h}", name=h, vendor="T", hosts=[h], slots=4, sources=["quote"],
                              price={"amount": 3000, "currency": "USD", "date": "2026", "source": "quote",
                                     "includes_accelerators": False}) for h in profiles}
    p = sizing.plan(CHAT_AND_IMAGES, profiles, site=SITE, rank_by="tco", confirm_top=1, servers=boxes)
    by = {c.hardware: c for c in p.candidates}
    assert not any(c.feasible for c in p.candidates)
    assert by["fast_small"].serves == ["images"] and "chat: does not fit" in by["fast_small"].reason
    assert by["slow_big"].serves == ["chat"] and "images: image latency" in by["slow_big"].reason
    assert p.coverage == {"chat": ["slow_big"], "images": ["fast_small"]}
    assert any("--mixed" in n for n in p.notes)
    text = plan_text(p)
    assert "serves some services only (2):" in text and "fast_small: serves images; chat: does not fit" in text
    row = compare.by_group(p, catalog(profiles), ["test"])[0]
    assert row["hardware"] is None and "none of 2 can serve it" in row["reason"] and "serves" in row["reason"]
    fleet = optimise(p, CHAT_AND_IMAGES, profiles, SITE, Assumptions(), servers=boxes)
    assert fleet.feasible and set(fleet.devices) == {"fast_small", "slow_big"}
    assert {a["service"]: a["hardware"] for a in fleet.assignments} == {"chat": "slow_big", "images": "fast_small"}
    busy = Assumptions(utilization=1 - CHAT_AND_IMAGES.headroom)
    whole = 0.0
    for h, n in fleet.devices.items():  # the program buys whole servers, as a single-type plan does
        assert fleet.servers[h] == math.ceil(n / 4)
        # ... and its devices draw the power model's busy power for what that type serves, as in the plan
        c = sizing.Candidate(h, h, True, None, by[h].options, devices=n, servers=fleet.servers[h])
        whole += cost_of(c, profiles[h], CHAT_AND_IMAGES.services, SITE, busy, boxes[f"srv_{h}"]).per_year["total"]
    assert fleet.tco_per_year == pytest.approx(whole)
    head = fleet_text(fleet.to_dict()).splitlines()[0]
    assert all(f"{h} {n} in {fleet.servers[h]} server{'s' * (fleet.servers[h] > 1)}" in head
               for h, n in fleet.devices.items()) and " in 1 servers" not in head
    with_single = {**fleet.to_dict(), "best_single": {"hardware": "slow_big", "devices": 9, "tco_per_year": 9e4}}
    single = next(line for line in fleet_text(with_single).splitlines() if line.startswith("best single type:"))
    assert "busy at 1 - headroom, as the mix is" in single  # its basis, as the ranked table's TCO differs from it


def test_mixed_answers_once_and_a_fleet_of_two_stacks_is_an_answer(tmp: Path):
    """Two services under engines of different vendors: no single part serves both, --mixed combines them and
    exits 0 (it exited 2 advising --mixed); a mix the limits rule out is said once, on stderr (it was printed
    in the plan as well)."""
    chat = {"model": "llama-3.1-8b", "traffic": {"requests_per_s": 2, "input_len": 512, "output_len": 128},
            "slo": {"ttft_p95_s": 2, "tpot_p99_s": 0.05}}
    (tmp / "d.yaml").write_text(json.dumps({"name": "two", "services": [
        {"name": "a", "engine": "trt-llm", **chat}, {"name": "b", "engine": "mindie", **chat}]}))
    args = ("plan", "d.yaml", "--mixed", "--site", "us-average", "--hardware", "hw_910b2,nv_h100_sxm", "--confirm", "0")
    ok = run_cli(*args, cwd=tmp)
    assert ok.returncode == 0 and not ok.stderr, ok.stderr
    assert "mixed fleet (integer program" in ok.stdout
    assert "`--mixed --site SITE` combines them" not in ok.stdout  # the plan's hint to do what was asked
    alone = run_cli(*args[:2], "--hardware", "hw_910b2,nv_h100_sxm", "--confirm", "0", cwd=tmp)
    assert "`--mixed --site SITE` combines them" in alone.stdout
    capped = run_cli(*args, "--limit", "hw_910b2=0", cwd=tmp)
    assert_one_line_error(capped, "--mixed found no fleet: service b: no costed type can serve it under these "
                                  "--limit caps")
    assert "costed type" not in capped.stdout and "serves some services only (2)" in capped.stdout
    impossible = json.loads((tmp / "d.yaml").read_text())
    impossible["services"][0]["slo"]["ttft_p95_s"] = 0.001
    (tmp / "d.yaml").write_text(json.dumps(impossible))
    none = run_cli(*args, cwd=tmp)  # a service no part serves: what came closest, and no solver chatter
    assert_one_line_error(none, "no candidate can serve this demand; a: closest nv_h100_sxm")
    assert "mixed fleet" not in none.stdout and "solver" not in none.stdout


def test_server_level_pricing_against_a_hand_computed_bill_of_materials():
    hw = part("gpu", 100, 80, price=10000, tdp=500)
    hw = hw.model_copy(update={"typical_node_size": 8})
    whole = ServerProfile(id="srv_whole", name="8-GPU box", vendor="T", hosts=["gpu"], slots=8, max_power_w=6000,
                          price={"amount": 100000, "currency": "USD", "date": "2026", "includes_accelerators": True,
                                 "source": "quote"}, sources=["quote"])
    bare = whole.model_copy(update={"id": "srv_bare", "price": whole.price.model_copy(
        update={"amount": 20000, "includes_accelerators": False})})
    o = sizing.Option("chat", "llm", "bf16", 1, True, capacity=1.0, unit="req/s", replicas=10, devices=10)
    c = sizing.Candidate("gpu", "gpu", True, None, [o], devices=10, servers=2)  # 10 devices need 2 servers of 8
    svc = CHAT_AND_IMAGES.services[:1]
    w = cost_of(c, hw, svc, SITE, Assumptions(), whole)  # two whole servers, 16 accelerators in them
    assert w.capex["devices"] == pytest.approx(2 * 8 * 10000) and w.capex["servers"] == pytest.approx(2 * 20000)
    assert w.capex["total"] == pytest.approx(1.05 * 200000) and "less 8 x the device price" in w.capex["server_basis"]
    cheaper = cost_of(c, hw, svc, SITE, Assumptions(device_price_scale=0.5), whole)  # only the accelerators move
    assert cheaper.capex["total"] == pytest.approx(1.05 * (200000 - 80000))
    mine = cost_of(c, hw, svc, SITE, Assumptions(prices={"gpu": {"amount": 7200, "currency": "CNY"}}), whole)
    assert mine.capex["devices"] == pytest.approx(16 * 1000) and mine.capex["servers"] == pytest.approx(2 * 20000)
    only = cost_of(c, hw.model_copy(update={"price": None}), svc, SITE, Assumptions(device_price_scale=0.5), whole)
    assert only.capex["total"] == pytest.approx(1.05 * 100000) and only.capex["device_price_source"] == \
        "in the server price"  # sold only in servers: the whole quote moves
    b = cost_of(c, hw, svc, SITE, Assumptions(), bare)
    assert b.capex["devices"] == pytest.approx(10 * 10000) and b.capex["servers"] == pytest.approx(2 * 20000)
    assert b.capex["total"] == pytest.approx(1.05 * 140000)
    u = 2 / 10  # load 2 req/s over 10 replicas of 1 req/s
    it_kw = (10 * 500 + 2 * (6000 - 8 * 500)) * (0.3 + 0.7 * u) / 1000  # devices + each server's host share
    assert b.energy["it_kw_avg"] == pytest.approx(it_kw) and "srv_bare maximum 6,000 W" in b.energy["host_power"]
    unpriced = cost_of(c, hw.model_copy(update={"price": None}), svc, SITE, Assumptions(),
                       whole.model_copy(update={"price": None}))
    assert unpriced.capex is None and unpriced.per_year is None and any("unpriced" in n for n in unpriced.notes)
    generic = cost_of(c, hw, svc, SITE, Assumptions(), whole.model_copy(update={"price": None}))
    assert generic.capex["servers"] == pytest.approx(2 * 8 * 8000)  # whole servers at the generic share per slot
    assert "estimated host" in generic.capex["server_basis"]
    # power to provision counts whole servers as capex does: a server bought whole draws for all its slots, one
    # bought empty for its host and the accelerators in it; a server with no published power gets 0.8 x TDP per
    # slot, filled or not (it was 0.8 x TDP per device, which put such parts in fractions of a server)
    assert peak_kw(10, 2, hw, whole) == pytest.approx(2 * 6000 / 1000)
    assert peak_kw(10, 2, hw, bare) == pytest.approx((2 * (6000 - 8 * 500) + 10 * 500) / 1000)
    no_power = bare.model_copy(update={"max_power_w": None})
    assert peak_kw(10, 2, hw, no_power) == pytest.approx((2 * 8 * 0.8 * 500 + 10 * 500) / 1000)
    n = cost_of(c, hw, svc, SITE, Assumptions(), no_power)
    assert n.energy["it_kw_avg"] == pytest.approx((10 * 500 + 2 * 8 * 0.8 * 500) * (0.3 + 0.7 * u) / 1000)


def test_unpriced_parts_are_never_ranked_as_free():
    profiles = {"priced": part("priced", 400, 80, 20000), "free": part("free", 800, 80, None)}
    demand = demand_from_dict({"name": "t", "services": [CHAT_AND_IMAGES.services[0].model_dump()]})
    for rank_by in ("tco", "capex"):
        p = sizing.plan(demand, profiles, site=SITE, rank_by=rank_by, confirm_top=1, servers={})
        ok = [c for c in p.candidates if c.feasible]
        assert [c.hardware for c in ok] == ["priced", "free"] and ok[1].devices <= ok[0].devices
        assert ok[1].cost["capex"] is None and ranks(ok, rank_by) == ["1", "-"]
        text = plan_text(p)
        assert "unpriced" in text and f"not ranked by {rank_by}: free: no public price" in text


def test_an_unranked_part_is_told_what_it_lacks():
    """A quote with a price but no TDP is not ranked by TCO for want of a TDP, and the note says so (it told
    every unranked part to give a price); an unpriced part is still told to give one."""
    profiles = {"priced": part("priced", 400, 80, 20000), "free": part("free", 800, 80, None),
                "no_tdp": part("no_tdp", 800, 80, 20000, tdp=None)}
    demand = demand_from_dict({"name": "t", "services": [CHAT_AND_IMAGES.services[0].model_dump()]})
    p = sizing.plan(demand, profiles, site=SITE, rank_by="tco", confirm_top=1, servers={})
    ok = [c for c in p.candidates if c.feasible]
    assert ranks(ok, "tco") == ["1", "-", "-"]
    note = next(line for line in plan_text(p).splitlines() if line.startswith("- not ranked by tco"))
    assert "free: no public price" in note and "no_tdp: no TDP" in note and "add tdp_w" in note
    assert "no_tdp: no public price" not in note


def test_without_a_site_every_tco_cell_reads_the_same():
    """No --site prices no part's energy, so no TCO: a priced part read '-' and an unpriced one 'unpriced'."""
    profiles = {"priced": part("priced", 400, 80, 20000), "free": part("free", 800, 80, None)}
    demand = demand_from_dict({"name": "t", "services": [CHAT_AND_IMAGES.services[0].model_dump()]})

    def tco_cells(site: SiteProfile | None) -> tuple[dict[str, str], str]:
        text = plan_text(sizing.plan(demand, profiles, site=site, rank_by="capex", confirm_top=0, servers={}))
        rows = [re.split(r"\s{2,}", line) for line in text.splitlines()]
        header = next(row for row in rows if row[0] == "#")
        return {row[1]: row[header.index("TCO/yr USD")] for row in rows if len(row) > 1 and row[1] in profiles}, text

    cells, text = tco_cells(None)
    assert cells == {"priced": "-", "free": "-"} and "TCO/yr and tCO2e/yr: - without --site" in text
    cells, _ = tco_cells(SITE)
    assert cells["free"] == "unpriced" and cells["priced"].endswith("k")


def test_near_identical_parts_are_simulated_together():
    profiles = {"a": part("a", 400, 80), "twin": part("twin", 410, 80), "slow": part("slow", 40, 80)}
    demand = demand_from_dict({"name": "t", "services": [CHAT_AND_IMAGES.services[0].model_dump()]})
    p = sizing.plan(demand, profiles, rank_by="devices", confirm_top=1, servers={})
    by = {c.hardware: c for c in p.candidates}
    assert by["a"].options[0].method == by["twin"].options[0].method == "simulation"  # within 5%: together
    assert by["slow"].options[0].method == "approximation" and by["a"].devices == by["twin"].devices
    assert by["slow"].devices > sizing.REACH * by["a"].devices  # beyond the approximation's reach of the top
    # a part the approximation puts within its error of the top one is simulated too: it may rank above it
    near = sizing.plan(demand, {**profiles, "slow": part("slow", 100, 80)}, rank_by="devices", confirm_top=1, servers={})
    assert all(c.options[0].method == "simulation" for c in near.candidates)
    assert "3 candidates simulated: those within 1.3x of the top 1's last" in near.notes[0]
    real = sizing.plan(CHAT_AND_IMAGES, load_hardware(), ["hw_910b1", "hw_910b2", "hw_910b3"], rank_by="devices",
                       confirm_top=1)
    assert {c.hardware for c in real.candidates if c.options[0].method == "simulation"} >= {"hw_910b1", "hw_910b2"}


def test_rows_explain_alone_latency_busy_share_and_what_binds():
    p = sizing.plan(CHAT_AND_IMAGES, load_hardware(), ["nv_h100_sxm"], confirm_top=1)
    chat, images = p.candidates[0].options
    assert chat.alone["ttft_s"] < chat.alone["ttft_slo_s"] == 2 and chat.alone["tpot_slo_s"] == 0.05
    assert images.alone["image_s"] < 1.5 and "queue" in images.binds and chat.binds
    assert images.busy == pytest.approx(600 / 3600 / images.replicas * images.alone["image_s"])
    assert 0 < images.busy < images.utilization <= 1 and chat.fit and images.fit == "priors"
    assert "a lone request vs SLO" in plan_text(p)


def test_domestic_only_in_one_flag_and_compare_says_why(tmp: Path):
    out = run_cli("plan", str(EXAMPLE), "--domestic", "--site", "cn-east", "--compare", "nvidia,domestic,ascend",
                  "--json", cwd=tmp)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    profiles = load_hardware()
    assert d["candidates"] and all(profiles[c["hardware"]].domestic for c in d["candidates"])
    assert len(d["candidates"]) == sum(p.domestic and p.kind == "accelerator" for p in profiles.values())
    rows = {r["group"]: r for r in d["compare"]}
    assert "not among the candidates" in rows["nvidia"]["reason"] and rows["domestic"]["hardware"]
    assert profiles[rows["ascend"]["hardware"]].vendor == "Huawei"
    out = run_cli("plan", str(EXAMPLE), "--vendor", "huawei", "--exclude", "hw_910b*,hw_300i_duo", "--json", cwd=tmp)
    ids = {c["hardware"] for c in json.loads(out.stdout)["candidates"]}
    assert ids and all(i.startswith("hw_") and not i.startswith("hw_910b") for i in ids) and "hw_300i_duo" not in ids
    assert_one_line_error(run_cli("plan", str(EXAMPLE), "--exclude", "nvidai", cwd=tmp), "did you mean 'nvidia'")
    assert_one_line_error(run_cli("plan", str(EXAMPLE), "--vendor", "huawei", "--exclude", "huawei", cwd=tmp),
                          "no candidate is left")
    groups = run_cli("profiles", "groups", "--json", cwd=tmp)
    assert {"ascend", "domestic", "nvidia"} <= {g["name"] for g in json.loads(groups.stdout)}
    servers = {s["id"]: s for s in json.loads(run_cli("profiles", "servers", "--json", cwd=tmp).stdout)}
    assert servers["srv_hgx_h20"]["price"]["includes_accelerators"] and servers["srv_hgx_h20"]["slots"] == 8
    assert servers["srv_atlas800t_a2"]["baseboard"] and not servers["srv_pcie8"]["baseboard"]
    assert "8 (baseboard)" in run_cli("profiles", "servers", cwd=tmp).stdout
    shown = json.loads(run_cli("profiles", "show", "nv_h20", "--json", cwd=tmp).stdout)
    assert shown["server"]["id"] == "srv_hgx_h20"  # the platform plans buy it in


def test_the_shipped_fit_is_the_default_and_priors_are_one_flag_away(tmp: Path):
    args = ("plan", str(EXAMPLE), "--hardware", "nv_h100_sxm,hw_910b2", "--confirm", "0", "--json")
    shipped, priors = (json.loads(run_cli(*args, *x, cwd=tmp).stdout) for x in ((), ("--no-calibration",)))
    fits = {c["hardware"]: c["options"][0]["fit"] for c in shipped["candidates"]}
    assert fits["nv_h100_sxm"] == "fitted" and fits["hw_910b2"] == "few_points"  # its vendor's only point
    assert any("shipped fit" in n for n in shipped["notes"])
    assert {c["options"][0]["fit"] for c in priors["candidates"]} == {"priors"}
    assert any("the priors" in n for n in priors["notes"])
    cap = {c["hardware"]: c["options"][0]["capacity"] for c in shipped["candidates"]}
    assert all(not math.isclose(cap[c["hardware"]], c["options"][0]["capacity"]) for c in priors["candidates"])
    assert_one_line_error(run_cli(*args, "--no-calibration", "--calibration", "x.json", cwd=tmp), "contradict")


def test_a_vendors_only_points_are_used_for_that_part_and_engine_alone():
    from infra_bench.planner import llm_model
    from infra_bench.planner.fit import shipped

    profiles, fit = load_hardware(), shipped()

    def mbu_and_tier(model: str, hw: str, engine: str) -> tuple[float, str]:
        case = llm_model.replica(model, profiles[hw], "bf16", tp=1, engine=engine).case
        return fit.efficiency([case])[0].mbu, fit.tier(case)

    ascend, tier = mbu_and_tier("qwen3-8b", "hw_910b2", "vllm-ascend")
    assert tier == "few_points" and ascend < 0.35  # one 910B2 point: a third of NVIDIA's bandwidth efficiency
    mindie, tier = mbu_and_tier("qwen3-8b", "hw_910b2", "mindie")
    assert tier == "other_hardware" and mindie > 2 * ascend  # not carried to another engine
    sibling, tier = mbu_and_tier("qwen3-8b", "hw_910b1", "vllm-ascend")
    assert tier == "other_hardware" and sibling < 0.35  # the generation's factor (Huawei) holds for its parts
    _, tier = mbu_and_tier("llama-3.1-8b", "nv_gb200_gpu", "trt-llm")
    assert tier == "other_hardware"  # 3 GB200 rows still stand aside for their generation (B200)


def test_server_prices_convert_and_sensitivity_finds_servers_itself():
    profiles = load_hardware()
    h20 = profiles["nv_h20"]
    o = sizing.Option("chat", "llm", "fp8", 1, True, capacity=1.0, unit="req/s", replicas=8, devices=8)
    c = sizing.Candidate("nv_h20", "H20", True, None, [o], devices=8, servers=1, server="srv_hgx_h20")
    from infra_bench.planner.profiles import load_servers

    usd = cost_of(c, h20, CHAT_AND_IMAGES.services[:1], SITE, Assumptions(), load_servers()["srv_hgx_h20"])
    assert usd.currency == "USD" and usd.capex["devices"] + usd.capex["servers"] == pytest.approx(1_400_000 / 7.2)
    chat = demand_from_dict({"name": "t", "services": [CHAT_AND_IMAGES.services[0].model_dump()]})
    p = sizing.plan(chat, profiles, ["nv_gb200_gpu", "nv_h20"], site=SITE, rank_by="tco", confirm_top=0)
    rows = compare.sensitivity(p, profiles, chat.services, SITE, Assumptions())  # no servers given
    assert set(rows[0]["ranking"]) == {"nv_gb200_gpu", "nv_h20"}


def test_ranking_by_cost_or_carbon_needs_a_site_and_markets_are_codes_in_any_case(tmp: Path):
    """--rank-by tco or carbon without --site ranked nothing and blamed missing prices; --market cn treated
    every part as purchasable, where CN filters by availability."""
    assert_one_line_error(run_cli("plan", "workloads/demand-example.yaml", "--site", "cn-east", "--mixed", "--budget",
                                  "nan", cwd=Path(__file__).parents[1]), "give a finite amount")
    for rank_by in ("tco", "carbon"):
        assert_one_line_error(run_cli("plan", "workloads/demand-example.yaml", "--rank-by", rank_by,
                                      cwd=Path(__file__).parents[1]), f"--rank-by {rank_by} needs --site")
    counts = []
    for market in ("cn", "CN"):
        p = run_cli("plan", "workloads/demand-example.yaml", "--market", market, "--json", cwd=Path(__file__).parents[1])
        assert p.returncode == 0, p.stderr
        plan = json.loads(p.stdout)
        counts.append((plan["market"], sum(c["feasible"] for c in plan["candidates"])))
    assert counts[0] == counts[1] and counts[0][0] == "CN"
    assert counts[0][1] < len(plan["candidates"])
    # a market no profile records would filter nothing while the header named it; colocation needs a site
    root = Path(__file__).parents[1]
    assert_one_line_error(run_cli("plan", "workloads/demand-example.yaml", "--market", "XX", cwd=root),
                          "--market XX: no profile records availability there")
    assert_one_line_error(run_cli("plan", "workloads/demand-example.yaml", "--colocation", cwd=root),
                          "--colocation prices the power a site provisions; add --site")


def test_demand_names_and_kinds_are_checked_with_the_service_named(tmp: Path):
    """Two services of one name shared one cost-per-unit key (the first's figure was the second's); a kind that
    contradicts the model, and a field of another kind, name the service and its kind."""
    chat = "{name: chat, model: llama-3.1-8b, traffic: {requests_per_s: 5, input_len: 512, output_len: 128}, " \
           "slo: {ttft_p95_s: 2.0, tpot_p99_s: 0.05}}"
    cases = {"dup.yaml": (f"services:\n  - {chat}\n  - {chat}\n", "service name 'chat' is given to 2 services"),
             "kind.yaml": (("services:\n  - {name: img, kind: diffusion, model: llama-3.1-8b, traffic: "
                            "{images_per_hour: 10}, slo: {latency_p95_s: 8}}\n"),
                           "(img): model 'llama-3.1-8b' is an llm model, not diffusion"),
             "emb.yaml": (("services:\n  - {name: vec, model: bge-m3, traffic: {requests_per_s: 1, seq_len: 64}, "
                           "slo: {ttft_p95_s: 1}}\n"), "(bge-m3 is an embedding model)"),
             "sd.yaml": (("services:\n  - {name: img, model: sd-1.5, traffic: {requests_per_s: 1}, "
                          "slo: {latency_p95_s: 8}}\n"), "(sd-1.5 is a diffusion model)")}
    for name, (text, fragment) in cases.items():
        (tmp / name).write_text(text)
        assert_one_line_error(run_cli("plan", name, cwd=tmp), fragment)


def test_assumption_files_and_flags_add_up_and_are_checked(tmp: Path):
    """--price adds to an assumptions file's prices (it replaced them); a mistyped profile id in the file, or a
    busy power far above the TDP, is a one-line error rather than a price or a kWh silently off."""
    (tmp / "a.yaml").write_text("prices: {nv_l4: {amount: 4000, currency: USD}}\n")
    p = run_cli("plan", str(Path(__file__).parents[1] / "workloads/demand-example.yaml"), "--site", "cn-east",
                "--hardware", "nv_l4,nv_l20", "--assumptions", "a.yaml", "--price", "nv_l20=4299", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    price = {c["hardware"]: c["cost"]["capex"]["device_price"] for c in json.loads(p.stdout)["candidates"]}
    assert price == {"nv_l4": 4000, "nv_l20": 4299}  # in their own currency (device_price_currency)
    for text, fragment in (("prices: {zz_fake: {amount: 2500, currency: USD}}\n", "unknown profile 'zz_fake'"),
                           ("device_power: {nv_l20: {busy_w: 1000, source: t}}\n", "above its TDP of 275 W")):
        (tmp / "b.yaml").write_text(text)
        assert_one_line_error(run_cli("plan", str(Path(__file__).parents[1] / "workloads/demand-example.yaml"),
                                      "--site", "cn-east", "--assumptions", "b.yaml", cwd=tmp), fragment)
