"""What a report is made of: runs (by id under a results folder, or a run folder) and plans (a
file from `infra-bench plan --json`, or the plan command's own dict), checked up front so a bad
input is one line naming the file and the fix."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import UserError
from ..results.schema import Manifest
from ..results.store import RECORDS, RunStore

PLAN_KEYS = ("demand", "rank_by", "candidates")
PLAN_EXTRAS = ("compare", "sensitivity", "mixed")
MAKE_PLAN = "make one with `infra-bench plan DEMAND.yaml --json > plan.json`"


@dataclass(frozen=True)
class RunData:
    run_id: str
    folder: Path
    manifest: Manifest
    records: list[dict]


@dataclass(frozen=True)
class PlanData:
    source: str          # the file it came from, or 'infra-bench plan'
    plan: object         # planner.sizing.Plan
    extra: dict          # the optional 'compare', 'sensitivity' and 'mixed' views


def plan_from_dict(data: dict, source: str) -> PlanData:
    """The Plan dataclasses back from `Plan.to_dict()` (plus the plan command's extra keys)."""
    from ..planner.sizing import Candidate, Option, Plan

    missing = [k for k in PLAN_KEYS if k not in data]
    if missing:
        raise UserError(f"{source}: not a plan (no '{missing[0]}' key); {MAKE_PLAN}")
    try:
        cands = [Candidate(**{**c, "options": [Option(**o) for o in c["options"]]}) for c in data["candidates"]]
        plan = Plan(**{f.name: data[f.name] for f in fields(Plan) if f.name != "candidates" and f.name in data},
                    candidates=cands)
    except (TypeError, KeyError) as e:
        raise UserError(f"{source}: a plan file in an unknown layout ({e}); {MAKE_PLAN} with this version") from None
    return PlanData(source, plan, {k: data[k] for k in PLAN_EXTRAS if data.get(k) is not None})


def _plan_file(path: Path) -> PlanData:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable JSON plan ({type(e).__name__}); give a run id, a run folder, or "
                        f"a plan file ({MAKE_PLAN})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a plan (a JSON {type(data).__name__}, not an object with the plan's keys); "
                        f"{MAKE_PLAN}")
    return plan_from_dict(data, str(path))


def finish_hint(store: RunStore, started: bool = False) -> str:
    """How to finish a run that has no records (or, `started`, some): `run --resume` refused probes and sweeps,
    which it named for all."""
    m = store.manifest()
    if m.kind != "run":
        what = "loadtest" if m.kind == "endpoint" else "probe"
        return f"it was a {what} stopped before its {'last' if started else 'first'} " \
               f"{'point' if what == 'loadtest' else 'test'} ended; run the {what} again"
    command = "sweep" if m.matrix else "run"
    ray = " --ray" if m.matrix and m.matrix.executor == "ray" else ""
    out = "" if store.folder.parent == Path("results") else f" --out {store.folder.parent}"
    return f"finish it with `infra-bench {command} --resume {store.run_id}{ray}{out}`"


def _run(item: str, results: Path) -> RunData:
    p = Path(item)
    store = RunStore.open(results, str(p.parent) if p.is_file() and p.name == RECORDS else item)
    records = store.records()
    if not records:
        raise UserError(f"run {store.run_id} has no records yet; {finish_hint(store)}, or pick another run")
    return RunData(store.run_id, store.folder, store.manifest(), records)


def load_inputs(items: Sequence[str | Path | dict], results: Path) -> tuple[list[RunData], list[PlanData]]:
    """Runs and plans, in the order given. A dict is a plan; a file is a plan file (or a
    records.jsonl); anything else is a run id under `results` or a run folder."""
    runs: list[RunData] = []
    plans: list[PlanData] = []
    for item in items:
        if isinstance(item, dict):
            plans.append(plan_from_dict(item, "infra-bench plan"))
        elif Path(item).is_file() and Path(item).name != RECORDS:
            plans.append(_plan_file(Path(item)))
        else:
            runs.append(_run(str(item), results))
    if len({r.run_id for r in runs}) < len(runs):
        raise UserError("the same run is given twice; give each run once")
    return runs, plans
