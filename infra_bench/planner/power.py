"""Device power while serving, from how busy the iteration model says the device is.

    P = TDP x (static + compute x u_compute + memory x u_memory + network x u_network),  at most TDP

with u the achieved fraction of the spec-sheet FLOP rate and memory bandwidth over an iteration (network:
the share of the iteration spent in collectives). The weights are fitted (benchmarks/power_fit.py, stored in
workloads/reference/power_fit.json) to measured GPU power of LLM inference runs that are not the acceptance
check: Argonne's LLM-Inference-Bench, A100 and H100 under three engines. The weights sum to 1, so a device busy
in every respect draws its TDP; the network weight keeps GenZ's 0.1 (arXiv 2406.01698), since those runs use
one GPU. GenZ's whole split (0.3 / 0.4 / 0.2 / 0.1), used before, came out a median 32% low on those runs.
The interval is the fit's leave-one-GPU-out residuals, widened in quadrature by the throughput interval
where the prediction has one (J/token = power / tokens/s).
Measured busy power from `infra-bench calibrate` (NVML or RAPL records) replaces the model for its
device. The node draws more than its accelerators: host CPUs, memory, NICs and fans; node power is
taken as 1.8 x device power, the DGX H100 ratio of 10.2 kW to 8 x 700 W that sizing also uses.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

from ..paths import data_dir

NODE_FACTOR = 1.8
MEASURED_SPREAD = 0.15  # measured busy power: what the record does not tell (load mix, clocks), said as assumed


@dataclass(frozen=True)
class PowerModel:
    static: float
    compute: float
    memory: float
    network: float
    interval_log_quantiles: tuple[float, float]  # 10th and 90th percentile of log(measured / predicted), held out
    source: str

    @property
    def basis(self) -> str:
        return (f"power model P / TDP = {self.static:.2f} + {self.compute:.2f} u_compute + {self.memory:.2f} u_memory + "
                f"{self.network:.2f} u_network, fitted to measured GPU power ({self.source})")


@lru_cache(maxsize=1)
def model() -> PowerModel:
    """The shipped power model (workloads/reference/power_fit.json)."""
    data = json.loads((data_dir("workloads") / "reference" / "power_fit.json").read_text())
    w = data["weights"]
    return PowerModel(w["static"], w["compute"], w["memory"], w["network"], tuple(data["interval_log_quantiles"]),
                      data["source"])


@dataclass(frozen=True)
class Energy:
    avg_power_w: float          # per device
    j_per_token: float          # devices only
    j_per_token_node: float     # with the node's share
    interval: tuple[float, float]
    basis: str
    energy_source: str          # estimated | measured_device

    def to_dict(self) -> dict:
        return asdict(self)


def device_power(tdp_w: float, u_compute: float, u_memory: float, u_network: float) -> float:
    m = model()
    busy = m.static + m.compute * min(u_compute, 1.0) + m.memory * min(u_memory, 1.0) + m.network * min(u_network, 1.0)
    return tdp_w * min(busy, 1.0)


def per_token(tdp_w: float | None, devices: int, tokens_per_s: float, u_compute: float, u_memory: float,
              u_network: float, measured_w: float | None = None, measured_source: str = "",
              tokens_interval: tuple[float, float] | None = None, measured: bool = True) -> Energy | None:
    """J per output token of a replica of `devices` producing `tokens_per_s`; None without a TDP.
    `measured_w`: the device's busy power from records (`measured`) or as the user gave it (an assumptions
    file's device_power: still `estimated`, as no record measured it). `tokens_interval` (the throughput's
    80% interval) widens the J/token interval with the power one."""
    if measured_w:
        watts, basis, source = ((measured_w, f"measured busy power ({measured_source})", "measured_device") if measured
                                else (measured_w, f"busy power as given ({measured_source})", "estimated"))
        low, high = math.log(1 - MEASURED_SPREAD), math.log(1 + MEASURED_SPREAD)
        interval_basis = f"power +-{MEASURED_SPREAD:.0%} (assumed)"
    elif tdp_w:
        watts = device_power(tdp_w, u_compute, u_memory, u_network)
        m = model()
        basis = (f"estimated: TDP {tdp_w:.0f} W at utilisation compute {u_compute:.0%}, memory {u_memory:.0%}, "
                 f"network {u_network:.0%}; {m.basis}")
        source = "estimated"
        low, high = m.interval_log_quantiles
        interval_basis = "power from the fit's leave-one-GPU-out residuals"
    else:
        return None
    j = watts * devices / tokens_per_s
    if tokens_interval and all(tokens_interval):
        # J/token = power / throughput: a throughput above its prediction lowers J/token
        t_low, t_high = math.log(tokens_interval[0] / tokens_per_s), math.log(tokens_interval[1] / tokens_per_s)
        low, high = -math.hypot(min(low, 0.0), max(t_high, 0.0)), math.hypot(max(high, 0.0), min(t_low, 0.0))
        interval_basis += ", with the throughput interval in quadrature"
    return Energy(watts, j, j * NODE_FACTOR, (j * math.exp(low), j * math.exp(high)),
                  basis + f"; node = {NODE_FACTOR} x device (DGX H100 ratio); interval: {interval_basis}", source)
