"""Device power while serving, from how busy the iteration model says the device is.

    P = TDP x (static + compute x u_compute + memory x u_memory + network x u_network)

with u the achieved fraction of the spec-sheet FLOP rate and memory bandwidth over an iteration
(network: the share of the iteration spent in collectives), and the split 0.3 / 0.4 / 0.2 / 0.1 of
GenZ (abhibambhaniya/GenZ-LLM-Analyzer, arXiv 2406.01698, as in ../shared/reference/planner_anchors.md).
Measured busy power from `infra-bench calibrate` (NVML or RAPL records) replaces the model for its
device. The node draws more than its accelerators: host CPUs, memory, NICs and fans; node power is
taken as 1.8 x device power, the DGX H100 ratio of 10.2 kW to 8 x 700 W that sizing also uses.
"""
from __future__ import annotations

from dataclasses import dataclass

SPLIT = {"static": 0.3, "compute": 0.4, "memory": 0.2, "network": 0.1}
SPLIT_SOURCE = "GenZ power split (arXiv 2406.01698): 30% static, 40% compute, 20% memory, 10% network"
NODE_FACTOR = 1.8
ASSUMED_INTERVAL = 0.3  # no held-out energy measurement to size it from: an assumption, said as one


@dataclass(frozen=True)
class Energy:
    avg_power_w: float          # per device
    j_per_token: float          # devices only
    j_per_token_node: float     # with the node's share
    interval: tuple[float, float]
    basis: str
    energy_source: str          # estimated | measured_device

    def to_dict(self) -> dict:
        from dataclasses import asdict
        return asdict(self)


def device_power(tdp_w: float, u_compute: float, u_memory: float, u_network: float) -> float:
    u = {"compute": min(u_compute, 1.0), "memory": min(u_memory, 1.0), "network": min(u_network, 1.0)}
    return tdp_w * (SPLIT["static"] + sum(SPLIT[k] * v for k, v in u.items()))


def per_token(tdp_w: float | None, devices: int, tokens_per_s: float, u_compute: float, u_memory: float,
              u_network: float, measured_w: float | None = None, measured_source: str = "") -> Energy | None:
    """J per output token of a replica of `devices` producing `tokens_per_s`; None without a TDP."""
    if measured_w:
        watts, basis, source, spread = measured_w, f"measured busy power ({measured_source})", "measured_device", 0.15
    elif tdp_w:
        watts = device_power(tdp_w, u_compute, u_memory, u_network)
        basis = (f"estimated: TDP {tdp_w:.0f} W x utilisation (compute {u_compute:.0%}, memory {u_memory:.0%}, "
                 f"network {u_network:.0%}); {SPLIT_SOURCE}")
        source, spread = "estimated", ASSUMED_INTERVAL
    else:
        return None
    j = watts * devices / tokens_per_s
    return Energy(watts, j, j * NODE_FACTOR, (j * (1 - spread), j * (1 + spread)),
                  basis + f"; node = {NODE_FACTOR} x device (DGX H100 ratio); interval +-{spread:.0%} (assumed)", source)
