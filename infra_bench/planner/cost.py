"""Cost and carbon of a sized candidate: capex, yearly cost of ownership, and per unit of work.

Parts are bought in servers (servers.yaml): a server priced with its accelerators costs that price,
one priced without them costs its price plus the devices'; a server with no public price gets the
generic host share per slot (an estimate, said in the notes). No device or server price: unpriced.

    servers    = ceil(devices / server slots)
    bought     = servers x slots where the accelerators are modules on a baseboard (HGX, OAM, Atlas) or in the
                 server's price, else the devices (PCIe cards)
    capex      = servers x server price [+ bought x device price] + network share x (devices + servers)
    per year   = capex / depreciation years + energy + maintenance share x capex + colocation
    energy     = IT kW at the planned utilization x 8760 h x PUE x the site's power price
    IT kW      = (devices x device W + servers x host W) x (idle + (1 - idle) x utilization)
                 + (bought - devices) x TDP x idle
    device W   = the busy power measured in records (`calibrate`), else the power model's at each
                 service's capacity (power.py, the figure behind plan's J/token), else TDP
    host W     = the server's maximum power less its slots' TDP, else 0.8 x TDP per slot (filled or not);
                 without a server profile, 0.8 x TDP per device
    carbon     = IT kWh x PUE x the site's grid factor  +  bought x embodied kg per accelerator / its lifetime
    per unit   = a service's share of the yearly figure (by its devices) / its yearly units

Utilization is each service's load over its replicas' SLO capacity. Energy is labelled
`measured_device` where the device's busy power comes from measured records (the host share and
the idle fraction stay modelled), else `estimated`. Defaults carry their sources from
../shared/reference/energy_cost_carbon.md; every one can be overridden in an assumptions file.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError, explain_validation
from ..inputs import load_yaml
from .profiles import HardwareProfile, ServerProfile, SiteProfile

HOURS = 8760.0
NODE_POWER_FACTOR = 1.8  # node max power per accelerator TDP: DGX H100 10.2 kW for 8 x 700 W (NVIDIA spec)

FX_SOURCES = {  # the shipped rates (units per USD), dated and sourced
    "CNY": "7.2 CNY per USD, as energy_cost_carbon.md converts 0.63 CNY = 0.088 USD (China Briefing 2024)",
    "EUR": "0.924 EUR per USD, the ECB euro reference rate's 2024 average (1.0824 USD per EUR), the year of the "
           "eu-average site's power price",
}
SOURCES = {
    "fx": "; ".join(FX_SOURCES.values()) + "; other currencies need --fx CUR=RATE",
    "depreciation_years": "4 y financial (3-6): hyperscaler server lives 4-6 y (energy_cost_carbon.md, Deprec)",
    "carbon_lifetime_years": "5 y (LLMCarbon, ICLR 2024)",
    "maintenance_frac_per_year": "6% of capex per year (4-8%, HPC rule of thumb, CTWatch 2006)",
    "host_usd_per_accelerator": "8,000 USD per slot for servers with no public price: HGX H100 node with NICs "
                                "310-317k USD (Thinkmate quote 2024-08) / 8 less the H100's 30.7k",
    "network_frac": "5% of devices + hosts: switches and cables for <= 64 nodes",
    "colocation_usd_per_kw_month": "184 USD/kW/month (CBRE, North America H2 2024) when colocation is chosen",
    "idle_power_frac": "assumption: 30% of max power when idle, linear to max at full load (OLMo drew 15-85% "
                       "of max, Morrison 2025)",
    "embodied_kg_per_accelerator": "320 kgCO2e incl. the server share (150-470; Chien HotCarbon'23, BLOOM)",
}


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: float = Field(gt=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


class DevicePower(BaseModel):
    """A device's draw while busy: measured (from records, via `calibrate`) or given by the user."""
    model_config = ConfigDict(extra="forbid")
    busy_w: float = Field(gt=0)
    source: str = Field(min_length=1)
    measured: bool = False


class Assumptions(BaseModel):
    """Cost and carbon inputs; the defaults carry the sources in SOURCES."""
    model_config = ConfigDict(extra="forbid")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="default: the site's")
    fx: dict[str, float] = {"USD": 1.0, "CNY": 7.2, "EUR": 0.924}  # units per USD: every shipped site's currency
    depreciation_years: float = Field(default=4.0, gt=0)
    carbon_lifetime_years: float = Field(default=5.0, gt=0)
    maintenance_frac_per_year: float = Field(default=0.06, ge=0, lt=1)
    host_usd_per_accelerator: float = Field(default=8000.0, ge=0)
    network_frac: float = Field(default=0.05, ge=0, lt=1)
    colocation_usd_per_kw_month: float | None = Field(default=None, ge=0)
    idle_power_frac: float = Field(default=0.3, ge=0, le=1)
    embodied_kg_per_accelerator: float = Field(default=320.0, ge=0)
    prices: dict[str, Money] = Field(default_factory=dict, description="device price overrides by profile id")
    device_power: dict[str, DevicePower] = Field(default_factory=dict,
                                                 description="busy device watts by profile id, instead of TDP")
    device_price_scale: float = Field(default=1.0, gt=0, description="sensitivity: x every device price")
    power_price_scale: float = Field(default=1.0, gt=0, description="sensitivity: x the site's power price")
    utilization: float | None = Field(default=None, ge=0, le=1,
                                      description="sensitivity: this busy share instead of the planned load's")

    def fx_basis(self, cur: str, others: set[str]) -> str:
        """The rates a plan in `cur` converted `others` at, each with its date and source (or 'as given')."""
        default = Assumptions.model_fields["fx"].default
        said = []
        for c in sorted({cur, *others} - {"USD"}):
            given = c not in default or self.fx[c] != default[c]
            said.append(f"{self.fx[c]:g} {c} per USD, as given (--fx or the assumptions file)" if given else
                        FX_SOURCES[c])
        return (f"money converted to {cur} from {', '.join(sorted(others))} at: " + "; ".join(said)
                + "; change a rate with --fx CUR=UNITS_PER_USD")

    def convert(self, amount: float, src: str, dst: str) -> float:
        for cur in (src, dst):
            if cur not in self.fx:
                raise UserError(f"no exchange rate for {cur}; give one as --fx {cur}=UNITS_PER_USD")
        return amount / self.fx[src] * self.fx[dst]


def load_assumptions(path: str | Path | None, overrides: dict | None = None) -> Assumptions:
    data = {}
    if path:
        p = Path(path)
        data = load_yaml(p, "assumptions file", "give a YAML of fields from docs/cost.md") or {}
        if not isinstance(data, dict):
            raise UserError(f"{p}: expected a mapping of assumption fields")
    if isinstance(data.get("fx"), dict):  # currency codes in any case, as the command line takes them
        data = {**data, "fx": {str(k).upper(): v for k, v in data["fx"].items()}}
    if isinstance(data.get("currency"), str):
        data = {**data, "currency": data["currency"].upper()}
    merged = {**data, **(overrides or {})}
    for key in ("prices", "fx"):  # --price and --fx add to the file's, one entry overriding its namesake
        if isinstance(data.get(key), dict) and key in (overrides or {}):
            merged[key] = {**data[key], **overrides[key]}
    if "fx" in merged:  # a rate of your own adds to the shipped sites' rates (USD, CNY, EUR), never drops one
        merged["fx"] = {**Assumptions.model_fields["fx"].default, **merged["fx"]}
    try:
        return Assumptions(**merged)
    except ValidationError as err:
        raise UserError(explain_validation(err, str(path or "assumptions"), Assumptions.model_fields)) from None


@dataclass
class Costing:
    currency: str
    capex: dict | None           # devices, hosts, network, total; None without a device price
    per_year: dict | None        # depreciation, energy, maintenance, colocation, total
    lifetime_total: float | None
    energy: dict                 # utilization, it_kw_avg, kwh_per_year (facility), energy_source
    carbon: dict                 # operational / embodied / total kgCO2e per year, grid factor and type
    per_unit: dict               # per service: unit, cost, kgco2e
    notes: list
    converted_from: list         # currencies converted into `currency` (prices, quotes, the host share, power)

    def to_dict(self) -> dict:
        return asdict(self)


def hosts_w(devices: float, servers: float, hw: HardwareProfile, server: ServerProfile | None) -> float | None:
    """The servers' draw beyond their accelerators: each server's maximum power less its slots' TDP, else
    (NODE_POWER_FACTOR - 1) x TDP per slot (the DGX H100 ratio); a host draws for all its slots, filled or
    not, as capex buys it for all of them. Without a server profile, that share per device."""
    if not hw.tdp_w:
        return None
    host = server.host_w(hw.tdp_w) if server else None
    if host is not None:
        return servers * host
    share = (NODE_POWER_FACTOR - 1) * hw.tdp_w
    return servers * server.slots * share if server else devices * share


def bought(devices: float, servers: float, server: ServerProfile | None, hw: HardwareProfile) -> float:
    """Accelerators bought (ServerProfile.bought; without a server profile, the devices), in whole cards where a
    card carries several devices (an Atlas 300I Duo is two: three devices used are two cards bought)."""
    n = server.bought(devices, servers) if server else devices
    k = hw.devices_per_card
    return math.ceil(n / k) * k if k > 1 else n


def peak_kw(devices: int, servers: float, hw: HardwareProfile, server: ServerProfile | None) -> float | None:
    """Power to provision: the servers' hosts plus the accelerators bought at TDP (every slot of a baseboard
    or of a server priced with them); without a TDP, the servers' maximum power where published."""
    if not hw.tdp_w:
        return servers * server.max_power_w / 1000 if server and server.max_power_w else None
    return (hosts_w(devices, servers, hw, server) + bought(devices, servers, server, hw) * hw.tdp_w) / 1000


def utilization(option, svc) -> float:
    """Load over the replicas' SLO capacity: the busy share the energy model scales with."""
    return min(1.0, svc.load / (option.replicas * option.capacity))


def _capex(devices: int, servers: float, hw: HardwareProfile, server: ServerProfile | None, a: Assumptions,
           cur: str, notes: list) -> dict | None:
    """Devices, servers and network in `cur`, or None (unpriced) without the prices it needs. Linear in
    devices and servers, so --mixed can price one of each apart."""
    own = a.prices.get(hw.id)
    listed = Money(amount=hw.price.amount, currency=hw.price.currency) if hw.price else None
    price = own or listed
    unit = a.convert(price.amount, price.currency, cur) * a.device_price_scale if price else None
    sp = server.price if server else None
    n = bought(devices, servers, server, hw)
    slot_usd = a.host_usd_per_accelerator / hw.devices_per_card  # the host share of one device: a slot holds a card
    slot = "card slot" if hw.devices_per_card > 1 else "slot"
    source = "your price (--price or an assumptions file)" if own else (hw.price.source if hw.price else None)
    if sp is not None and sp.includes_accelerators:  # bought as whole servers, every slot filled
        quote = a.convert(sp.amount, sp.currency, cur)
        inside = a.convert(listed.amount, listed.currency, cur) * server.slots if listed else None
        quoted = f"{server.name}: {sp.amount:,.0f} {sp.currency} with {server.slots} accelerators ({sp.source})"
        if price is None:  # nothing to split it by: scaled whole
            dev, host = 0.0, quote * a.device_price_scale * servers
            basis, source = quoted, "in the server price"
        elif inside is not None:  # the host is the quote less the accelerators in it at their listed price
            host_each = max(quote - inside, 0.0)
            dev, host = unit * n, host_each * servers
            basis = f"{quoted}; host share {host_each:,.0f} {cur} = the quote less {server.slots} x the device price"
        else:  # your device price, but no listed one to take off the quote: the host is estimated
            dev = unit * n
            host = a.convert(slot_usd, "USD", cur) * server.slots * servers
            basis = (f"estimated host: {a.host_usd_per_accelerator:,.0f} USD per {slot} ({server.name} is priced with "
                     f"its accelerators and {hw.id} lists no device price to take off)")
            notes.append(f"host cost estimated: {a.host_usd_per_accelerator:,.0f} USD per {slot} of {server.id} "
                         f"(its price includes the accelerators)")
    elif price is None:
        what = hw.id + (f" (its server {server.id} is priced without accelerators)" if sp else
                        f" or its server {server.id}" if server else "")
        notes.append(f"unpriced: no public price for {what}; give one with --price {hw.id}=AMOUNT[CUR] or in an "
                     f"assumptions file (prices: {{{hw.id}: {{amount: ..., currency: USD}}}})")
        return None
    else:
        dev = unit * n
        if sp is not None:
            host = a.convert(sp.amount, sp.currency, cur) * servers
            basis = f"{server.name}: {sp.amount:,.0f} {sp.currency} without accelerators ({sp.source})"
        else:
            per_slot = a.convert(slot_usd, "USD", cur)
            host = per_slot * servers * server.slots if server else per_slot * devices
            where = f"no public price for {server.name}" if server else "no server profile"
            given = a.host_usd_per_accelerator != Assumptions.model_fields["host_usd_per_accelerator"].default
            basis = f"estimated host: {a.host_usd_per_accelerator:,.0f} USD per {slot} ({where}; " + \
                    ("your assumptions file)" if given else f"{SOURCES['host_usd_per_accelerator']})")
            notes.append(f"host cost estimated: {a.host_usd_per_accelerator:,.0f} USD per {slot}"
                         + (f" of {server.id} (no public price)" if server else " (no server profile for this part)"))
    if server and server.bought(devices, servers) > devices:
        notes.append(f"{n:.0f} {hw.id} bought for the {devices} used: a {server.id} comes with all {server.slots} "
                     f"({'modules on one baseboard' if server.baseboard else 'its price includes them'})")
    net = a.network_frac * (dev + host)
    return {"devices": dev, "accelerators_bought": n, "servers": host, "network": net, "total": dev + host + net,
            "device_price": price.amount if price else None, "device_price_currency": price.currency if price else None,
            "device_price_source": source, "server": server.id if server else None, "server_basis": basis}


def busy_power(options: list, hw: HardwareProfile) -> tuple[float, str]:
    """A device's draw while busy, and its basis: the power model's at each service's capacity (the
    J/token plan shows comes from the same figure), weighted by the devices each service takes;
    TDP for services the power model does not cover."""
    used = [o for o in options if o.devices]
    if not any(getattr(o, "energy", None) for o in used):
        return hw.tdp_w, f"TDP {hw.tdp_w:g} W (profile)"
    weighted = [(o.devices, o.energy["avg_power_w"] if getattr(o, "energy", None) else hw.tdp_w) for o in used]
    watts = sum(n * w for n, w in weighted) / sum(n for n, _ in weighted)
    return watts, (f"power model at each service's capacity: {watts:,.0f} W of TDP {hw.tdp_w:g} W "
                   "(services it does not cover at TDP)")


def cost_of(candidate, hw: HardwareProfile, services: list, site: SiteProfile | None, a: Assumptions,
            server: ServerProfile | None = None) -> Costing:
    """The candidate's costs and carbon in the assumptions' currency (default: the site's, else USD).
    Whole servers are bought when the candidate says how many (`servers`); a lone device (the
    per-device cost of --mixed) carries its share of one."""
    cur = a.currency or (site.power_currency if site else "USD")
    notes: list[str] = []
    devices = candidate.devices
    slots = server.slots if server else None
    servers = candidate.servers if candidate.servers is not None else devices / (slots or 1)
    share = {o.service: (o.devices or 0) / devices if devices else 0.0 for o in candidate.options}
    u = a.utilization if a.utilization is not None else (
        sum(o.devices * utilization(o, s) for o, s in zip(candidate.options, services)) / devices)
    capex = _capex(devices, servers, hw, server, a, cur, notes)

    energy = {"utilization": u, "energy_source": "estimated", "basis": SOURCES["idle_power_frac"]}
    n = bought(devices, servers, server, hw)
    if hw.devices_per_card > 1:
        notes.append(f"{hw.devices_per_card} devices = 1 card: {hw.id}'s figures are per device (chip); {n:.0f} "
                     f"devices bought = {n / hw.devices_per_card:.0f} cards" +
                     (f", for the {devices} used" if n > devices else ""))
    carbon: dict = {"embodied_kg_per_year": n * a.embodied_kg_per_accelerator / a.carbon_lifetime_years}
    energy_cost = None
    host_w = server.host_w(hw.tdp_w) if server else None
    if hw.tdp_w and site:
        measured = a.device_power.get(hw.id)
        device_w, device_source = (measured.busy_w, measured.source) if measured else busy_power(candidate.options, hw)
        it_w = devices * device_w + hosts_w(devices, servers, hw, server)
        spare_w = (n - devices) * hw.tdp_w * a.idle_power_frac  # slots bought but unused draw their idle share
        it_kw = (it_w * (a.idle_power_frac + (1 - a.idle_power_frac) * u) + spare_w) / 1000
        kwh = it_kw * HOURS * site.pue
        energy |= {"it_kw_avg": it_kw, "pue": site.pue, "kwh_per_year": kwh, "device_busy_w": device_w,
                   "device_power_source": device_source,
                   "host_power": (f"{host_w:,.0f} W per server: {server.id} maximum {server.max_power_w:,.0f} W less "
                                  f"{server.slots} x TDP" if host_w is not None else
                                  f"{NODE_POWER_FACTOR - 1:g} x TDP per slot of each server (DGX H100 ratio; no server power)")}
        if measured and measured.measured:
            energy["energy_source"] = "measured_device"
            energy["basis"] += "; the host share and the idle fraction are modelled"
        price, price_basis, price_source = site.power_price_for(hw)
        energy |= {"power_price": price, "power_currency": site.power_currency, "power_price_basis": price_basis,
                   "power_price_source": price_source}
        if site.domestic_power_price is not None:  # which of the site's two prices this part pays
            notes.append(price_basis)
        energy_cost = a.convert(kwh * price * a.power_price_scale, site.power_currency, cur)
        carbon |= {"operational_kg_per_year": kwh * site.grid_kgco2_per_kwh, "grid_kgco2_per_kwh": site.grid_kgco2_per_kwh,
                   "grid_factor_type": site.grid_factor_type, "grid_source": site.grid_source}
        carbon["total_kg_per_year"] = carbon["operational_kg_per_year"] + carbon["embodied_kg_per_year"]
    elif not site:
        notes.append("no site: energy cost and operational carbon need --site (power price, PUE, grid factor)")
    else:
        notes.append(f"{hw.id} has no TDP: energy and operational carbon unknown")

    per_year = None
    if capex and energy_cost is not None:
        coloc = 0.0
        if a.colocation_usd_per_kw_month is not None:
            coloc = a.convert(a.colocation_usd_per_kw_month, "USD", cur) * peak_kw(devices, servers, hw, server) * 12
        per_year = {"depreciation": capex["total"] / a.depreciation_years, "energy": energy_cost,
                    "maintenance": a.maintenance_frac_per_year * capex["total"], "colocation": coloc}
        per_year["total"] = sum(per_year.values())
    per_unit = {}
    for o, s in zip(candidate.options, services):
        unit, scale = s.cost_unit
        n = s.units_per_hour() * HOURS / scale
        per_unit[o.service] = {
            "unit": unit,
            "cost": per_year["total"] * share[o.service] / n if per_year else None,
            "kgco2e": carbon["total_kg_per_year"] * share[o.service] / n if "total_kg_per_year" in carbon else None}
    lifetime = per_year["total"] * a.depreciation_years if per_year else None
    sources = {capex["device_price_currency"] if capex else None,
               server.price.currency if capex and server and server.price else None,
               "USD" if (capex and capex["server_basis"].startswith("estimated host"))
               or (per_year and per_year["colocation"]) else None,
               site.power_currency if energy_cost is not None else None}
    return Costing(cur, capex, per_year, lifetime, energy, carbon, per_unit, notes,
                   sorted(c for c in sources if c and c != cur))
