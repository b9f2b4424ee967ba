"""Cost and carbon: a hand-computed TCO, currencies, the mixed-fleet integer program against brute
force, sensitivity, and the plan options end to end."""
import itertools
import json
import math
import random
import statistics
from pathlib import Path

import pytest

from infra_bench.errors import UserError
from infra_bench.planner import compare, sizing
from infra_bench.planner.buckets import split, whole
from infra_bench.planner.cost import Assumptions, DevicePower, cost_of, load_assumptions
from infra_bench.planner.demand import demand_from_dict, load_demand
from infra_bench.planner.fit import Fit
from infra_bench.planner.fleet import optimise
from infra_bench.planner.profiles import (
    HardwareProfile,
    ServerProfile,
    SiteProfile,
    load_hardware,
    load_servers,
    load_sites,
)
from infra_bench.planner.selection import catalog
from infra_bench.report.plan import sensitivity_text

from .conftest import assert_one_line_error, read_records, run_cli, write_spec

SITE = SiteProfile(id="s", region="test", grid_kgco2_per_kwh=0.5, grid_factor_type="average", grid_source="test",
                   power_price=0.1, power_currency="USD", power_source="test", pue=1.5, pue_source="test")
DEMAND = demand_from_dict({"headroom": 0, "redundancy": 0, "services": [{
    "name": "chat", "model": "llama-3.1-8b", "traffic": {"requests_per_s": 8, "input_len": 512, "output_len": 100},
    "slo": {"ttft_p95_s": 2, "tpot_p99_s": 0.1}}]})


def card(hid: str, price: float, tdp: float = 500) -> HardwareProfile:
    return HardwareProfile(id=hid, kind="accelerator", vendor="Test", model=hid, peak_tflops={"bf16": 100},
                           memory_gb=80, memory_bandwidth_tbs=2, tdp_w=tdp, typical_node_size=8, sources=["test"],
                           price={"amount": price, "currency": "USD", "date": "2026", "source": "test"})


def candidate(hid: str, replicas: int, capacity: float, tp: int = 1) -> sizing.Candidate:
    o = sizing.Option("chat", "llm", "bf16", tp, True, capacity=capacity, unit="req/s", replicas=replicas,
                      devices=replicas * tp, method="simulation")
    return sizing.Candidate(hid, hid, True, None, [o], devices=replicas * tp, servers=1)


def test_hand_computed_tco_and_carbon():
    c = cost_of(candidate("a", 2, 10.0), card("a", 10000), DEMAND.services, SITE, Assumptions())
    assert c.capex["total"] == pytest.approx(20000 + 16000 + 0.05 * 36000)  # devices, hosts, network
    kwh = 2 * 500 * 1.8 * (0.3 + 0.7 * 0.4) / 1000 * 8760 * 1.5  # utilization 8 / (2 x 10)
    assert c.energy["kwh_per_year"] == pytest.approx(kwh) and c.energy["energy_source"] == "estimated"
    assert c.per_year["total"] == pytest.approx(37800 / 4 + kwh * 0.1 + 0.06 * 37800)
    assert c.carbon["operational_kg_per_year"] == pytest.approx(kwh * 0.5)
    assert c.carbon["total_kg_per_year"] == pytest.approx(kwh * 0.5 + 2 * 320 / 5)
    tokens_m = 8 * 100 * 3600 * 8760 / 1e6
    assert c.per_unit["chat"]["cost"] == pytest.approx(c.per_year["total"] / tokens_m)
    assert c.lifetime_total == pytest.approx(4 * c.per_year["total"])


def test_modules_on_a_baseboard_are_bought_for_every_slot_and_pcie_cards_one_by_one():
    """Three devices in one 8-slot server: a baseboard (HGX, OAM, Atlas modules) buys eight, a PCIe server
    three; the unused five are capex, embodied carbon, provisioned power and an idle draw."""
    def box(baseboard: bool) -> ServerProfile:
        return ServerProfile(id="srv", name="box", vendor="T", hosts=["a"], slots=8, baseboard=baseboard, sources=["q"],
                             price={"amount": 20000, "currency": "USD", "date": "2026", "source": "quote",
                                    "includes_accelerators": False})
    pcie, module = (cost_of(candidate("a", 3, 10.0), card("a", 10000), DEMAND.services, SITE, Assumptions(), box(b))
                    for b in (False, True))
    assert pcie.capex["devices"] == 30000 and module.capex["devices"] == 80000
    assert pcie.capex["servers"] == module.capex["servers"] == 20000 and module.capex["accelerators_bought"] == 8
    unpriced = ServerProfile(id="srv", name="box", vendor="T", hosts=["a"], slots=8, sources=["q"])
    own = cost_of(candidate("a", 3, 10.0), card("a", 10000), DEMAND.services, SITE,
                  Assumptions(host_usd_per_accelerator=5000), unpriced).capex["server_basis"]
    assert "5,000 USD per slot" in own and "8,000" not in own and "your assumptions file" in own
    assert any(n.startswith("8 a bought for the 3 used") for n in module.notes) and not any("bought" in n for n in pcie.notes)
    assert module.carbon["embodied_kg_per_year"] == pytest.approx(8 * 320 / 5)
    assert module.energy["it_kw_avg"] - pcie.energy["it_kw_avg"] == pytest.approx(5 * 500 * 0.3 / 1000)
    assert sizing.peak_kw(3, 1, card("a", 1), box(True)) - sizing.peak_kw(3, 1, card("a", 1), box(False)) == 2.5


def test_fleet_energy_draws_the_power_behind_plans_j_per_token():
    """The yearly kWh and the J/token plan shows rest on one device power, the power model's at the
    service's capacity (not TDP): at full utilization the devices' kW is J/token x the tokens/s served."""
    hw = load_hardware()["nv_h100_sxm"]
    c = sizing.plan(DEMAND, {hw.id: hw}, site=SITE, confirm_top=0).candidates[0]
    (o,) = c.options
    e = cost_of(c, hw, DEMAND.services, SITE, Assumptions(utilization=1.0)).energy
    assert e["device_busy_w"] == pytest.approx(o.energy["avg_power_w"]) and e["device_busy_w"] < hw.tdp_w
    assert "power model" in e["device_power_source"] and e["energy_source"] == "estimated"
    tokens_per_s = o.replicas * o.capacity * DEMAND.services[0].traffic.output_len.mean
    assert o.energy["j_per_token"] * tokens_per_s == pytest.approx(c.devices * e["device_busy_w"])


def test_an_assumed_device_power_sets_j_per_token_as_it_sets_the_kwh():
    """An assumptions file's device_power moved the yearly kWh while the plan row's J/token kept the power
    model's draw; both now use the given watts, labelled as given and still `estimated`."""
    hw = load_hardware()["nv_h100_sxm"]
    given = Assumptions(utilization=1.0, device_power={hw.id: DevicePower(busy_w=420, source="our meter, 2026-11")})
    for top, method in ((0, "approximation"), (1, "simulation")):  # confirmed: J/token at the simulated capacity
        p = sizing.plan(DEMAND, {hw.id: hw}, site=SITE, confirm_top=top, assumptions=given)
        assert any(n.startswith("energy: busy power as your assumptions file gives it for nv_h100_sxm") for n in p.notes)
        c = p.candidates[0]
        (o,) = c.options
        e = cost_of(c, hw, DEMAND.services, SITE, given).energy
        assert o.method == method and o.energy["avg_power_w"] == e["device_busy_w"] == 420
        assert "as given (our meter, 2026-11)" in o.energy["basis"] and o.energy["energy_source"] == "estimated"
        tokens_per_s = o.replicas * o.capacity * DEMAND.services[0].traffic.output_len.mean
        assert o.energy["j_per_token"] * tokens_per_s == pytest.approx(c.devices * 420)


def test_measured_device_power_replaces_tdp_and_is_labelled():
    measured = Assumptions(device_power={"a": DevicePower(busy_w=300, source="record r/c", measured=True)})
    given = Assumptions(device_power={"a": DevicePower(busy_w=300, source="vendor sheet")})
    m, g = (cost_of(candidate("a", 2, 10.0), card("a", 10000), DEMAND.services, SITE, x) for x in (measured, given))
    kwh = 2 * (300 + 0.8 * 500) * (0.3 + 0.7 * 0.4) / 1000 * 8760 * 1.5  # device measured, host share 0.8 x TDP
    assert m.energy["kwh_per_year"] == pytest.approx(kwh) and m.energy["device_busy_w"] == 300
    assert m.energy["energy_source"] == "measured_device" and m.energy["device_power_source"] == "record r/c"
    assert g.energy["kwh_per_year"] == pytest.approx(kwh) and g.energy["energy_source"] == "estimated"


def test_plan_uses_power_measured_in_records(tmp: Path):
    """A real run, its record re-labelled as an NVML-measured H100 cell (no GPU here), then calibrate
    and plan: the H100's energy comes from the record; the CPU-estimated record gives no power fit."""
    write_spec(tmp, "s.yaml", min_iters=2, warmup=0)
    assert run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp).returncode == 0
    (rec,) = read_records(tmp / "res")
    assert rec["metrics"]["energy_source"] == "estimated"
    # an estimated-energy record gives no power fit; where no profile matches this CPU it calibrates nothing at
    # all, which is said in one line with exit 2
    p = run_cli("calibrate", rec["run_id"], "--results", "res", "--out", "est.json", cwd=tmp)
    if p.returncode == 0:
        assert json.loads((tmp / "est.json").read_text())["power_fits"] == {}
    else:
        assert_one_line_error(p, "can calibrate the planner (1 record(s)): ")
    rec["device"]["model"] = "NVIDIA H100 80GB HBM3"
    rec["metrics"] |= {"energy_source": "nvml_counter", "energy_scope": "device", "avg_power_w": 455.0}
    (tmp / "res" / rec["run_id"] / "records.jsonl").write_text(json.dumps(rec) + "\n")
    p = run_cli("calibrate", rec["run_id"], "--results", "res", "--out", "cal.json", cwd=tmp)
    assert p.returncode == 0 and "455" in p.stdout, p.stdout + p.stderr
    args = ("plan", str(Path(__file__).parent.parent / "workloads/demand-example.yaml"), "--hardware", "nv_h100_sxm",
            "--site", "us-average", "--confirm", "0", "--json")
    with_cal, without = (json.loads(run_cli(*args, *extra, cwd=tmp).stdout)
                         for extra in (("--calibration", "cal.json"), ()))
    e, e0 = with_cal["candidates"][0]["cost"]["energy"], without["candidates"][0]["cost"]["energy"]
    assert e["energy_source"] == "measured_device" and e["device_busy_w"] == 455.0
    assert rec["cell_id"] in e["device_power_source"] and e0["energy_source"] == "estimated"
    devices, servers = with_cal["candidates"][0]["devices"], with_cal["candidates"][0]["servers"]
    host_w = 10200 - 8 * 700  # HGX H100: maximum power less its GPUs' TDP (servers.yaml)
    spare_w = (8 * servers - devices) * 700 * 0.3  # GPUs bought with the server but unused draw their idle share
    assert e["it_kw_avg"] == pytest.approx(
        ((devices * 455 + servers * host_w) * (0.3 + 0.7 * e["utilization"]) + spare_w) / 1000)
    assert any("measured for nv_h100_sxm" in n for n in with_cal["notes"])


def test_tokens_per_second_are_counted_on_the_lengths_as_drawn():
    """output_len mean 500 capped at 520: requests average ~323 tokens as drawn, so 5,000 tokens/s is ~15.5 req/s,
    not 10, and a unit's cost divides by the tokens served (it divided by 5,000 while sizing for 3,230)."""
    svc = demand_from_dict({"services": [{
        "name": "chat", "model": "llama-3.1-8b", "slo": {"ttft_p95_s": 2, "tpot_p99_s": 0.1},
        "traffic": {"output_tokens_per_s": 5000, "input_len": 512,
                    "output_len": {"mean": 500, "distribution": "exponential", "max": 520}}}]}).services[0]
    drawn = svc.traffic.output_len.drawn_mean
    assert 300 < drawn < 350 and svc.traffic.rate == pytest.approx(5000 / drawn)
    assert svc.units_per_hour() == pytest.approx(5000 * 3600)
    fixed = demand_from_dict({"services": [{**svc.model_dump(), "traffic": {"requests_per_s": 2, "output_len": 100}}]})
    assert fixed.services[0].traffic.output_len.drawn_mean == 100.0
    p = sizing.plan(demand_from_dict({"services": [svc.model_dump()]}), load_hardware(), ["nv_l40s"], confirm_top=0)
    assert any("output_len exponential of mean 500 capped at 520" in n and "averages 3" in n for n in p.notes)


def test_currencies_are_explicit():
    cn = SITE.model_copy(update={"power_currency": "CNY", "power_price": 0.72})
    usd = cost_of(candidate("a", 2, 10.0), card("a", 10000), DEMAND.services, SITE, Assumptions())
    cny = cost_of(candidate("a", 2, 10.0), card("a", 10000), DEMAND.services, cn, Assumptions())
    assert cny.currency == "CNY" and cny.capex["total"] == pytest.approx(usd.capex["total"] * 7.2)
    assert cny.per_year["energy"] == pytest.approx(usd.per_year["energy"] * 7.2)  # 0.72 CNY = 0.1 USD x 7.2
    with pytest.raises(UserError, match="no exchange rate for GBP"):
        cost_of(candidate("a", 2, 10.0), card("a", 10000), DEMAND.services, SITE, Assumptions(currency="GBP"))
    gbp = cost_of(candidate("a", 2, 10.0), card("a", 10000), DEMAND.services, SITE,
                  load_assumptions(None, {"currency": "GBP", "fx": {"GBP": 0.8}}))
    assert gbp.capex["total"] == pytest.approx(usd.capex["total"] * 0.8)
    eur = cost_of(candidate("a", 2, 10.0), card("a", 10000), DEMAND.services, SITE, Assumptions(currency="EUR"))
    assert eur.capex["total"] == pytest.approx(usd.capex["total"] * 0.924)  # a shipped site's currency has a rate


def test_a_plan_says_which_rate_converted_its_money_with_date_and_source():
    """A CNY plan of a USD-priced part showed CNY figures without saying the rate (7.2, China Briefing 2024)
    that made them; a rate of your own is said to be yours; a plan with nothing to convert says nothing."""
    cn = SITE.model_copy(update={"power_currency": "CNY", "power_price": 0.72})
    plans = {name: sizing.plan(DEMAND, {"a": card("a", 10000)}, site=site, rank_by="tco", confirm_top=0, servers={},
                               assumptions=a)
             for name, site, a in (("cny", cn, Assumptions()), ("usd", SITE, Assumptions()),
                                   ("own", cn, load_assumptions(None, {"fx": {"CNY": 7.1}})))}
    assert plans["cny"].candidates[0].cost["converted_from"] == ["USD"]
    note = next(n for n in plans["cny"].notes if n.startswith("currency:"))
    assert "converted to CNY from USD" in note and "7.2 CNY per USD" in note and "China Briefing 2024" in note
    assert "7.1 CNY per USD, as given" in next(n for n in plans["own"].notes if n.startswith("currency:"))
    assert not any(n.startswith("currency:") for n in plans["usd"].notes)


def test_a_rate_of_your_own_keeps_the_shipped_ones(tmp: Path):
    """--fx GBP=0.79 (or an assumptions file's fx) replaced the default table but for USD and CNY, so the EUR rate of
    the shipped eu-average site was lost: plan --site eu-average --fx GBP=0.79 failed with 'no exchange rate for
    EUR', and a plan in GBP at that site could not be made at all."""
    a = load_assumptions(None, {"fx": {"GBP": 0.79}})
    assert a.fx == {"USD": 1.0, "CNY": 7.2, "EUR": 0.924, "GBP": 0.79}
    assert a.convert(0.924, "EUR", "GBP") == pytest.approx(0.79)
    assert load_assumptions(None, {"fx": {"EUR": 0.9}}).fx["EUR"] == 0.9  # a given rate still wins
    example = Path(__file__).parents[1] / "workloads" / "demand-example.yaml"
    args = ("plan", str(example), "--site", "eu-average", "--hardware", "nv_l40s", "--json")
    eur = run_cli(*args, cwd=tmp)
    gbp = run_cli(*args, "--currency", "GBP", "--fx", "GBP=0.79", cwd=tmp)
    assert gbp.returncode == 0, gbp.stderr
    e, g = (json.loads(p.stdout)["candidates"][0]["cost"] for p in (eur, gbp))
    assert g["currency"] == "GBP" and g["per_year"]["energy"] == pytest.approx(e["per_year"]["energy"] / 0.924 * 0.79)
    assert g["capex"]["total"] == pytest.approx(e["capex"]["total"] / 0.924 * 0.79)


def test_currency_codes_and_nested_values_are_read_in_any_case_and_explained(tmp: Path):
    """--currency eur and --fx eur=0.92 were refused (the first blamed on 'assumptions'), a file's lower-case fx
    key was not found, and a price given as a bare number read 'instance of Money'."""
    example = Path(__file__).parent.parent / "workloads/demand-example.yaml"
    p = run_cli("plan", str(example), "--site", "cn-east", "--currency", "eur", "--fx", "eur=0.92", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["candidates"][0]["cost"]["currency"] == "EUR"
    (tmp / "a.yaml").write_text("currency: eur\nfx: {eur: 0.92}\n")
    assert run_cli("plan", str(example), "--site", "cn-east", "--assumptions", "a.yaml", cwd=tmp).returncode == 0
    (tmp / "b.yaml").write_text("prices:\n  nv_h100_sxm: 30000\n")
    assert_one_line_error(run_cli("plan", str(example), "--assumptions", "b.yaml", cwd=tmp),
                          "field 'prices.nv_h100_sxm': expects a mapping of amount, currency (got 30000)")


def test_mixed_fleet_finds_the_brute_force_optimum_and_respects_limits():
    hw = {"a": card("a", 30000, 700), "b": card("b", 9000, 300)}
    plan = sizing.Plan("t", "s", None, "tco", [candidate("a", 1, 7.0), candidate("b", 1, 2.5)], [])
    per = {h: cost_of(sizing.Candidate(h, h, True, None, [], devices=1), hw[h], DEMAND.services, SITE,
                      Assumptions(utilization=1.0)).per_year["total"] for h in hw}

    def best(limit_a=None):
        options = [(na, nb) for na, nb in itertools.product(range(5), range(10))
                   if 7.0 * na + 2.5 * nb >= 8 and (limit_a is None or na <= limit_a)]
        return min(options, key=lambda x: x[0] * per["a"] + x[1] * per["b"])

    f = optimise(plan, DEMAND, hw, SITE, Assumptions())
    assert f.feasible and (f.devices.get("a", 0), f.devices.get("b", 0)) == best()
    assert f.tco_per_year == pytest.approx(sum(n * per[h] for h, n in f.devices.items()))
    g = optimise(plan, DEMAND, hw, SITE, Assumptions(), limits={"a": 0})
    assert g.devices == {"b": best(limit_a=0)[1]}
    h = optimise(plan, DEMAND, hw, SITE, Assumptions(), limits={"a": 0, "b": 2})
    assert not h.feasible and "within the --limit caps" in h.reason
    # a budget below the cheapest mix: the reason gives that mix's capex
    k = optimise(plan, DEMAND, hw, SITE, Assumptions(), budget=100.0)
    assert not k.feasible and "the budget 100 USD is below the cheapest mix's capex of " in k.reason


def test_a_limit_on_a_part_the_plan_left_out_is_said_to_cap_nothing(tmp: Path):
    """--limit on a part the site's market excludes (or that is no candidate) was dropped without a word."""
    (tmp / "d.yaml").write_text("services:\n  - model: llama-3.1-8b\n    traffic: {requests_per_s: 2, input_len: "
                                "{mean: 512}, output_len: {mean: 128}}\n    slo: {ttft_p95_s: 2, tpot_p99_s: 0.05}\n")
    args = ("plan", "d.yaml", "--site", "cn-east", "--mixed", "--hardware", "hw_910b2,nv_h100_sxm", "--confirm", "0",
            "--limit", "nv_h100_sxm=8", "--limit", "amd_mi300x=4")
    p = run_cli(*args, cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "note: --limit nv_h100_sxm=8 caps nothing: nv_h100_sxm serves no service here: not available in CN" in p.stdout
    assert "note: --limit amd_mi300x=4 caps nothing: amd_mi300x is not among the candidates" in p.stdout
    idle = json.loads(run_cli(*args, "--json", cwd=tmp).stdout)["mixed"]["idle_limits"]
    assert [line.split(" caps")[0] for line in idle] == ["--limit nv_h100_sxm=8", "--limit amd_mi300x=4"]


def test_a_mixed_fleets_devices_draw_the_power_of_what_they_serve_in_the_mix():
    """A type's devices in the mix were costed at the busy power of the services its single-type plan gave them:
    on the example demand at cn-east, nv_l20 serves only the chat in the mix (204 W by the power model) but drew
    251 W (its plan's chat, images and voice, the last two at TDP), and the 300I Duo's 16 image and voice devices
    (TDP, 150 W) drew 104 W (its plan is mostly chat), so the mix's 731,759 CNY a year was 2,595 CNY (0.35%) low."""
    demand = load_demand(Path(__file__).parents[1] / "workloads" / "demand-example.yaml")
    hw = load_hardware()
    profiles = {h: hw[h] for h in ("nv_l20", "hw_300i_duo")}
    site = load_sites()["cn-east"]
    p = sizing.plan(demand, profiles, site=site, rank_by="tco", confirm_top=2)
    fleet = optimise(p, demand, profiles, site, Assumptions())
    by = {c.hardware: c for c in p.candidates}
    servers = load_servers()
    assert set(fleet.devices) == {"nv_l20", "hw_300i_duo"}
    whole = 0.0
    for h, n in fleet.devices.items():
        drawn = []
        for asg in (x for x in fleet.assignments if x["hardware"] == h):
            (o,) = [o for o in by[h].options if (o.service, o.precision, o.tp) == (asg["service"], asg["precision"],
                                                                                   asg["tp"])]
            drawn.append((asg["devices"], o.energy["avg_power_w"] if o.energy else hw[h].tdp_w))
        watts = sum(d * w for d, w in drawn) / sum(d for d, _ in drawn)
        busy = Assumptions(utilization=1 - demand.headroom,
                           device_power={h: DevicePower(busy_w=watts, source="what it serves in the mix")})
        c = sizing.Candidate(h, h, True, None, [], devices=n, servers=fleet.servers[h])
        whole += cost_of(c, hw[h], demand.services, site, busy, servers[by[h].server]).per_year["total"]
    assert fleet.tco_per_year == pytest.approx(whole, rel=1e-9)


def test_mixed_fleets_spare_replica_is_one_of_the_largest_type_the_pool_uses():
    """N+1 in a mixed pool: the spare covers the largest replica the pool uses, not the largest of any costed
    type (that reserved 7 req/s for a pool served by 2.5 req/s replicas, so the mix could cost more than
    the best single type); a type --limit rules out is not the single type compared against."""
    hw = {"a": card("a", 30000, 700), "b": card("b", 9000, 300)}
    plan = sizing.Plan("t", "s", None, "tco", [candidate("a", 1, 7.0), candidate("b", 1, 2.5)], [])
    per = {h: cost_of(sizing.Candidate(h, h, True, None, [], devices=1), hw[h], DEMAND.services, SITE,
                      Assumptions(utilization=1.0)).per_year["total"] for h in hw}
    n1 = DEMAND.model_copy(update={"redundancy": 1})
    options = [(na, nb) for na, nb in itertools.product(range(5), range(12))
               if 7.0 * na + 2.5 * nb >= 8 + max([7.0] * (na > 0) + [2.5] * (nb > 0), default=0)]
    best = min(options, key=lambda x: x[0] * per["a"] + x[1] * per["b"])
    f = optimise(plan, n1, hw, SITE, Assumptions())
    assert f.feasible and (f.devices.get("a", 0), f.devices.get("b", 0)) == best == (0, 5)
    assert f.tco_per_year == pytest.approx(sum(n * per[h] for h, n in f.devices.items()))
    single = sizing.Candidate("a", "a", True, None, [candidate("a", 3, 7.0).options[0]], devices=3, servers=1)
    single.cost = cost_of(single, hw["a"], n1.services, SITE, Assumptions()).to_dict()
    limited = optimise(sizing.Plan("t", "s", None, "tco", [single, candidate("b", 1, 2.5)], []), n1, hw, SITE,
                       Assumptions(), limits={"a": 0})
    assert limited.devices == {"b": 5} and limited.best_single is None


def test_request_size_buckets_split_the_prompt_distribution():
    svc = demand_from_dict({"services": [{"name": "c", "model": "llama-3.1-8b", "traffic": {
        "requests_per_s": 4, "input_len": {"mean": 2048, "distribution": "exponential"}, "output_len": 256},
        "slo": {"ttft_p95_s": 1, "tpot_p99_s": 0.1}}]}).services[0]
    short, long = split(0, svc)
    assert short.share == long.share == 0.5 and short.label == "in<=1420" and long.label == "in>1420"
    assert (short.input.mean + long.input.mean) / 2 == pytest.approx(whole(svc).input.mean, rel=1e-3)
    assert whole(svc).input.mean == pytest.approx(2048 * (1 - math.exp(-4)), rel=0.01)  # capped at 4 x mean
    rng = random.Random(1)
    draws = [short.sampler()(rng)[0] for _ in range(4000)]
    assert max(draws) <= 1420 and statistics.mean(draws) == pytest.approx(short.input.mean, rel=0.03)
    assert len(split(0, DEMAND.services[0])) == 1  # fixed prompts: nothing to split


def test_mixed_fleet_splits_by_request_size_when_it_pays():
    """The integer program serves a service whole or split into its request-size pools, whichever costs less,
    each pool covering its share plus its own N+1 spare. Hand-made columns (capacities after 20% headroom in
    the comments): whole, 14 fast replicas (3.2 req/s each, 40 + 3.2 spare); split, 6 slow replicas for the
    short prompts (4.8 each, 20 + 4.8) and 10 fast for the long ones (2.4 each, 20 + 2.4): 106 against 140."""
    from infra_bench.planner.fleet import Column, UnitCost, _solve

    demand = demand_from_dict({"headroom": 0.2, "redundancy": 1, "services": [{
        "name": "chat", "model": "llama-3.1-8b", "traffic": {"requests_per_s": 40, "input_len": {
            "mean": 2048, "distribution": "exponential"}, "output_len": 256},
        "slo": {"ttft_p95_s": 1.0, "tpot_p99_s": 0.1}}]})
    short, long = split(0, demand.services[0])

    def col(pool, share, hw, capacity):
        o = sizing.Option("chat", "llm", "bf16", 1, True, capacity=capacity, unit="req/s", method="simulation")
        return Column(0, pool, share, hw, o, capacity, None)
    cols = [col("whole", 1.0, "fast", 4.0), col("whole", 1.0, "slow", 0.2), col(short.label, 0.5, "slow", 6.0),
            col(short.label, 0.5, "fast", 6.0), col(long.label, 0.5, "fast", 3.0)]
    cost = {"fast": UnitCost(10.0, 100.0, 0.0, 0.0, 0), "slow": UnitCost(1.0, 10.0, 0.0, 0.0, 0)}
    (x, is_split, tco, _), _ = _solve(cols, {0: [short, long]}, demand, cost, {}, None)
    assert is_split == {0: True} and list(x) == [0, 0, 6, 0, 10] and tco == pytest.approx(106)
    (x, is_split, tco, _), _ = _solve(cols, {0: [short, long]}, demand, cost, {"fast": 9}, None)
    # nine fast replicas cannot carry the long pool (21.6 < 22.4): whole, 9 fast + 90 slow (0.16 each; 43.2 in all)
    assert is_split == {0: False} and list(x[:2]) == [9, 90] and tco == pytest.approx(9 * 10 + 90 * 1)
    whole_only = [c for c in cols if c.pool == "whole"]
    assert _solve(whole_only, {}, demand, cost, {}, None)[0][2] == pytest.approx(140)


def test_a_bucket_pool_is_approximated_and_simulated_on_its_own_lengths():
    """A request-size pool's configuration is ranked by the approximation over its own drawn requests and
    confirmed by simulating them; the two agree within 25% (tests/test_plan.py has the whole service's)."""
    from infra_bench.planner.fleet import _bucket_column

    hw = card("slow", 2000, 300).model_copy(update={"peak_tflops": {"bf16": 150}})
    cal = {"kind": "infra-bench calibration", "version": 2, "llm": Fit.uniform().to_dict(), "media_fits": {},
           "power_fits": {}}
    svc = demand_from_dict({"headroom": 0.2, "redundancy": 1, "services": [{
        "name": "chat", "model": "llama-3.1-8b", "traffic": {"requests_per_s": 40, "input_len": {
            "mean": 2048, "distribution": "exponential"}, "output_len": {"mean": 256, "distribution": "exponential"}},
        "slo": {"ttft_p95_s": 1.0, "tpot_p99_s": 0.1}}]}).services[0]
    for bucket in split(0, svc):
        c = _bucket_column(bucket, svc, "chat", hw, cal)
        simulated = c.simulate()
        assert c.option.method == "approximation" and 0.75 < c.capacity / simulated < 1.25
        _, r = sizing.llm_option(bucket.service_for(svc), "chat", hw, c.option.precision, c.option.tp, 0, 0, cal,
                                 bucket)
        assert simulated == pytest.approx(sizing.simulate_llm(r, bucket.service_for(svc), bucket.sampler()).rate)


def test_sensitivity_and_groups_on_a_china_site():
    profiles, site = load_hardware(), load_sites()["cn-east"]
    p = sizing.plan(DEMAND, profiles, site=site, rank_by="tco", confirm_top=1)
    rows = {r["group"]: r for r in compare.by_group(p, catalog(profiles), ["domestic", "nvidia"])}
    assert profiles[rows["domestic"]["hardware"]].domestic
    nv = profiles[rows["nvidia"]["hardware"]]
    assert nv.vendor == "NVIDIA" and nv.available_in("CN") is not False  # banned parts never win in CN
    sens = {r["scenario"]: r for r in compare.sensitivity(p, profiles, DEMAND.services, site, Assumptions())}
    top = sens["base"]["ranking"][0]
    assert sens["device price +20%"]["tco_per_year"][top] > sens["base"]["tco_per_year"][top]
    assert sens["lifetime 6 y"]["tco_per_year"][top] < sens["lifetime 3 y"]["tco_per_year"][top]
    # rough (approximated, not simulated) candidates are marked in both tables, as the plan table marks them
    rough = {c.hardware for c in p.candidates if c.feasible and any(o.method == "approximation" for o in c.options)}
    assert {r["hardware"] for r in rows.values() if r["approximated"]} <= rough
    assert set(sens["base"]["approximated"]) == rough & set(sens["base"]["ranking"]) != set()  # confirm_top=1
    text = sensitivity_text(list(sens.values()), "CNY")
    assert all(f"~{h} " in text for h in sens["base"]["approximated"]) and "thousands of CNY" in text


def test_plan_cost_options_end_to_end(tmp: Path):
    example = Path(__file__).parents[1] / "workloads" / "demand-example.yaml"
    p = run_cli("plan", str(example), "--site", "cn-east", "--compare", "domestic,nvidia", "--mixed", "--json",
                "--price", "hw_910b2=120000CNY", cwd=tmp)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["rank_by"] == "tco" and {r["group"] for r in d["compare"]} == {"domestic", "nvidia"}
    b2 = next(c for c in d["candidates"] if c["hardware"] == "hw_910b2")
    assert b2["cost"]["capex"]["device_price"] == 120000 and b2["cost"]["currency"] == "CNY"
    assert d["mixed"]["feasible"] and d["mixed"]["tco_per_year"] <= d["mixed"]["best_single"]["tco_per_year"] + 1e-6
    assert_one_line_error(run_cli("plan", str(example), "--mixed", cwd=tmp), "--mixed needs --site")
    short = run_cli("plan", str(example), "--site", "cn-east", "--mixed", "--budget", "100", cwd=tmp)
    assert_one_line_error(short, "--mixed found no fleet: the budget 100 CNY is below the cheapest mix's capex")
    assert "plan for 'assistant'" in short.stdout and "cheapest mix" not in short.stdout  # the plan, the why once
    assert_one_line_error(run_cli("plan", str(example), "--fx", "EUR:0.9", cwd=tmp), "expected CUR=UNITS_PER_USD")
    assert_one_line_error(run_cli("plan", str(example), "--price", "hw_910x=1", cwd=tmp), "did you mean")
    assert_one_line_error(run_cli("plan", str(example), "--site", "cn-east", "--currency", "GBP", cwd=tmp),
                          "no exchange rate for GBP")
    eu = run_cli("plan", str(example), "--site", "eu-average", "--json", cwd=tmp)  # a shipped site needs no --fx
    assert eu.returncode == 0, eu.stderr
    assert json.loads(eu.stdout)["candidates"][0]["cost"]["currency"] == "EUR"


def test_a_western_hubs_domestic_chip_subsidy_prices_only_domestic_parts():
    """cn-west-hub's 0.40 CNY/kWh is a 2025 subsidy for domestic-chip data centres; an NVIDIA part there pays the
    hub's base price (~30% below the 0.63 average: 0.44), and the plan says which price each part got. A subsidy
    without its source, or above the base price, is refused."""
    hub = load_sites()["cn-west-hub"]
    assert (hub.power_price, hub.domestic_power_price) == (0.44, 0.40) and "domestic-chip" in hub.domestic_power_source
    profiles = load_hardware()
    p = sizing.plan(DEMAND, {h: profiles[h] for h in ("nv_l20", "hw_910b2")}, site=hub, rank_by="tco", confirm_top=0)
    by = {c.hardware: c for c in p.candidates}
    for hid, price in (("nv_l20", 0.44), ("hw_910b2", 0.40)):
        cost = by[hid].cost
        assert cost["energy"]["power_price"] == price, hid
        assert cost["per_year"]["energy"] == pytest.approx(cost["energy"]["kwh_per_year"] * price)
        assert any(n.startswith(f"power at {price:g} CNY/kWh") for n in by[hid].notes), by[hid].notes
    assert "subsidy for domestic parts only, and nv_l20 is not one" in by["nv_l20"].cost["energy"]["power_price_basis"]
    fields = hub.model_dump(exclude={"id", "domestic_power_source"})
    with pytest.raises(ValueError, match="domestic_power_price has no domestic_power_source"):
        SiteProfile(id="x", **fields)
    with pytest.raises(ValueError, match="a subsidy lowers the price"):
        SiteProfile(id="x", **(fields | {"domestic_power_price": 0.5, "domestic_power_source": "a tariff"}))


def test_an_atlas_300i_duo_is_two_devices_bought_as_one_card(tmp: Path):
    """The 300I Duo carries two 310P chips, each its own device of 48 GB at half the card's 408 GB/s; profiled as
    one 96 GB device, a 65.5 GB model 'fit one device' with the whole bandwidth. Per chip, it runs TP 2 across the
    card, devices are bought in whole cards (three used are two cards) at half a card's price each, the host
    estimate stays per card slot, and the plan says 2 devices = 1 card."""
    profiles = load_hardware()
    duo = profiles["hw_300i_duo"]
    assert (duo.devices_per_card, duo.memory_gb, duo.memory_bandwidth_tbs, duo.tdp_w) == (2, 48, 0.204, 75)
    assert duo.price.amount == 700 and duo.price.currency == "USD"
    server = load_servers()["srv_atlas800_3000"]
    assert server.slots == 8  # four cards
    demand = demand_from_dict({"services": [{
        "name": "chat", "model": "qwen2.5-32b", "precision": "fp16",
        "traffic": {"requests_per_s": 0.2, "input_len": 512, "output_len": 64},
        "slo": {"ttft_p95_s": 10, "tpot_p99_s": 2.0}}]})
    (c,) = sizing.plan(demand, {"hw_300i_duo": duo}, site=SITE, confirm_top=0, servers={server.id: server}).candidates
    (o,) = c.options
    assert c.feasible and o.tp == 2 and c.devices % 2 == 0
    assert any(n.startswith(f"2 devices = 1 card: hw_300i_duo's figures are per device (chip); {c.devices} devices "
                            f"bought = {c.devices // 2} cards") for n in c.notes), c.notes
    three = cost_of(candidate("hw_300i_duo", 3, 1.0), duo, DEMAND.services, SITE, Assumptions(), server)
    assert three.capex["accelerators_bought"] == 4 and three.capex["devices"] == pytest.approx(4 * 700)
    assert three.capex["servers"] == pytest.approx(4 * 8000)  # the estimated host: 8,000 USD per card slot
    assert any(n.endswith("4 devices bought = 2 cards, for the 3 used") for n in three.notes), three.notes
    (tmp / "mine").mkdir()
    (tmp / "mine" / "servers.yaml").write_text(json.dumps({"srv_duo3": {
        "name": "odd", "vendor": "T", "hosts": ["hw_300i_duo"], "slots": 3, "sources": ["test"]}}))
    assert_one_line_error(run_cli("profiles", "servers", "--profiles", "mine", cwd=tmp),
                          "server 'srv_duo3': 3 slots do not hold whole cards of hw_300i_duo (2 devices per card)")
