import time
from pathlib import Path

import pytest

from infra_bench.measure.energy import (CounterMeter, EstimatedCpuMeter, PowerIntegratingMeter, RaplMeter,
                                        cpu_meter, rapl_domains, rapl_unavailable_reason)


def _busy_cpu(seconds: float) -> None:
    """Spin until this process has used `seconds` of CPU: a busy machine stretches the wall time
    this takes, not the CPU time, which is what the estimate counts."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(range(1000))


def test_estimate_is_cpu_seconds_times_watts_and_labelled():
    m = EstimatedCpuMeter(watts_per_core=10.0, basis="test")
    t0 = time.perf_counter()
    m.begin()
    _busy_cpu(0.3)
    r = m.end()
    wall = time.perf_counter() - t0
    assert r.source == "estimated" and r.scope == "process_cpu"
    assert 0.3 * 10 <= r.energy_j < 0.45 * 10  # 0.3 CPU seconds x 10 W (plus other threads' little)
    assert r.avg_power_w == pytest.approx(r.energy_j / wall, rel=0.1)
    assert "estimated" in r.note and "10 W per busy core" in r.note


def test_power_integration_of_a_constant_draw():
    m = PowerIntegratingMeter(lambda: 200.0, scope="device", interval_s=0.01)
    t0 = time.perf_counter()
    m.begin()
    time.sleep(0.25)
    r = m.end()
    wall = time.perf_counter() - t0  # a busy machine oversleeps: the draw lasted this long
    assert r.source == "power_integrated"
    assert r.energy_j == pytest.approx(200 * wall, rel=0.15)


def test_counter_meter_differences_the_counter():
    start = time.perf_counter()
    m = CounterMeter(lambda: 1000 + 50.0 * (time.perf_counter() - start), "nvml_counter", "device")
    m.begin()
    time.sleep(0.5)  # long against the few ms a busy machine can put between a counter read and its timestamp
    r = m.end()
    assert r.avg_power_w == pytest.approx(50.0, rel=0.05)


def _fake_powercap(root: Path, value: int, max_range: int = 1000) -> Path:
    d = root / "intel-rapl:0"
    d.mkdir(parents=True, exist_ok=True)
    (d / "energy_uj").write_text(str(value))
    (d / "max_energy_range_uj").write_text(str(max_range))
    (root / "intel-rapl:0:0").mkdir(exist_ok=True)  # a subdomain, not counted twice
    return d


def test_rapl_reads_package_domains_and_handles_wrap(tmp_path: Path):
    d = _fake_powercap(tmp_path, 900)
    domains = rapl_domains(str(tmp_path))
    assert domains == [d]
    m = RaplMeter(domains)
    m.begin()
    (d / "energy_uj").write_text("100")  # wrapped past max_energy_range_uj = 1000
    r = m.end()
    assert r.source == "rapl" and r.energy_j == pytest.approx(200e-6)


def test_missing_rapl_has_a_reason_and_cpu_falls_back_to_estimate(tmp_path: Path):
    assert "no RAPL domains" in rapl_unavailable_reason(str(tmp_path))
    if not rapl_domains():
        meter = cpu_meter(7.0)
        meter.begin()
        reading = meter.end()
        assert reading.source == "estimated"
        assert reading.note.endswith("; not measured because " + rapl_unavailable_reason())
