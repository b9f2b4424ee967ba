"""Text to video with diffusion transformers (Wan2.1, HunyuanVideo): per-step, text-encoder and 3D VAE
times, seconds per video and per frame, and the VAE decode's peak memory."""
from ..base import MIB, Kind, KindMetrics, Latency, num_text, stat_text

KIND = Kind(
    name="video",
    description="text to video (diffusion transformers)",
    spec="infra_bench.kinds.video.spec:VideoSpec",
    workload="infra_bench.kinds.video.workload",
    executors={"torch": "infra_bench.kinds.video.torch_exec:build"},
    cell_keys={"batch_size": "b", "resolution": "r", "frames": "f", "steps": "s"},
    energy_unit="video",
    columns=(
        ("res", lambda r, m, c: str(c["resolution"])),
        ("frames", lambda r, m, c: str(c["frames"])),
        ("steps", lambda r, m, c: str(c["steps"])),
        ("step p50 ms", lambda r, m, c: stat_text(m.get("step_s"), 1e3, ".1f")),
        ("text ms", lambda r, m, c: stat_text(m.get("text_encode_s"), 1e3, ".1f")),
        ("VAE ms", lambda r, m, c: stat_text(m.get("vae_decode_s"), 1e3, ".1f")),
        ("VAE peak MiB", lambda r, m, c: num_text(m["vae_decode_peak_bytes"] / MIB if m.get("vae_decode_peak_bytes")
                                                  is not None else None, ".0f")),
        ("video p50 s", lambda r, m, c: stat_text(m.get("video_s"), 1, ".3f")),
        ("s/frame", lambda r, m, c: stat_text(m.get("s_per_frame"), 1, ".4f")),
        ("videos/s", lambda r, m, c: num_text(m.get("videos_per_s"), ".3f")),
    ),
    metrics=KindMetrics("videos_per_s", "videos/s", (Latency("video_s", "video latency (s)", 1.0),)),
    service="infra_bench.kinds.video.planner:VideoService",
    planner_models="infra_bench.planner.media_model:catalog_ids",
    predict="infra_bench.kinds.video.planner:predict_hook",
    predict_options=("precision", "size", "frames", "steps", "guidance_scale", "concurrency", "max_throughput"),
    plan_latency=("video_s", "one video alone (s)"),
    calibration_point="infra_bench.kinds.video.planner:calibration_point",
    catalogs=("video",),
)
