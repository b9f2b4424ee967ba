"""`infra-bench sweep MATRIX.yaml [--ray [ADDRESS]] [--resume RUN_ID]`: a matrix of specs x
backends x devices (x node types), run here or as Ray tasks across a cluster."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UserError, interrupted_before_measuring
from . import preflight

LOCAL = "local"


def _manifest(store_id: str, planned, opts, matrix, nodes: dict[str, dict | None], executor: str):
    from .. import engine
    from ..results.schema import SweepSettings

    return engine.manifest(store_id, planned, opts, SweepSettings(
        name=matrix.name, node_types=nodes, max_retries=matrix.max_retries, max_in_flight=matrix.max_in_flight,
        executor=executor))


@click.command()
@click.argument("matrix_file", metavar="[MATRIX.yaml]", required=False, type=click.Path(path_type=Path))
@click.option("--ray", "ray_address", is_flag=False, flag_value=LOCAL, metavar="[ADDRESS]",
              help="Run every cell as a Ray task: alone, a local Ray cluster (or RAY_ADDRESS); "
                   "with ADDRESS (host:port or ray://...), that cluster.")
@click.option("--resume", "resume_id", metavar="RUN_ID", help="Finish a sweep: run only the cells without a record.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Results folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON on stdout.")
def sweep(matrix_file: Path | None, ray_address: str | None, resume_id: str | None, out: Path, as_json: bool) -> None:
    """Run a sweep matrix here, or across a Ray cluster with --ray."""
    from ..engine import resume_command
    from ..results.store import RunStore, new_run_id
    from ..spec.loader import spec_from_dict
    from .matrix import NodeType, load_matrix

    if ray_address and ray_address.endswith((".yaml", ".yml")) and not matrix_file:
        raise UserError(f"--ray took '{ray_address}' as the cluster address; put the matrix first "
                        f"(`infra-bench sweep {ray_address} --ray`) or give --ray HOST:PORT")
    if resume_id:
        if matrix_file:
            raise UserError("--resume takes the matrix from the run itself; give only --resume RUN_ID "
                            "(with --ray and --out as needed)")
        store = RunStore.open(out, resume_id).lock()
        m = store.manifest()
        if m.matrix is None:  # the commands name the run's folder (--out), as the run's own Ctrl-C line does
            raise UserError(f"run {resume_id} is not a sweep; finish it with `{resume_command(store)}`")
        if (m.matrix.executor == "ray") != bool(ray_address):  # cells are named by the device each side resolves
            raise UserError(f"sweep {resume_id} ran {'on Ray' if m.matrix.executor == 'ray' else 'here'}; resume it "
                            f"the same way (`{resume_command(store, 'sweep', ' --ray' * (m.matrix.executor == 'ray'))}"
                            f"`), or its cells would be measured again under other names")
        options = {"out": store.folder.parent, "cpu_watts_per_core": m.options.cpu_watts_per_core,
                   "trust_remote_code": m.options.trust_remote_code}
        specs = [spec_from_dict(s, f"{store.folder}/run.json") for s in m.specs]
        nodes = {k: NodeType(**v) if v else None for k, v in m.matrix.node_types.items()}
        jobs_specs = [(s, nodes.get(s.label)) for s in specs]
        settings = m.matrix.model_dump()
    else:
        if not matrix_file:
            raise UserError("give a MATRIX.yaml to run, or --resume RUN_ID; see docs/scale-out.md")
        matrix, jobs_specs = load_matrix(matrix_file)
        settings = matrix.model_dump()
        options = {"out": out}
        store = None
    uses_nodes = any(node for _, node in jobs_specs)
    if uses_nodes and not ray_address:
        raise UserError("node_types place cells on Ray nodes; add --ray [ADDRESS], or drop node_types to run here")
    if ray_address:  # Ray installed and its address answering, before the cells are planned (seconds, torch)
        address = preflight.ray_address(None if ray_address == LOCAL else ray_address)
    with interrupted_before_measuring("sweep", resume_id):
        from .. import engine as local  # torch comes in here, after the matrix and options are checked
        from ..system import collect
        from . import ray_driver

        opts = local.RunOptions(**options)
        planned = local.plan([s for s, _ in jobs_specs], opts, probe_devices=not ray_address)
        if store is not None:
            local.check_same_models(store, planned)

    if not ray_address:
        if store is None:
            run_id = new_run_id()
            store = RunStore.create(opts.out, run_id, _manifest(run_id, planned, opts, matrix,
                                                                {p.spec.label: None for p in planned}, "local"))
        with local.resumable(store, local.resume_command(store, "sweep")):  # from the moment the run folder exists
            click.echo(f"sweep {store.run_id}: {sum(len(p.cells) for p in planned)} cell(s) here, records in "
                       f"{store.folder / 'records.jsonl'}", err=True)
            local.execute(planned, store, collect(), opts)
    else:
        node_of = {s.label: node for s, node in jobs_specs}
        jobs = [ray_driver.Job(p.spec, node_of[p.spec.label], c, p.cell_id(c)) for p in planned for c in p.cells]
        ray = ray_driver.connect(address)
        try:
            alive = ray_driver.check_placement(ray, jobs)
            if store is None:
                run_id = new_run_id()
                store = RunStore.create(opts.out, run_id, _manifest(
                    run_id, planned, opts, matrix,
                    {k: v.model_dump() if v else None for k, v in node_of.items()}, "ray"))
            in_flight = settings.get("max_in_flight") or alive
            click.echo(f"sweep {store.run_id}: {len(jobs)} cell(s) on Ray ({alive} node(s), up to {in_flight} "
                       f"at once), records in {store.folder / 'records.jsonl'}", err=True)
            again = local.resume_command(store, "sweep", " --ray" + ("" if ray_address == LOCAL else f" {ray_address}"))
            with local.resumable(store, again):
                ray_driver.execute(ray, jobs, store, opts, settings["max_retries"], in_flight)
        finally:
            ray.shutdown()
    from ..report.show import show_records

    records = show_records(store, as_json)
    if any(r["status"] == "failed" for r in records):
        sys.exit(1)
