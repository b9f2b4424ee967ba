"""Text to image with Stable-Diffusion-style pipelines: per-step, text-encoder and VAE times, images/s."""
from pathlib import Path

from ..base import Kind, KindMetrics, Latency, Route, num_text, stat_text


def steps_text(asked: int, run: int | None) -> str:
    """The denoising steps a cell ran, and those asked where the scheduler ran another count (PNDM)."""
    return str(asked) if run in (None, asked) else f"{run} ({asked} asked)"


def is_local_pipeline(path: Path) -> bool:
    """A diffusers pipeline folder: it has the model_index.json save_pretrained writes."""
    return (path / "model_index.json").is_file()


KIND = Kind(
    name="diffusion",
    description="text to image (diffusion pipelines)",
    spec="infra_bench.spec.diffusion:DiffusionSpec",
    workload="infra_bench.workloads.diffusion",
    executors={"torch": "infra_bench.backends.torch.diffusion:build_diffusion",
               "onnxruntime": "infra_bench.backends.onnxruntime.diffusion:build_diffusion"},
    cell_keys={"batch_size": "b", "resolution": "r", "steps": "s"},
    energy_unit="image",
    columns=(
        ("res", lambda r, m, c: str(c["resolution"])),
        ("steps", lambda r, m, c: steps_text(c["steps"], m.get("denoise_steps_run"))),
        ("step p50 ms", lambda r, m, c: stat_text(m.get("step_s"), 1e3, ".1f")),
        ("text ms", lambda r, m, c: stat_text(m.get("text_encode_s"), 1e3, ".1f")),
        ("VAE ms", lambda r, m, c: stat_text(m.get("vae_decode_s"), 1e3, ".1f")),
        ("image p50 s", lambda r, m, c: stat_text(m.get("image_s"), 1, ".3f")),
        ("images/s", lambda r, m, c: num_text(m.get("images_per_s"), ".2f")),
        ("GFLOP/image", lambda r, m, c: num_text(m["flops_per_image"] / 1e9 if m.get("flops_per_image") else None,
                                                 ".1f")),
    ),
    metrics=KindMetrics("images_per_s", "images/s", (Latency("image_s", "image latency (s)", 1.0),)),
    charts=(("Diffusion per-step and phase times", "infra_bench.report.run_charts:diffusion_steps"),),
    served="infra_bench.serving.models:served_images",
    routes=(Route("/v1/images/generations", "infra_bench.serving.routes:images"),),
    service="infra_bench.planner.demand:DiffusionService",
    planner_models="infra_bench.planner.media_model:diffusion_ids",
    calibration_point="infra_bench.planner.media_model:diffusion_point",
    predict="infra_bench.report.predict:diffusion",
    predict_options=("engine", "precision", "resolution", "steps", "guidance_scale", "concurrency", "max_throughput"),
    plan_latency=("image_s", "one image alone (s)"),
    catalogs=("diffusion", "dit"),
    local_model="infra_bench.kinds.diffusion:is_local_pipeline",
)
