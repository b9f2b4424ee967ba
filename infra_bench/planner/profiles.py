"""Hardware and site profiles: YAML validated on load, built-ins plus user directories.

Built-ins live in hardware_profiles/ (accelerators/*.yaml, cpus.yaml, sites.yaml). A user
directory with the same layout (given with --profiles DIR or INFRA_BENCH_PROFILES, several
separated by ':') adds profiles and overrides built-ins of the same id. A malformed or
contradictory profile is refused with its file, id, field and what is wrong.
"""
from __future__ import annotations

import datetime
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import UserError, closest, explain_validation
from ..inputs import load_yaml
from ..paths import data_dir

DTYPE_KEYS = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4", "int4")
ENV_VAR = "INFRA_BENCH_PROFILES"
# Bounds no real part crosses but a figure in the wrong unit does (shipped parts: TDP 72-1400 W, bandwidth
# 0.19-8 TB/s, memory 16-288 GB, 16-bit ridge point 28-625 FLOP/byte): kW, GB/s, MB, PFLOPS or GFLOPS.
MIN_TDP_W = 10.0
MIN_SERVER_W = 100.0
MAX_BANDWIDTH_TBS = 100.0
MAX_ACCELERATOR_MEMORY_GB = 4096.0
MEMORY_TYPE = r"HBM[0-9]?E?|GDDR[0-9]X?|LPDDR[0-9]X?|DDR[0-9]"  # how memory_gb is read: memory_bytes
MIN_ACCELERATOR_PEAK = 1.0
RIDGE_RANGE = (2.0, 5000.0)
LOW_PRECISION_KEYS = ("fp16", "bf16", "fp8", "int8", "fp4", "int4")
EXTRA_FILES = ("cpus.yaml", "sites.yaml", "servers.yaml", "groups.yaml")


class Price(BaseModel):
    """A public price: what it buys, when it was seen, how far to trust it (A: list price or tender award,
    B: reputable press or reseller quote, C: estimate, forum or derived) and where it comes from."""
    model_config = ConfigDict(extra="forbid")
    amount: float = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    date: str
    estimate: bool = True
    confidence: Literal["A", "B", "C"] | None = None
    source: str = Field(min_length=3)

    @field_validator("date", mode="before")
    @classmethod
    def _date_text(cls, v):
        """YAML reads 2023 as a number and 2024-08-01 as a date; keep what was written."""
        return str(v) if isinstance(v, (int, datetime.date)) else v


class ServerPrice(Price):
    includes_accelerators: bool = Field(description="the price is for the server with its accelerators fitted")


class ServerProfile(BaseModel):
    """A server platform that hosts accelerators: slots, price, maximum power and what is inside."""
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    vendor: str
    domestic: bool = False
    hosts: list[str] = Field(default=[], description="accelerator profile ids it is built for")
    form_factors: list[str] = Field(default=[], description="form factors it takes, for parts no server names")
    slots: int = Field(ge=1)
    baseboard: bool = Field(default=False, description="modules on one baseboard (HGX, OAM UBB, Atlas): every "
                                                       "slot is bought, used or not")
    price: ServerPrice | None = None
    max_power_w: float | None = Field(default=None, gt=0)
    cpus: str | None = None
    memory_gb: float | None = Field(default=None, gt=0)
    network: str | None = None
    notes: str | None = None
    sources: list[str] = []

    @model_validator(mode="after")
    def _sourced(self):
        if (self.price or self.max_power_w) and not any(s.strip() for s in self.sources):
            raise ValueError("has a price or power but no sources; add a 'sources' list")
        if not (self.hosts or self.form_factors):
            raise ValueError("hosts nothing; give 'hosts' (accelerator ids) or 'form_factors'")
        if self.max_power_w is not None and self.max_power_w < MIN_SERVER_W:
            raise ValueError(f"max_power_w {self.max_power_w:g} is below {MIN_SERVER_W:g} W, so it looks like "
                             f"kilowatts; give watts ({self.max_power_w:g} kW = {self.max_power_w * 1000:g})")
        return self

    def host_w(self, tdp_w: float | None) -> float | None:
        """The server's draw beyond its accelerators at full load (CPUs, memory, NICs, switches, fans)."""
        if not self.max_power_w or not tdp_w:
            return None
        return max(0.0, self.max_power_w - self.slots * tdp_w)

    def bought(self, devices: float, servers: float) -> float:
        """Accelerators bought for `devices` used in `servers`: every slot where they come on a baseboard or
        the price includes them, else the devices (PCIe cards are bought one by one)."""
        whole = self.baseboard or bool(self.price and self.price.includes_accelerators)
        return servers * self.slots if whole else devices


class Availability(BaseModel):
    model_config = ConfigDict(extra="forbid")
    available: bool | None  # None: restricted or unclear; `status` says why
    status: str
    as_of: str
    source: str = Field(min_length=3)


class ScaleUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    link: str | None = None
    bandwidth_gbs: float | None = Field(default=None, gt=0)


class Software(BaseModel):
    model_config = ConfigDict(extra="forbid")
    torch_device: str | None = None
    onnxruntime_eps: list[str] = []


class HardwareProfile(BaseModel):
    """An accelerator or host CPU. Peak rates are dense (no sparsity), TFLOPS (TOPS for int)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["accelerator", "cpu"]
    vendor: str
    model: str
    form_factor: str | None = None
    year: int | None = Field(default=None, ge=1990, le=2100)
    domestic: bool = False
    peak_tflops: dict[str, float] = {}
    memory_gb: float | None = Field(default=None, gt=0)
    memory_type: str | None = Field(default=None, description=(
        "HBM, HBM2, HBM2e, HBM3, HBM3e, GDDR6, GDDR6X, GDDR7, LPDDR4X, LPDDR5 ...: sets how memory_gb is read"))
    memory_bandwidth_tbs: float | None = Field(default=None, gt=0)
    tdp_w: float | None = Field(default=None, gt=0)
    scale_up: ScaleUp | None = None
    typical_node_size: int | None = Field(default=None, ge=1)
    devices_per_card: int = Field(default=1, ge=1, description=(
        "devices a runtime sees on one card bought (the Atlas 300I Duo's two 310P chips: 2); every other figure, "
        "price and TDP included, is per device"))
    price: Price | None = None
    availability: dict[str, Availability] = {}
    software: Software = Software()
    confidence: str | None = None
    sources: list[str] = []
    match: list[str] = []

    @field_validator("memory_type")
    @classmethod
    def _memory_type(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(MEMORY_TYPE, v, re.IGNORECASE):
            raise ValueError(f"memory_type '{v}' is not a memory technology; give one such as HBM3e, GDDR6 or LPDDR5 "
                             f"(it says whether memory_gb is binary, as HBM sizes are), or leave it out")
        return v

    @field_validator("peak_tflops")
    @classmethod
    def _dtype_keys(cls, v: dict[str, float]) -> dict[str, float]:
        for key, value in v.items():
            if "spars" in key.lower():
                base = next((k for k in DTYPE_KEYS if key.lower().startswith(k)), "bf16")
                raise ValueError(f"'{key}': peaks are dense; a sparse (2:4) figure is twice the dense one, so give "
                                 f"half of it under '{base}' (and say so in sources), or leave it out")
            if key not in DTYPE_KEYS:
                raise ValueError(f"unknown dtype key '{key}'{closest(key, DTYPE_KEYS)}; use {', '.join(DTYPE_KEYS)}")
            if value is None or value <= 0:
                raise ValueError(f"peak for '{key}' must be a positive number (leave it out when unknown)")
        return v

    @model_validator(mode="after")
    def _sourced_and_consistent(self):
        numbers = bool(self.peak_tflops) or any(
            x is not None for x in (self.memory_gb, self.memory_bandwidth_tbs, self.tdp_w))
        if numbers and not any(s.strip() for s in self.sources):
            raise ValueError("has numbers but no sources; add a 'sources' list saying where each figure comes from")
        self._units()
        p = self.peak_tflops
        for low, high in (("fp8", "bf16"), ("fp8", "fp16")):
            if low in p and high in p and p[low] < p[high]:
                raise ValueError(f"contradictory peaks: {low} {p[low]:g} is below {high} {p[high]:g} "
                                 f"(lower precision is never slower on parts that support it)")
        return self

    def _units(self) -> None:
        """Refuse a figure only a wrong unit explains (a spec sheet's kW, GB/s, MB or PFLOPS), which would
        otherwise give numbers off by a factor of 1000 without a word."""
        if self.tdp_w is not None and self.tdp_w < MIN_TDP_W:
            raise ValueError(f"tdp_w {self.tdp_w:g} is below {MIN_TDP_W:g} W, so it looks like kilowatts; give "
                             f"watts ({self.tdp_w:g} kW = {self.tdp_w * 1000:g})")
        bw = self.memory_bandwidth_tbs
        if bw is not None and bw > MAX_BANDWIDTH_TBS:
            raise ValueError(f"memory_bandwidth_tbs {bw:g} is above {MAX_BANDWIDTH_TBS:g} TB/s, so it looks like "
                             f"GB/s; give TB/s ({bw:g} GB/s = {bw / 1000:g})")
        if self.kind != "accelerator":
            return
        if self.memory_gb is not None and self.memory_gb > MAX_ACCELERATOR_MEMORY_GB:
            raise ValueError(f"memory_gb {self.memory_gb:g} is above {MAX_ACCELERATOR_MEMORY_GB:g} GB per device, so "
                             f"it looks like MB; give GB ({self.memory_gb:g} MB = {self.memory_gb / 1000:g})")
        for key in LOW_PRECISION_KEYS:
            if (v := self.peak_tflops.get(key)) is not None and v < MIN_ACCELERATOR_PEAK:
                unit = "POPS" if key.startswith("int") else "PFLOPS"
                raise ValueError(f"peak_tflops.{key} {v:g} is below {MIN_ACCELERATOR_PEAK:g}, so it looks like "
                                 f"{unit}; give T{unit[1:]} ({v:g} {unit} = {v * 1000:g})")
        t = self.dense_tflops
        if t and bw and not RIDGE_RANGE[0] <= t / bw <= RIDGE_RANGE[1]:
            raise ValueError(f"16-bit peak {t:g} TFLOPS over {bw:g} TB/s is {t / bw:.3g} FLOP per byte, outside "
                             f"{RIDGE_RANGE[0]:g}-{RIDGE_RANGE[1]:g} (real parts: about 30-600), so one of them is in "
                             f"the wrong unit; give peaks in TFLOPS and memory_bandwidth_tbs in TB/s")

    @property
    def dense_tflops(self) -> float | None:
        """The 16-bit dense peak (bf16, else fp16): the usual roofline ceiling for inference."""
        return self.peak_tflops.get("bf16") or self.peak_tflops.get("fp16")

    def ridge_flop_per_byte(self) -> float | None:
        t, b = self.dense_tflops, self.memory_bandwidth_tbs
        return t / b if t and b else None

    @property
    def memory_bytes(self) -> float | None:
        """The device memory a runtime sees, in bytes. A datasheet's "80 GB" of HBM is 80 GiB: nvidia-smi
        reports 81,920 MiB on an A100 80GB and 81,559 MiB on an H100 80GB (1.07-1.074 x 10^9 bytes per datasheet
        GB). GDDR cards run with ECC on, which takes 1/16 of the chips, so their "48 GB" reports about 48 x 10^9
        bytes (L40S 46,068 MiB, L4 23,034 MiB, A10 23,028 MiB, T4 15,360 MiB: 1.006-1.007 x 10^9). Totals from
        modal-labs/modal-client pull request 2797 (2025-01-23). A part whose memory type is not given is read
        the decimal way, the smaller of the two."""
        if self.memory_gb is None:
            return None
        binary = bool(self.memory_type) and self.memory_type.upper().startswith("HBM")
        return self.memory_gb * (2**30 if binary else 1e9)

    def memory_gb_per_tflop(self) -> float | None:
        t = self.dense_tflops
        return self.memory_gb / t if t and self.memory_gb else None

    def price_per_tflop(self) -> float | None:
        t = self.dense_tflops
        return self.price.amount / t if t and self.price else None

    def available_in(self, market: str) -> bool | None:
        a = self.availability.get(market)
        return a.available if a else None

    def matches(self, device_name: str) -> bool:
        return any(re.search(pattern, device_name, re.IGNORECASE) for pattern in self.match)


class SiteProfile(BaseModel):
    """A site's grid factor, power price and PUE. `power_price` is what any part's energy costs there;
    `domestic_power_price` is a subsidised price that only domestic parts get (the western hubs' 2025
    subsidies for data centres running domestic chips), so one site prices both honestly."""
    model_config = ConfigDict(extra="forbid")

    id: str
    region: str
    market: str | None = Field(default=None, description="the market whose availability applies (CN, US, EU)")
    grid_kgco2_per_kwh: float = Field(gt=0, lt=2)
    grid_factor_type: Literal["average", "residual", "marginal", "lifecycle"]
    grid_source: str = Field(min_length=3)
    power_price: float = Field(gt=0, description="the price any part's energy is billed at")
    power_currency: str = Field(pattern=r"^[A-Z]{3}$")
    power_source: str = Field(min_length=3)
    domestic_power_price: float | None = Field(default=None, gt=0, description=(
        "a subsidised price (same currency) for domestic parts only; needs domestic_power_source"))
    domestic_power_source: str | None = None
    pue: float = Field(ge=1.0, le=3.0)
    pue_source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _subsidy_sourced(self):
        sourced = bool(self.domestic_power_source and len(self.domestic_power_source.strip()) >= 3)
        if self.domestic_power_price is not None and not sourced:
            raise ValueError("domestic_power_price has no domestic_power_source; say where the subsidy comes from "
                             "and whom it applies to")
        if self.domestic_power_price is None and self.domestic_power_source is not None:
            raise ValueError("domestic_power_source without a domestic_power_price; give the subsidised price or "
                             "leave the source out")
        if self.domestic_power_price is not None and self.domestic_power_price > self.power_price:
            raise ValueError(f"domestic_power_price {self.domestic_power_price:g} is above power_price "
                             f"{self.power_price:g}; a subsidy lowers the price (power_price is what any part pays)")
        return self

    def power_price_for(self, hw: HardwareProfile) -> tuple[float, str, str]:
        """The price `hw`'s energy is billed at here, a line saying which of the site's prices it is, and its source."""
        unit = f"{self.power_currency}/kWh"
        if self.domestic_power_price is None:
            return self.power_price, f"power at {self.power_price:g} {unit} ({self.id})", self.power_source
        if hw.domestic:
            why = (f"power at {self.domestic_power_price:g} {unit}: {self.id}'s subsidised price for domestic parts "
                   f"(other parts pay {self.power_price:g})")
            return self.domestic_power_price, why, self.domestic_power_source
        why = (f"power at {self.power_price:g} {unit}: {self.id}'s price for any part; its "
               f"{self.domestic_power_price:g} is a subsidy for domestic parts only, and {hw.id} is not one")
        return self.power_price, why, self.power_source


def load_file(path: Path, cls: type[BaseModel]) -> dict[str, BaseModel]:
    """One profile file: id -> validated profile; every problem a one-line UserError."""
    raw = load_yaml(path, "profile file", "see docs/profiles.md for the fields") or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of profile id -> fields")
    out = {}
    for pid, fields in raw.items():
        if not isinstance(fields, dict):
            raise UserError(f"{path}: profile '{pid}': expected a mapping of fields")
        try:
            out[str(pid)] = cls(id=str(pid), **fields)
        except ValidationError as err:
            raise UserError(explain_validation(err, f"{path}: profile '{pid}'", cls.model_fields)) from None
    return out


def profile_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    """Built-ins first, then INFRA_BENCH_PROFILES, then `extra` (later ones override)."""
    dirs = [data_dir("hardware_profiles")]
    env = os.environ.get(ENV_VAR)
    dirs += [Path(p) for p in env.split(os.pathsep) if p] if env else []
    dirs += [Path(p) for p in extra or []]
    for d in dirs[1:]:
        if not d.is_dir():
            raise UserError(f"profiles directory not found: {d}; give a folder with accelerators/*.yaml, "
                            f"cpus.yaml or sites.yaml")
        ymls = [d / Path(n).with_suffix(".yml") for n in EXTRA_FILES] + sorted((d / "accelerators").glob("*.yml"))
        if yml := next((y for y in ymls if y.is_file()), None):
            raise UserError(f"{yml}: profile files are read only as .yaml, so this one was left out; rename it "
                            f"{yml.with_suffix('.yaml').name}")
        if not (any((d / "accelerators").glob("*.yaml")) or any((d / n).is_file() for n in EXTRA_FILES)):
            found = sorted(p.name + ("/" if p.is_dir() else "") for p in d.iterdir())
            listing = ", ".join(found[:6]) + (" ..." if len(found) > 6 else "") if found else "nothing"
            raise UserError(f"{d} holds no profiles (found: {listing}); expected accelerators/*.yaml, cpus.yaml "
                            f"or sites.yaml (see docs/profiles.md)")
    return dirs


def load_hardware(extra: list[str | Path] | None = None) -> dict[str, HardwareProfile]:
    profiles: dict[str, HardwareProfile] = {}
    for d in profile_dirs(extra):
        found = hardware_in(d)
        for pid, new in found.items():
            if pid in profiles:
                _replaced(pid, d, profiles[pid], new)
        profiles.update(found)
    return profiles


@lru_cache(maxsize=None)
def _warned(pid: str, folder: str, dropped: tuple[str, ...]) -> None:
    print(f"warning: {pid} in {folder} replaces the profile of that id whole; it leaves out {', '.join(dropped)}, "
          f"which now take their defaults (repeat them in your profile to keep them)", file=sys.stderr)


def _replaced(pid: str, folder: Path, old: HardwareProfile, new: HardwareProfile) -> None:
    """Warn, once per process, where a profile of your own drops what the one it replaces said (a quote giving a
    910B2's price left out `domestic: true`, and the part stopped counting as domestic)."""
    dropped = tuple(sorted(f for f in old.model_fields_set - new.model_fields_set
                           if getattr(old, f) != getattr(new, f)))
    if dropped:
        _warned(pid, str(folder), dropped)


def vendor_word(vendor: str) -> str:
    """A vendor name as its one-word key: 'nvidia', 'huawei', 'moore' (Moore Threads), so 'Huawei Technologies'
    in a profile of your own matches the built-in 'Huawei'."""
    return vendor.split()[0].lower() if vendor.strip() else ""


@lru_cache(maxsize=1)
def shipped_hardware() -> dict[str, HardwareProfile]:
    """The profiles shipped with infra-bench, read once: what the fit's generations and same-die groups and the
    media priors' timings are about (your own profiles never change them). Treat as read-only."""
    return hardware_in(data_dir("hardware_profiles"))


def hardware_in(folder: Path) -> dict[str, HardwareProfile]:
    """The accelerator and CPU profiles of one profiles folder."""
    profiles: dict[str, HardwareProfile] = {}
    for path in sorted((folder / "accelerators").glob("*.yaml")) + [p for p in [folder / "cpus.yaml"] if p.is_file()]:
        profiles.update(load_file(path, HardwareProfile))
    return profiles


def _load_all(name: str, cls: type[BaseModel], extra: list[str | Path] | None) -> dict:
    """One profile file (sites.yaml, servers.yaml) of every profiles folder, later folders overriding."""
    out: dict = {}
    for d in profile_dirs(extra):
        if (d / name).is_file():
            out.update(load_file(d / name, cls))
    return out


def load_sites(extra: list[str | Path] | None = None) -> dict[str, SiteProfile]:
    return _load_all("sites.yaml", SiteProfile, extra)


def load_servers(extra: list[str | Path] | None = None) -> dict[str, ServerProfile]:
    """Every folder's servers.yaml, later folders overriding; a server that hosts an id no accelerator profile has
    is refused (a typo there left the part in a generic server, priced and powered as that, without a word)."""
    known = load_hardware(extra)
    out: dict[str, ServerProfile] = {}
    for d in profile_dirs(extra):
        if not (path := d / "servers.yaml").is_file():
            continue
        found = load_file(path, ServerProfile)
        for s in found.values():
            if unknown := next((h for h in s.hosts if h not in known), None):
                raise UserError(f"{path}: server '{s.id}': hosts '{unknown}', which no accelerator profile has"
                                f"{closest(unknown, known)}; fix the id or add the part's profile (see infra-bench "
                                f"profiles list)")
            if split := next((known[h] for h in s.hosts if s.slots % known[h].devices_per_card), None):
                raise UserError(f"{path}: server '{s.id}': {s.slots} slots do not hold whole cards of {split.id} "
                                f"({split.devices_per_card} devices per card); give slots in devices, a multiple of "
                                f"{split.devices_per_card}")
        out.update(found)
    return out


def server_for(hw: HardwareProfile, servers: dict[str, ServerProfile]) -> ServerProfile | None:
    """The server platform a part is bought in: the last one naming it in `hosts` (a --profiles folder's,
    loaded after the built-ins, wins), else the first that takes its form factor, else None."""
    named = next((s for s in reversed(servers.values()) if hw.id in s.hosts), None)
    if named or not hw.form_factor:
        return named
    return next((s for s in servers.values() if hw.form_factor in s.form_factors), None)


def markets(profiles: dict[str, HardwareProfile]) -> set[str]:
    """The market codes (CN ...) whose availability some profile records."""
    return {m for p in profiles.values() for m in p.availability}


def known_market(profiles: dict[str, HardwareProfile], market: str) -> str:
    """`market` as a code (any case in, upper case out), where some profile records availability there;
    else the one-line error every --market option gives."""
    code = market.upper()
    if code not in (known := markets(profiles)):
        raise UserError(f"--market {market}: no profile records availability there; use a known market "
                        f"({', '.join(sorted(known))}) or leave --market out")
    return code


def get(profiles: dict[str, HardwareProfile], pid: str) -> HardwareProfile:
    """The profile of this id, in any case (NV_H100_SXM is nv_h100_sxm)."""
    if pid not in profiles:
        same = [k for k in profiles if k.lower() == pid.lower()]
        if len(same) == 1:
            return profiles[same[0]]
        raise UserError(f"unknown hardware profile '{pid}'{closest(pid.lower(), profiles)}; see `infra-bench profiles list`")
    return profiles[pid]


def match_device(profiles: dict[str, HardwareProfile], device_name: str | None) -> HardwareProfile | None:
    if not device_name:
        return None
    return next((p for p in profiles.values() if p.matches(device_name)), None)
