"""Which parts a plan considers: profile ids, named groups, vendors, domestic-only, exclusions.

A name resolves, in this order, to a profile id, a group of groups.yaml (built in, or from a
--profiles folder), `domestic` / `imported`, or a vendor (`nvidia`, `huawei` ...); an id pattern with
`*` matches ids. The same names serve --hardware, --exclude and --compare, so a buyer who can say
"domestic only, no Biren" says it in two flags instead of listing seventeen ids.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError, closest, explain_validation
from ..inputs import load_yaml
from .profiles import HardwareProfile, profile_dirs, vendor_word

BUILT_IN = ("domestic", "imported")


class Group(BaseModel):
    """A named set of parts; members are profile ids or id patterns (`hw_910b*`)."""
    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=3)
    members: list[str] = Field(min_length=1)


def load_groups(extra: list | None = None) -> dict[str, Group]:
    """groups.yaml of every profiles folder, later folders overriding earlier ones."""
    groups: dict[str, Group] = {}
    for d in profile_dirs(extra):
        path = d / "groups.yaml"
        if not path.is_file():
            continue
        raw = load_yaml(path, "groups file", "a mapping of name -> {description, members}") or {}
        if not isinstance(raw, dict):
            raise UserError(f"{path}: expected a mapping of group name -> {{description, members}}")
        for name, fields in raw.items():
            try:
                groups[str(name).lower()] = Group(**(fields if isinstance(fields, dict) else {}))
            except ValidationError as err:
                raise UserError(explain_validation(err, f"{path}: group '{name}'", Group.model_fields)) from None
    return groups


def vendor_key(hw: HardwareProfile) -> str:
    """The vendor as a one-word name: 'nvidia', 'huawei', 'moore' (Moore Threads) ..."""
    return vendor_word(hw.vendor)


@dataclass(frozen=True)
class Catalog:
    profiles: dict[str, HardwareProfile]
    groups: dict[str, Group]

    @property
    def accelerators(self) -> list[str]:
        return [p.id for p in self.profiles.values() if p.kind == "accelerator"]

    def vendors(self) -> list[str]:
        """The accelerator vendors as one-word names."""
        return sorted({vendor_key(self.profiles[i]) for i in self.accelerators})

    def names(self) -> list[str]:
        return [*self.profiles, *self.groups, *BUILT_IN, *self.vendors()]

    def by_vendor(self, name: str) -> list[str]:
        """Accelerators of a vendor, by its one-word name or its full name ('Moore Threads')."""
        key = name.strip().lower()
        return [i for i in self.accelerators if key in (vendor_key(self.profiles[i]), self.profiles[i].vendor.lower())]

    def resolve(self, name: str, option: str = "--hardware") -> list[str]:
        """The accelerator ids a name stands for; an unknown name is a one-line error."""
        n = name.strip()
        key = n.lower()
        if n in self.profiles:
            return [n]
        if key in self.groups:
            ids = [i for pattern in self.groups[key].members for i in self._match(pattern)]
            return list(dict.fromkeys(ids))
        if key in BUILT_IN:
            return [i for i in self.accelerators if self.profiles[i].domestic == (key == "domestic")]
        prefix = f"{n}_*" if n.isalnum() else None  # an id prefix such as nv or hw, never a mistyped id
        ids = self.by_vendor(n) or self._match(n if "*" in n else prefix or "")
        if ids:
            return ids
        raise UserError(f"{option} {n}: no profile, group or vendor of that name{closest(n, self.names())}; "
                        f"see `infra-bench profiles list` and `infra-bench profiles groups`")

    def _match(self, pattern: str) -> list[str]:
        return [i for i in self.accelerators if fnmatch.fnmatchcase(i, pattern)]

    def select(self, hardware: tuple[str, ...] = (), domestic: bool = False, vendors: tuple[str, ...] = (),
               exclude: tuple[str, ...] = ()) -> list[str] | None:
        """The candidate ids, or None for every accelerator profile (nothing narrowed)."""
        if not (hardware or domestic or vendors or exclude):
            return None
        ids = [i for name in _split(hardware) for i in self.resolve(name)] if hardware else self.accelerators
        if domestic:
            ids = [i for i in ids if self.profiles[i].domestic]
        if vendors:
            wanted = set()
            for v in _split(vendors):
                found = self.by_vendor(v)
                if not found:
                    raise UserError(f"--vendor {v}: no accelerator profile of that vendor"
                                    f"{closest(v.lower(), self.vendors())}; vendors: {', '.join(self.vendors())}")
                wanted |= set(found)
            ids = [i for i in ids if i in wanted]
        dropped = {i for name in _split(exclude) for i in self.resolve(name, "--exclude")}
        ids = [i for i in dict.fromkeys(ids) if i not in dropped]
        if not ids:
            raise UserError("no candidate is left after --hardware, --domestic, --vendor and --exclude; "
                            "widen the selection")
        return ids


def _split(values: tuple[str, ...]) -> list[str]:
    """Repeated options and comma-separated lists alike."""
    return [x.strip() for v in values for x in v.split(",") if x.strip()]


def catalog(profiles: dict[str, HardwareProfile], extra: list | None = None) -> Catalog:
    return Catalog(profiles, load_groups(extra))
