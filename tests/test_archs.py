"""`archs`: the built-in architectures `run --arch` builds, listed without reading source."""
import json
from pathlib import Path

from .conftest import assert_one_line_error, run_cli


def test_archs_lists_the_built_in_architectures(tmp: Path):
    from infra_bench.inputs import load_yaml
    from infra_bench.paths import data_dir

    quick = {d["arch"] for d in load_yaml(data_dir("workloads") / "quick.yaml", "suite", "", documents=True)
             if d.get("arch")}
    p = run_cli("archs", cwd=tmp)
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line.split() for line in p.stdout.splitlines()[2:] if line and line[0] != "-"}
    assert quick <= {name for name, row in rows.items() if row[3] == "yes"}
    assert rows["gpt2-small"][:4] == ["gpt2-small", "llm", "124M", "yes"]
    assert rows["llama-3.1-8b"][:3] == ["llama-3.1-8b", "llm", "8.03B"] and "Llama 3.1 8B" in p.stdout
    listed = json.loads(run_cli("archs", "--kind", "tts", "--json", cwd=tmp).stdout)
    assert {a["kind"] for a in listed} == {"tts"} and {"vits-mms", "csm-tiny", "f5-tts-v1-base"} <= \
        {a["name"] for a in listed}
    assert next(a for a in listed if a["name"] == "vits-mms")["quick_suite"] is True
    assert_one_line_error(run_cli("archs", "--kind", "tt", cwd=tmp), "--kind: unknown kind 'tt' (did you mean 'tts'?)")


def test_the_listed_architectures_are_those_each_kind_builds():
    """`archs` and `run --arch` read the YAML catalogs through the registry (no torch); each kind's workload
    resolves by its own catalog: the two must name the same architectures."""
    from infra_bench.catalog import builtin_archs
    from infra_bench.kinds import KINDS

    for name, kind in KINDS.items():
        module = kind.workload_module()
        built = list(getattr(module, "arch_names", module.catalog)())
        assert sorted(built) == sorted(a.name for a in builtin_archs().values() if a.kind == name), name
