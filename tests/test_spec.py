from pathlib import Path

import pytest

from infra_bench.errors import UserError
from infra_bench.spec import LlmSpec, load_spec_file, load_specs, spec_from_dict
from infra_bench.spec.loader import apply_overrides


def test_grid_accepts_scalars_and_orders_cells():
    s = spec_from_dict({"arch": "llama-tiny", "batch_size": [1, 2], "prompt_len": 8, "output_len": [4, 6]})
    assert [tuple(c.values()) for c in s.cells()] == [(1, 8, 4), (1, 8, 6), (2, 8, 4), (2, 8, 6)]
    assert s.label == "llama-tiny" and s.device == "auto" and s.backend == "torch"


@pytest.mark.parametrize("data, expected", [
    ({"arch": "llama-tiny", "bach_size": [1]}, "unknown field 'bach_size' (did you mean 'batch_size'?)"),
    ({"arch": "llama-tiny", "model": "x"}, "give exactly one of 'arch'"),
    ({}, "give exactly one of 'arch'"),
    ({"arch": "llama-tiny", "dtype": "fp8"}, "field 'dtype'"),
    ({"arch": "llama-tiny", "output_len": 1}, "field 'output_len.0'"),
    ({"arch": "llama-tiny", "batch_size": 0}, "field 'batch_size.0'"),
    ({"kind": "lm", "arch": "x"}, "unknown kind 'lm' (did you mean 'llm'?)"),
    # a repeated grid value measured one cell twice under one cell id (resume and reports took them as one)
    ({"arch": "llama-tiny", "batch_size": [1, 4, 1]}, "batch_size lists 1 more than once; list each value once"),
    ({"kind": "diffusion", "arch": "sd-tiny", "steps": [8, 8]}, "steps lists 8 more than once"),
    ({"kind": "embedding", "arch": "bert-tiny-embed", "seq_len": [16, 16]}, "seq_len lists 16 more than once"),
])
def test_bad_fields_name_the_problem(data, expected):
    with pytest.raises(UserError, match=None) as e:
        spec_from_dict(data, "w.yaml")
    assert expected in str(e.value) and str(e.value).startswith("w.yaml")
    assert "\n" not in str(e.value)


def test_yaml_errors_give_the_line(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("kind: llm\narch: [llama-tiny\n")
    with pytest.raises(UserError, match=r"invalid YAML at line \d+"):
        load_spec_file(p)
    with pytest.raises(UserError, match="spec file not found"):
        load_spec_file(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(UserError, match="holds no spec"):
        load_spec_file(tmp_path / "empty.yaml")


def test_multi_document_files_and_duplicate_names(tmp_path: Path):
    p = tmp_path / "two.yaml"
    p.write_text("arch: llama-tiny\n---\narch: gpt2-tiny\n")
    assert [s.label for s in load_specs([p])] == ["llama-tiny", "gpt2-tiny"]
    with pytest.raises(UserError, match="two specs share the name 'llama-tiny'"):
        load_specs([p, p])


def test_model_path_is_relative_to_the_spec_file(tmp_path: Path):
    p = tmp_path / "s.yaml"
    p.write_text("model: ckpt\n")
    (spec,) = load_spec_file(p)
    assert isinstance(spec, LlmSpec) and spec.model == tmp_path / "ckpt"


def test_a_backend_given_on_the_command_line_drops_the_file_backends_options():
    """`run --backend torch` over a spec written for onnxruntime (ep: cpu) said "'ep' applies only to backend
    onnxruntime; ... (or --backend onnxruntime)", contradicting the flag just given."""
    from infra_bench.spec.loader import apply_overrides, spec_from_dict

    ort = spec_from_dict({"kind": "llm", "arch": "llama-tiny", "backend": "onnxruntime", "ep": "cpu"}, "s")
    torch = apply_overrides(ort, {"backend": "torch"})
    assert torch.backend == "torch" and torch.options == {}
    again = apply_overrides(torch, {"backend": "onnxruntime", "options": {"ep": "cpu"}})
    assert again.options["ep"] == "cpu"


def test_a_relative_model_folder_is_kept_absolute(tmp_path: Path, monkeypatch):
    """Relative to the spec file, then absolute: a sweep re-reading the spec doubled the folder (sw/sw/model) and a
    resume from another directory looked under that directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sw" / "model").mkdir(parents=True)
    (tmp_path / "sw" / "model" / "config.json").write_text("{}")
    first = str(spec_from_dict({"kind": "llm", "model": "model"}, "sw/s.yaml").model)
    assert first == str(tmp_path / "sw" / "model")
    again = str(spec_from_dict({"kind": "llm", "model": first}, "sw/s.yaml").model)  # a re-read, as a sweep does
    assert again == first


def test_a_time_cap_below_the_minimum_time_is_refused():
    """max_time_s under min_time_s was taken, and the cap won: every cell stopped at max_time_s, so the minimum
    the spec asked for never held. Refused in the file and after command-line overrides; equal is fine."""
    from infra_bench.spec.loader import apply_overrides

    with pytest.raises(UserError, match=r"^w.yaml: max_time_s 0.5 is below min_time_s 2: the cap would end each "
                                        r"cell at 0.5 s"):
        spec_from_dict({"arch": "llama-tiny", "min_time_s": 2, "max_time_s": 0.5}, "w.yaml")
    s = spec_from_dict({"arch": "llama-tiny", "min_time_s": 2, "max_time_s": 2}, "w.yaml")
    with pytest.raises(UserError, match=r"lower min_time_s \(--min-time\)$"):
        apply_overrides(s, {"max_time_s": 1.0})
    assert apply_overrides(s, {"max_time_s": 1.0, "min_time_s": 0.5}).max_time_s == 1.0


def test_a_built_in_pipeline_runs_at_its_own_settings_unless_the_spec_says_otherwise():
    """A diffusion spec naming a built-in pipeline and nothing else ran at the generic 512 px, 20 steps and
    guidance 7.5 (FLUX.1-dev at a guidance it is not published with, SDXL below its native size), while `serve
    --arch` used the pipeline's own; both now take them from the catalog, and what a spec gives still wins."""
    from infra_bench.serving.models import _arch_fields

    flux = spec_from_dict({"kind": "diffusion", "arch": "flux-1-dev"}, "s.yaml")
    assert (flux.resolution, flux.steps, flux.guidance_scale) == ([1024], [28], 3.5)
    assert spec_from_dict(_arch_fields("flux-1-dev"), "--arch flux-1-dev") == flux
    sdxl = spec_from_dict({"kind": "diffusion", "arch": "sdxl-base-1.0"}, "s.yaml")
    assert (sdxl.resolution, sdxl.steps, sdxl.guidance_scale) == ([1024], [20], 7.5)
    given = spec_from_dict({"kind": "diffusion", "arch": "flux-1-dev", "steps": 4, "resolution": [512]}, "s.yaml")
    assert (given.resolution, given.steps, given.guidance_scale) == ([512], [4], 3.5)
    assert apply_overrides(flux, {"dtype": "bf16"}).steps == [28]  # a re-read keeps them
    folder = spec_from_dict({"kind": "diffusion", "model": "/nonexistent"}, "s.yaml")
    assert (folder.resolution, folder.steps, folder.guidance_scale) == ([512], [20], 7.5)


def test_a_built_in_video_model_runs_at_its_own_settings():
    """A video spec naming HunyuanVideo and nothing else took Wan2.1's settings (832x480, 81 frames, and a
    guidance of 5.0 recorded for a model that embeds its guidance); it now takes its own."""
    hy = spec_from_dict({"kind": "video", "arch": "hunyuanvideo"}, "s.yaml")
    assert (hy.resolution, hy.frames, hy.steps, hy.guidance_scale, hy.cfg) == (["1280x720"], [129], [50], 1.0, False)
    wan = spec_from_dict({"kind": "video", "arch": "wan2.1-t2v-14b", "frames": 33}, "s.yaml")
    assert (wan.resolution, wan.frames, wan.guidance_scale) == (["1280x720"], [33], 5.0)
