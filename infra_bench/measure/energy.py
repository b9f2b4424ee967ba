"""Energy meters: begin() and end() bracket a window; end() returns one EnergyReading.

Preference order is decided by the device probe: a hardware counter (NVML total energy,
RAPL), then integrated power samples, then a labelled estimate, else `unavailable`.
"""
from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


SOURCES = ("nvml_counter", "rapl", "power_integrated", "estimated", "unavailable")
MEASURED_SOURCES = SOURCES[:3]  # read from hardware, not modelled

# TDP / cores of a common inference host CPU, the AMD EPYC 9654 (360 W, 96 cores; AMD product page).
DEFAULT_CPU_WATTS_PER_CORE = 3.75
DEFAULT_CPU_WATTS_SOURCE = "default: AMD EPYC 9654 TDP 360 W / 96 cores, AMD product page"


@dataclass(frozen=True)
class EnergyReading:
    source: str
    scope: str | None
    energy_j: float | None
    avg_power_w: float | None
    note: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class EnergyMeter:
    """Base: measure the energy of one window."""

    source = "unavailable"
    scope: str | None = None

    def begin(self) -> None:
        self._t0 = time.perf_counter()

    def end(self) -> EnergyReading:
        raise NotImplementedError

    def _elapsed(self) -> float:
        return max(time.perf_counter() - self._t0, 1e-9)


class UnavailableMeter(EnergyMeter):
    def __init__(self, reason: str):
        self.reason = reason

    def end(self) -> EnergyReading:
        return EnergyReading("unavailable", None, None, None, self.reason)


class CounterMeter(EnergyMeter):
    """A monotonic energy counter in joules (NVML total energy, for one device)."""

    def __init__(self, read_joules: Callable[[], float], source: str, scope: str):
        self._read, self.source, self.scope = read_joules, source, scope

    def begin(self) -> None:
        self._e0 = self._read()
        super().begin()

    def end(self) -> EnergyReading:
        dt = self._elapsed()
        e = self._read() - self._e0
        return EnergyReading(self.source, self.scope, e, e / dt)


class PowerIntegratingMeter(EnergyMeter):
    """Integrates sampled power (W) over the window with the trapezoid rule."""

    def __init__(self, read_watts: Callable[[], float | None], scope: str, interval_s: float = 0.05):
        self._read, self.scope, self._interval = read_watts, scope, interval_s
        self.source = "power_integrated"

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._take()

    def _take(self) -> None:
        w = self._read()
        if w is not None:
            self._samples.append((time.perf_counter(), w))

    def begin(self) -> None:
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        super().begin()
        self._take()
        self._thread = threading.Thread(target=self._loop, name="infra-bench-power", daemon=True)
        self._thread.start()

    def end(self) -> EnergyReading:
        dt = self._elapsed()
        self._stop.set()
        self._thread.join()
        self._take()
        s = self._samples
        if len(s) < 2:
            return EnergyReading("unavailable", None, None, None, "fewer than two power samples")
        e = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(s, s[1:]))
        return EnergyReading(self.source, self.scope, e, e / dt,
                             f"{len(s)} power samples at {self._interval * 1000:.0f} ms")


def rapl_domains(root: str = "/sys/class/powercap") -> list[Path]:
    """Readable top-level RAPL package domains (intel-rapl:N, also used on AMD Zen)."""
    found = []
    for d in sorted(glob.glob(os.path.join(root, "intel-rapl:[0-9]*"))):
        p = Path(d)
        if p.name.count(":") == 1 and os.access(p / "energy_uj", os.R_OK):
            try:
                int((p / "energy_uj").read_text())
            except (OSError, ValueError):
                continue
            found.append(p)
    return found


def rapl_unavailable_reason(root: str = "/sys/class/powercap") -> str:
    if not glob.glob(os.path.join(root, "intel-rapl:[0-9]*")):
        return f"no RAPL domains under {root}"
    return f"RAPL energy_uj under {root} is not readable (root-only since Linux 5.10)"


class RaplMeter(EnergyMeter):
    """Sum of package RAPL counters (microjoules), handling one wrap per domain."""

    source, scope = "rapl", "cpu_package"

    def __init__(self, domains: list[Path]):
        self._domains = domains
        self._ranges = [int((d / "max_energy_range_uj").read_text()) if (d / "max_energy_range_uj").exists()
                        else 2**32 for d in domains]

    def _read(self) -> list[int]:
        return [int((d / "energy_uj").read_text()) for d in self._domains]

    def begin(self) -> None:
        self._e0 = self._read()
        super().begin()

    def end(self) -> EnergyReading:
        dt = self._elapsed()
        total_uj = 0
        for a, b, rng in zip(self._e0, self._read(), self._ranges):
            total_uj += b - a if b >= a else b + rng - a
        e = total_uj / 1e6
        return EnergyReading(self.source, self.scope, e, e / dt,
                             f"{len(self._domains)} package domain(s); whole package, not this process alone")


class EstimatedCpuMeter(EnergyMeter):
    """CPU seconds used by this process (and its children) x watts per busy core."""

    source, scope = "estimated", "process_cpu"

    def __init__(self, watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
                 basis: str = DEFAULT_CPU_WATTS_SOURCE, why_not_measured: str | None = None):
        self.watts_per_core, self.basis, self.why = watts_per_core, basis, why_not_measured

    def _cpu_s(self) -> float:
        """All threads' CPU time at nanosecond resolution (psutil's clock ticks are 10 ms, which
        rounded a short window of a fast model to 0 J), plus reaped children's."""
        t = os.times()
        return time.process_time() + t.children_user + t.children_system

    def begin(self) -> None:
        self._c0 = self._cpu_s()
        super().begin()

    def end(self) -> EnergyReading:
        dt = self._elapsed()
        cpu_s = self._cpu_s() - self._c0
        e = cpu_s * self.watts_per_core
        return EnergyReading(self.source, self.scope, e, e / dt,
                             f"estimated: this process's CPU seconds x {self.watts_per_core:g} W per busy core "
                             f"({self.basis}); idle, DRAM and the rest of the node are excluded"
                             + (f"; not measured because {self.why}" if self.why else ""))


def cpu_meter(watts_per_core: float | None = None) -> EnergyMeter:
    """RAPL when readable, else the labelled estimate, which says why RAPL was not used."""
    domains = rapl_domains()
    if domains:
        return RaplMeter(domains)
    why = rapl_unavailable_reason()
    if watts_per_core is not None:
        return EstimatedCpuMeter(watts_per_core, "given with --cpu-watts-per-core", why)
    return EstimatedCpuMeter(why_not_measured=why)


def unused_watts_note(meter: EnergyMeter) -> str | None:
    """Why --cpu-watts-per-core changes nothing under `meter`, or None where it sets the estimate: only a CPU
    whose RAPL counters cannot be read is estimated, so elsewhere the recorded watts would read as applied."""
    if isinstance(meter, EstimatedCpuMeter):
        return None
    why = f"{meter.source} measures this device's energy" if meter.source in MEASURED_SOURCES else \
        "this device's energy is not measured (energy_note says why)"
    return (f"--cpu-watts-per-core had no effect: {why}, and the watts-per-core estimate is made only on a CPU "
            f"whose RAPL counters cannot be read")
