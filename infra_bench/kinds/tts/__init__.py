"""Text to speech: synthesis time, first audio, real-time factor and audio seconds per second."""
from ..base import Kind, KindMetrics, Latency, Route, num_text, stat_text

KIND = Kind(
    name="tts",
    description="text to speech",
    spec="infra_bench.spec.tts:TtsSpec",
    workload="infra_bench.workloads.tts",
    executors={"torch": "infra_bench.backends.torch.tts:build_tts",
               "onnxruntime": "infra_bench.backends.onnxruntime.tts:build_tts"},
    cell_keys={"batch_size": "b", "text_len": "t"},
    energy_unit="audio_s",
    columns=(
        ("text", lambda r, m, c: str(c["text_len"])),
        ("synth p50 ms", lambda r, m, c: stat_text(m.get("synth_s"), 1e3, ".1f")),
        ("first audio ms", lambda r, m, c: stat_text(m.get("first_audio_s"), 1e3, ".1f")),
        ("audio s", lambda r, m, c: stat_text(m.get("audio_s"), 1, ".2f")),
        ("RTF p50", lambda r, m, c: stat_text(m.get("rtf"), 1, ".3f")),
        ("audio s/s", lambda r, m, c: num_text(m.get("audio_s_per_s"), ".1f")),
    ),
    metrics=KindMetrics("audio_s_per_s", "audio seconds per second",
                        (Latency("synth_s", "synthesis (ms)", 1e3), Latency("rtf", "RTF (synthesis s / audio s)", 1.0))),
    charts=(("TTS real-time factor", "infra_bench.report.run_charts:tts_rtf"),),
    served="infra_bench.serving.models:served_speech",
    routes=(Route("/v1/audio/speech", "infra_bench.serving.routes:speech"),),
    service="infra_bench.planner.demand:TtsService",
    planner_models="infra_bench.planner.media_model:catalog_ids",
    calibration_point="infra_bench.planner.media_model:tts_point",
    predict="infra_bench.report.predict:tts",
    predict_options=("engine", "precision", "text_len", "concurrency"),
    plan_latency=("rtf_alone", "RTF of one stream alone"),
    catalogs=("tts",),
)
