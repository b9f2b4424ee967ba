"""The planner's power model: its shipped weights are what benchmarks/power_fit.py fits to the measured runs,
a busy device never draws more than its TDP, and the J/token interval carries the power and throughput
intervals."""
from __future__ import annotations

import math

import numpy as np
import pytest

from infra_bench.planner import power

from .conftest import benchmark_script


def test_the_shipped_weights_are_the_fit_of_the_measured_runs():
    """Refit from workloads/reference/power_measurements.csv: the same weights as the shipped file, which
    sum to 1 with the network's, and the fit is closer to the measurements than GenZ's split it replaced."""
    pf = benchmark_script("power_fit")
    rows = pf.rows()
    u = np.array([pf.utilisation(r) for r in rows])
    frac = np.array([float(r["avg_power_w"]) for r in rows]) / u[:, 2]
    weights = pf.fit(u[:, 0], u[:, 1], frac)
    m = power.model()
    assert (m.static, m.compute, m.memory) == pytest.approx(weights, abs=2e-3)
    assert m.static + m.compute + m.memory + m.network == pytest.approx(1.0, abs=1e-3)
    fitted = np.median(np.abs(np.log(frac / pf.predict(weights, u[:, 0], u[:, 1]))))
    genz = np.median(np.abs(np.log(frac / pf.predict(pf.GENZ, u[:, 0], u[:, 1]))))
    assert fitted < genz
    low, high = m.interval_log_quantiles
    assert low < 0 < high


def test_a_device_busy_in_every_respect_draws_its_tdp_and_no_more():
    assert power.device_power(700.0, 1.0, 1.0, 1.0) == pytest.approx(700.0)
    assert power.device_power(700.0, 5.0, 5.0, 5.0) == pytest.approx(700.0)
    assert power.device_power(700.0, 0.0, 0.0, 0.0) == pytest.approx(700.0 * power.model().static)


def test_the_energy_interval_widens_with_the_throughput_interval():
    """J/token = power / throughput: a throughput interval of +-20% around 1,000 tokens/s widens the power
    interval in quadrature (a measured throughput above the prediction lowers J/token)."""
    alone = power.per_token(700.0, 1, 1000.0, 0.1, 0.5, 0.0)
    both = power.per_token(700.0, 1, 1000.0, 0.1, 0.5, 0.0, tokens_interval=(800.0, 1200.0))
    low, high = power.model().interval_log_quantiles
    assert alone.j_per_token == both.j_per_token
    assert alone.interval[0] == pytest.approx(alone.j_per_token * math.exp(low))
    assert both.interval[0] == pytest.approx(both.j_per_token * math.exp(-math.hypot(low, math.log(1.2))))
    assert both.interval[1] == pytest.approx(both.j_per_token * math.exp(math.hypot(high, math.log(0.8))))
    assert "fitted to measured GPU power" in alone.basis and alone.energy_source == "estimated"


def test_predict_on_a_part_without_a_tdp_says_its_energy_is_unknown(tmp_path):
    """The 910C publishes no TDP: predict printed no energy line and no word why; the note says it is unknown
    (never zero watts), while a part with a TDP keeps its J/token and no such note."""
    import json

    from .conftest import run_cli

    args = ("predict", "--model", "llama-3.1-8b", "--input-len", "512", "--output-len", "64", "--json")
    out = {hw: json.loads(run_cli(*args, "--hardware", hw, cwd=tmp_path).stdout) for hw in ("hw_910c", "hw_910b2")}
    assert out["hw_910c"]["energy"] is None
    assert any(n.startswith("energy unknown: hw_910c publishes no TDP") for n in out["hw_910c"]["notes"])
    assert out["hw_910b2"]["energy"]["j_per_token"] > 0
    assert not any(n.startswith("energy unknown") for n in out["hw_910b2"]["notes"])
