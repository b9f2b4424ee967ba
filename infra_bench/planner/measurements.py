"""Serving measurements the planner fits and validates on, in one shape.

Sources:
- NVIDIA's AIConfigurator silicon sample (workloads/reference/, Apache-2.0): aggregated serving of 11
  models on H100/H200/B200/B300/GB200 under TensorRT-LLM, vLLM and SGLang at a client concurrency;
- SemiAnalysis's InferenceX (workloads/reference/, Apache-2.0): DeepSeek-R1 under SGLang on AMD MI300X, MI325X and
  MI355X, the AMD parts the sample lacks;
- workloads/published_measurements.csv: published points with their sources (GPUStack, NIM, MindIE);
- the user's own `run` records (our runners batch statically: a batch is prefilled together, then
  decoded together) and `loadtest` records of an OpenAI-compatible server (closed-loop points).

A measurement names the model, hardware profile, engine, precision and layout it ran with, its load
(clients per attention-DP rank, prompt and output lengths) and what was measured (mean TTFT and/or
TPOT). Rows that cannot be mapped are returned with why.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import UserError
from ..paths import data_dir
from .engines import ENGINES, engine_name
from .iteration import Layout, peak_tflops
from .profiles import HardwareProfile, match_device
from .shapes import architecture, shapes

AIC_MODELS = {"deepseek-ai/DeepSeek-R1": "deepseek-r1", "deepseek-ai/DeepSeek-V3": "deepseek-v3",
              "nvidia/DeepSeek-R1-NVFP4": "deepseek-r1", "nvidia/DeepSeek-V3.1-NVFP4": "deepseek-v3",
              "MiniMaxAI/MiniMax-M2.5": "minimax-m2.5", "openai/gpt-oss-120b": "gpt-oss-120b",
              "meta-llama/Llama-3.1-70B": "llama-3.1-70b", "Qwen/Qwen3-32B": "qwen3-32b",
              "nvidia/Qwen3-32B-NVFP4": "qwen3-32b", "Qwen/Qwen3.5-397B-A17B": "qwen3.5-397b-a17b",
              "moonshotai/Kimi-K2.5": "kimi-k2.5", "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
              "nvidia/Llama-3.1-8B-Instruct-FP8": "llama-3.1-8b", "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
              "zhipuai/GLM-5": "glm-5"}
AIC_SYSTEMS = {"h100_sxm": "nv_h100_sxm", "h200_sxm": "nv_h200_sxm", "b200_sxm": "nv_b200", "gb200": "nv_gb200_gpu",
               "b300_sxm": "nv_b300", "gb300": "nv_gb300_gpu"}
AIC_QUANT = {"fp8": "fp8", "fp8_block": "fp8", "nvfp4": "fp4", "int4_wo": "int4"}
PUBLISHED_MODELS = {"qwen3-8b": "qwen3-8b", "llama-3.1-8b-instruct": "llama-3.1-8b", "llama-3.1-70b": "llama-3.1-70b",
                    "llama-3.3-70b-instruct": "llama-3.1-70b", "qwen3-30b-a3b": "qwen3-30b-a3b",
                    "qwen3-32b": "qwen3-32b", "qwen2.5-7b-instruct": "qwen2.5-7b"}
PUBLISHED_HARDWARE = {"H100-SXM-80GB": "nv_h100_sxm", "H200-SXM-141GB": "nv_h200_sxm",
                      "A100-SXM-80GB": "nv_a100_80g_sxm", "Ascend 910B": "hw_910b2"}
PUBLISHED_PRECISIONS = {"bf16": "bf16", "bf16 (assumed)": "bf16", "fp8": "fp8", "w8a8": "int8"}
STATIC_ENGINES = ("torch", "onnxruntime")  # our runners: static batches
# words a served model's name carries beside the architecture (fine-tune, quantisation, release date)
NAME_NOISE = re.compile(r"^(instruct|chat|it|hf|base|fp8|fp16|bf16|awq|gptq|int4|int8|w8a8|w4a16|nvfp4|\d{4})$")


def catalog_model(name: str | None) -> str | None:
    """The planner catalog's id for a served model name ('Qwen/Qwen2.5-7B-Instruct' -> 'qwen2.5-7b',
    'meta-llama/Meta-Llama-3.1-8B-Instruct-FP8' -> 'llama-3.1-8b'), or None."""
    base = (name or "").strip().lower().rsplit("/", 1)[-1]
    if base in PUBLISHED_MODELS:
        return PUBLISHED_MODELS[base]
    kept = "-".join(w for w in base.removeprefix("meta-").split("-") if not NAME_NOISE.match(w))
    return next((m for m in (base, kept) if m in shapes()), None)


def catalog_shape(config: dict) -> str | None:
    """The planner catalog's id whose architecture a local folder's config.json describes (the same layers,
    hidden size, attention and KV heads, vocabulary and routed experts: a fine-tune of a catalog model runs
    as it does), or None. Twins (a distill of the same shape) are the same to the planner; the first is taken."""
    def first(*keys: str):
        return next((config[k] for k in keys if isinstance(config.get(k), int)), None)
    heads = first("num_attention_heads", "n_head")
    key = (first("num_hidden_layers", "n_layer"), first("hidden_size", "n_embd"), heads,
           first("num_key_value_heads") or heads, first("vocab_size"),
           first("num_local_experts", "num_experts", "n_routed_experts"))
    if None in key[:5]:
        return None
    return next((mid for mid, sh in shapes().items()
                 if (sh.layers, sh.hidden, sh.heads, sh.kv_heads, sh.vocab, sh.experts or None) == key), None)


def local_model(path: str) -> tuple[str, str]:
    """(model id, note) a run of the local folder `path` calibrates as: the catalog model its config.json has the
    shape of (a fine-tune runs as it does), else the folder's own shape (shapes.get_shape, the id `predict --model
    PATH` gives the same folder), so a user's own model is fitted rather than skipped. A UserError naming the
    file where the config.json is gone or can no longer be planned."""
    import json

    from .local_shape import config_file
    from .shapes import get_shape

    try:
        file = config_file(path)
    except UserError:
        raise UserError(f"a run of {path}, whose {Path(path) / 'config.json'} is gone; put the folder back where "
                        f"it ran to calibrate with its records") from None
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError):
        config = None  # get_shape says why
    same = catalog_shape(config) if isinstance(config, dict) else None
    if same:
        return same, f"local model {path} calibrated as {same}, the catalog model of its shape"
    try:
        shape = get_shape(path)
    except UserError as e:
        raise UserError(f"a run of the local model '{Path(path).name}', whose config.json can no longer be planned: "
                        f"{e}") from None  # the error names the file
    return shape.id, (f"a run of {path} (no catalog model has its shape) is calibrated as that local shape, "
                      f"'{shape.id}'")


@dataclass(frozen=True)
class Measurement:
    model: str
    hardware: str
    engine: str
    version: str
    precision: str
    tp: int
    pp: int
    dp: int
    ep: int
    concurrency: float      # clients per attention-DP rank (static engines: the batch)
    input_len: float
    output_len: float
    ttft_s: float | None
    tpot_s: float | None
    source: str
    date: str = ""
    note: str = ""
    memory_fraction: float | None = None  # the engine's memory share where the run set it (loadtest's label)
    requests: float | None = None  # requests in the measured run, whose first clients start together (a loadtest
    #                                point's completed ones); None: the fit's `bench_requests` stands in
    recv_interval: int = 1  # forward passes between the scheduler's reads of new requests (SGLang's
    #                         --scheduler-recv-interval, where the run's launch script set it: `ix_recv`)
    kv_bytes: float | None = None  # bytes per KV element where the run's KV cache differs from the precision's
    #                                default (`ix_kv`); None: the precision's

    @property
    def layout(self) -> Layout:
        return Layout(self.tp, self.pp, self.dp, self.ep)

    @property
    def group(self) -> tuple[str, str, str]:
        return self.hardware, self.engine, self.precision

    def to_dict(self) -> dict:
        return asdict(self)


def repeated_runs(points: list[Measurement]) -> list[bool]:
    """Per point, whether an earlier point is the same run: one configuration (architecture, part, engine, precision,
    layout, load) with both latencies equal to the last digit. The AIConfigurator sample publishes many of
    InferenceX's runs in two or three of its dumps, some under DeepSeek-R1 and DeepSeek-V3 at once (620 of the 3,395
    rows read); held-out figures count each run once (benchmarks/planner_accuracy.py)."""
    seen: set[tuple] = set()
    out = []
    for m in points:
        run = (architecture(m.model), m.hardware, m.engine, m.precision, m.layout, m.concurrency, m.input_len,
               m.output_len, m.ttft_s, m.tpot_s)
        out.append(run in seen)
        seen.add(run)
    return out


def _rows(path) -> list[dict]:
    text = path.read_text()
    return list(csv.DictReader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#")))))


def _num(v: str) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if x != x else x


_ID_LAYOUT = re.compile(r"_tp(\d+)_ep(\d+)_")
# Sample rows taken from InferenceX's published result dumps: their ids begin with the dump's date or end with its
# config id (the source text names the dump: `source_file=2026-03-25.csv`, `db-dump/...`; 2,658 of the 3,619
# aggregated rows); the rest are NVIDIA's own campaigns.
_INFERENCEX_ID = re.compile(r"^\d{4}_\d{2}_\d{2}_|_cfg\d+$")
# InferenceX's client draws each prompt and output length from 0.8 to 1 x the nominal one (random-range-ratio 0.8 in
# its workflow since 2025-08; benchmark_serving.py's sample_random_requests), so a run's mean lengths are 0.9 x them.
INFERENCEX_LENGTHS = 0.9


def ix_recv(model: str, hardware: str, engine: str, precision: str, tp: int, clients: float, date: str) -> int:
    """SGLang's --scheduler-recv-interval in InferenceX's single-node launch scripts for a run (its repository,
    benchmarks/single_node/{dsr1,glm5,qwen3.5}_*_{b200,b300}.sh and the docker scripts before them, read at the
    revision in force on the run's date; `clients` is the run's whole concurrency). Their rule: 30 from 16 clients
    up, else 10; DeepSeek in fp8 at TP 4 and Qwen3.5 in fp8 on a B300 always 10; GLM-5 in fp4 10 from 2026-04-07
    (the script's first version left it out); GLM-5 in fp8 and the H200 and AMD scripts leave SGLang's default, 1;
    other engines poll every pass."""
    if engine != "sglang" or hardware not in ("nv_b200", "nv_b300"):
        return 1
    many = 30 if clients >= 16 else 10
    if model in ("deepseek-r1", "deepseek-v3"):
        return 10 if precision == "fp8" and tp == 4 else many
    if model == "qwen3.5-397b-a17b":
        return 10 if precision == "fp8" and hardware == "nv_b300" else many
    if model == "glm-5" and precision == "fp4":
        return 10 if date >= "2026-04-07" else 1
    return 1


def ix_kv(model: str, hardware: str, engine: str, precision: str) -> float | None:
    """The KV cache's bytes per element in InferenceX's single-node launch scripts where they leave it at the engine's
    default, the checkpoint's 16 bits, while the planner's fp8 precision assumes an fp8 cache: DeepSeek-R1/V3 and GLM-5
    in fp8 under SGLang on the H200 (benchmarks/single_node/{dsr1,glm5}_fp8_h200.sh: no --kv-cache-dtype) and
    MiniMax-M2.5 in fp8 under vLLM on the H100 and H200 (no --kv-cache-dtype until 2026-05-05, after the sample's runs).
    None where the scripts set the precision's own (fp8 elsewhere on these models) or the planner's default holds."""
    if precision != "fp8":
        return None
    if engine == "sglang" and hardware == "nv_h200_sxm" and model in ("deepseek-r1", "deepseek-v3", "glm-5"):
        return 2.0
    if engine == "vllm" and hardware in ("nv_h100_sxm", "nv_h200_sxm") and model == "minimax-m2.5":
        return 2.0
    return None


def aic_layout(row_id: str, tp: int, dp: int, moe_tp: int, moe_ep: int) -> tuple[int, int, int, str]:
    """(TP, attention DP, EP, note) a sample row ran with.

    Some rows record their layout multiplied by the expert-parallel size: a row whose id says
    `_tp8_ep8_` (8 GPUs, experts over 8) carries tp_size 64 with moe_tp 8 x moe_ep 8, or attention DP
    64, and `_tp4_ep4_` carries 16; the sample keeps tp x DP = moe_tp x moe_ep, so both sides grow
    together. Taken as recorded, an 8-GPU run reads as 64 GPUs over eight nodes. Rows whose id names
    no EP (db dumps) show the same shapes: moe_tp = moe_ep > 1 over more than one 8-GPU node, or
    TP = DP with every device an expert rank. Such rows are read at the world size the id (or the
    shape) implies, keeping the attention DP they recorded where it fits."""
    world = tp * dp
    tag = _ID_LAYOUT.search(row_id)
    if tag:
        x, y = int(tag[1]), int(tag[2])
        inflated = y > 1 and world == x * y
    elif moe_tp == moe_ep > 1 and world == moe_tp * moe_ep > 8:
        x, y, inflated = moe_tp, moe_ep, True
    elif tp == dp > 1 and moe_tp == 1 and moe_ep == world:
        x, y, inflated = tp, dp, True
    else:
        inflated = False
    if not inflated:
        return tp, dp, moe_ep, ""
    real_dp = min(dp, x)
    return x // real_dp, real_dp, y, (f"layout read as TP {x // real_dp} x DP {real_dp}, EP {y} ({x} devices): the row "
                                      f"records TP {tp} x DP {dp}, moe {moe_tp} x {moe_ep}, multiplied by its EP")


def speculative_rows() -> dict[str, str]:
    """The sample's rows measured with speculative decoding (multi-token prediction), which the planner does not
    model, and the evidence for each (workloads/reference/speculative_rows.csv says where it comes from). Under
    TensorRT-LLM the planner put their TPOT 31% above the measurement, held out, against -7% for the same campaigns'
    rows without it (docs/planner.md)."""
    return {r["id"]: r["evidence"] for r in _rows(data_dir("workloads") / "reference" / "speculative_rows.csv")}


@lru_cache(maxsize=1)
def _aic() -> tuple[tuple[Measurement, ...], tuple[str, ...]]:
    from .profiles import load_hardware

    profiles = load_hardware()
    speculative = speculative_rows()
    out, skipped = [], []
    for r in _rows(data_dir("workloads") / "reference" / "aiconfigurator_silicon_sample.csv"):
        if r["id"] in speculative:
            skipped.append(f"AIC {r['id']}: measured with speculative decoding ({speculative[r['id']]}), which the "
                           f"planner does not model")
            continue
        model, hw_id = AIC_MODELS.get(r["model_path"]), AIC_SYSTEMS.get(r["system"])
        tp, clients = _num(r["tp_size"]), _num(r["silicon_concurrency"])
        if not (model and hw_id and tp and clients):
            skipped.append(f"AIC {r['id']}: model, system, TP or client concurrency not mappable")
            continue
        recorded_dp = max(int(_num(r["attention_dp_size"]) or 1), 1)
        recorded = (_num(r["batch_size"]) or 0) * recorded_dp
        if abs(recorded - clients) > 0.5:
            # one source's rows: batch_size is the clients over TP, or the id names several workers
            skipped.append(f"AIC {r['id']}: batch_size x attention_dp_size ({recorded:g}) disagrees with its "
                           f"{clients:g} clients, so the load per engine cannot be read")
            continue
        moe_devices = (_num(r["moe_tp_size"]) or 0) * (_num(r["moe_ep_size"]) or 0)
        if shapes()[model].moe and moe_devices and tp * recorded_dp != moe_devices:
            # AIConfigurator's own rule (sdk/config.py): tp x attention DP = moe TP x moe EP
            skipped.append(f"AIC {r['id']}: TP x DP does not equal moe TP x moe EP, so its devices cannot be read")
            continue
        precision = r["precision"] or AIC_QUANT.get(r["gemm_quant_mode"], "bf16")
        if precision == "fp4" and not peak_tflops(profiles[hw_id], "fp4"):
            precision = "int4"  # 4-bit weights on a part without fp4 tensor cores run weight-only
        tp, dp, ep, note = aic_layout(r["id"], int(tp), recorded_dp,
                                      int(_num(r["moe_tp_size"]) or 1), int(_num(r["moe_ep_size"]) or 1))
        b = clients / dp
        layout = Layout(tp, int(_num(r["pp_size"]) or 1), dp, ep)
        why = layout.check(shapes()[model])
        if why:
            skipped.append(f"AIC {r['id']}: {why}")
            continue
        inferencex = bool(_INFERENCEX_ID.search(r["id"]))
        scale = INFERENCEX_LENGTHS if inferencex else 1.0  # the run's mean lengths
        engine = engine_name(r["backend"])
        recv = ix_recv(model, hw_id, engine, precision, layout.tp, clients, r["measured"] or "") if inferencex else 1
        out.append(Measurement(model, hw_id, engine, r["backend_version"] or "", precision,
                               layout.tp, layout.pp, layout.dp, layout.ep, b, scale * float(r["isl"]),
                               scale * float(r["osl"]),
                               float(r["silicon_ttft_ms"]) / 1e3, float(r["silicon_tpot_ms"]) / 1e3,
                               f"AIConfigurator silicon sample {r['id']}", r["measured"] or "", note,
                               recv_interval=recv,
                               kv_bytes=ix_kv(model, hw_id, engine, precision) if inferencex else None))
    return tuple(out), tuple(skipped)


def aic_measurements() -> tuple[list[Measurement], list[str]]:
    """The AIConfigurator silicon sample's aggregated-serving rows that map to our catalog and profiles."""
    points, skipped = _aic()
    return list(points), list(skipped)


INFERENCEX_HARDWARE = {"mi300x": "amd_mi300x", "mi325x": "amd_mi325x", "mi355x": "amd_mi355x"}
INFERENCEX_MODELS = {"deepseek-ai/DeepSeek-R1-0528": "deepseek-r1"}


def inferencex_measurements() -> list[Measurement]:
    """SemiAnalysis's InferenceX runs of DeepSeek-R1 under SGLang on AMD parts (workloads/reference/
    inferencex_amd_sample.csv): the sample has no AMD part, so without them every AMD prediction is carried from
    NVIDIA's. Read as the sample's InferenceX rows are (most of the sample is InferenceX's published runs): mean TTFT
    and TPOT at the runs' mean lengths, 0.9 x the nominal ones; where a snapshot kept only medians, TPOT is the
    median (the two differ by about 1%) and TTFT is not used (the mean is 1.2-3x the median: the clients start together, and a few
    requests wait long)."""
    out = []
    for r in _rows(data_dir("workloads") / "reference" / "inferencex_amd_sample.csv"):
        tpot = _num(r["tpot_ms_mean"]) or _num(r["tpot_ms_median"])
        ttft = _num(r["ttft_ms_mean"])
        out.append(Measurement(INFERENCEX_MODELS[r["model"]], INFERENCEX_HARDWARE[r["hardware"]], r["engine"],
                               r["image"].rsplit(":", 1)[-1], r["precision"], int(r["tp"]), 1, 1, int(r["ep"]),
                               float(r["concurrency"]), INFERENCEX_LENGTHS * float(r["isl"]),
                               INFERENCEX_LENGTHS * float(r["osl"]),
                               ttft / 1e3 if ttft else None, tpot / 1e3, f"InferenceX {r['run_url']}", r["date"],
                               "" if ttft else "TTFT: only its median was kept, so not used"))
    return out


def nim_measurements(numbers_from: tuple[str, ...] = ("nvidia", "transcription")) -> list[Measurement]:
    """NVIDIA NIM's published benchmark tables (workloads/reference/nim_llm_benchmarks.csv): Llama 3.1 8B and 70B
    under NIM's TensorRT-LLM engines, closed loops of C streaming clients at fixed lengths, TTFT and ITL (averages by
    NVIDIA's walkthrough). How many requests each point ran is not published, so the fit's `bench_requests` stands in,
    as for the sample. `numbers_from` picks rows by who wrote the figures down: NVIDIA's page as read here, or a
    third-party transcription of it (NOTICE.md)."""
    out = []
    for r in _rows(data_dir("workloads") / "reference" / "nim_llm_benchmarks.csv"):
        if r["numbers_from"] not in numbers_from:
            continue
        out.append(Measurement(r["model"], r["hardware"], "trt-llm", f"NIM {r['nim']}", r["precision"], int(r["tp"]),
                               1, 1, 1, float(r["concurrency"]), float(r["isl"]), float(r["osl"]), float(r["ttft_ms"]) / 1e3,
                               float(r["itl_ms"]) / 1e3, f"NIM benchmarks {r['table']} ({r['published_model']})"))
    return out


def _scenario(text: str) -> tuple[int | None, int | None, int | None, int | None]:
    """(tp, concurrency, input_len, output_len) from a scenario description, None where not stated."""
    tp = re.search(r"TP(\d+)", text)
    batch = re.search(r"(?:concurrency|bs)\s*(\d+)", text)
    lens = re.search(r"(?:ISL|ISL/OSL)\s*(\d+)\s*/\s*(?:OSL\s*)?(\d+)", text) or re.search(r"(\d+)/(\d+)", text)
    return (int(tp.group(1)) if tp else None, int(batch.group(1)) if batch else None,
            int(lens.group(1)) if lens else None, int(lens.group(2)) if lens else None)


def published_measurements() -> tuple[list[Measurement], list[str]]:
    """Points of workloads/published_measurements.csv with a known concurrency and a latency metric;
    ShareGPT prompts and answers are taken as 1024/256 tokens where the source gives no lengths."""
    out, skipped = [], []
    for r in _rows(data_dir("workloads") / "published_measurements.csv"):
        if r["metric"] not in ("mean TPOT", "TPOT", "ITL"):
            skipped.append(f"{r['id']}: {r['metric']} under burst load (concurrency unknown), not a serving point")
            continue
        tp, conc, isl, osl = _scenario(r["scenario"])
        conc = conc or (1 if "concurrency 1" in r["scenario"] else None)
        model, hw = PUBLISHED_MODELS.get(r["model"].lower()), PUBLISHED_HARDWARE.get(r["hardware"])
        precision = PUBLISHED_PRECISIONS.get(r["precision"].lower())
        if not (model and hw and precision and conc):
            skipped.append(f"{r['id']}: model, hardware, precision or concurrency not mappable")
            continue
        ttft = re.search(r"TTFT\s*([\d.]+)\s*ms", r["scenario"])
        out.append(Measurement(model, hw, engine_name(r["framework"]), r["framework"], precision,
                               tp or int(r["count"] or 1), 1, 1, 1, conc, isl or 1024, osl or 256,
                               float(ttft.group(1)) / 1e3 if ttft else None, float(r["value"]) / 1e3,
                               f"published {r['id']} ({r['source']})",
                               note="" if isl else "prompt and output lengths not stated: 1024/256 assumed"))
    return out, skipped


UNMATCHED = "no profile matches device"
UNMATCHED_FIX = "add a profile whose `match` names the device with --profiles DIR (docs/profiles.md, \"Your own profiles\")"


def unmatched(device: str | None) -> str:
    """Why a record of a device no profile matches cannot calibrate (`calibrate` adds UNMATCHED_FIX once)."""
    return f"{UNMATCHED} {device}"


def record_measurements(records: list[dict], profiles: dict[str, HardwareProfile]) -> tuple[list[Measurement], list[str]]:
    """Our own LLM `run` records on a profiled device, of a planner catalog model or a local folder (`local_model`)."""
    out, skipped = [], []
    for r in records:
        if r.get("kind") != "llm" or r.get("status") != "ok":
            continue
        hw = match_device(profiles, r["device"].get("model"))
        arch, path, said = r["model"].get("arch"), r["model"].get("path"), ""
        if hw is None:
            skipped.append(f"{r['cell_id']}: {unmatched(r['device'].get('model'))}")
            continue
        if arch is None and path:
            try:
                arch, said = local_model(path)
            except UserError as e:
                skipped.append(f"{r['cell_id']}: {e}")
                continue
        if arch not in shapes() and not said:
            skipped.append(f"{r['cell_id']}: model '{arch}' is not in the planner catalog")
            continue
        precision = r["spec"]["dtype"]
        if precision not in ("fp32", "bf16", "fp16"):
            skipped.append(f"{r['cell_id']}: precision {precision} is not modelled")
            continue
        m, c = r["metrics"], r["cell"]
        out.append(Measurement(arch, hw.id, engine_name(r["backend"].get("name", "torch")),
                               str(r["backend"].get("version", "")), precision, 1, 1, 1, 1, c["batch_size"],
                               c["prompt_len"], c["output_len"], m["ttft_s"]["mean"], m["tpot_s"]["mean"],
                               f"record {r['run_id']}/{r['cell_id']}", r.get("started_at", "")[:10],
                               said))
    return out, skipped


def _endpoint_lengths(cell: dict, m: dict) -> tuple[float, float, list[str]]:
    """A load point's prompt and output lengths in tokens: the means the server counted (usage, or
    the --tokenizer) over the requests that succeeded, else the lengths the point asked for; a
    point whose lengths varied (a --dataset, --lengths) asked for none, and assumes 1024 / 256 only
    when nothing was counted either, which the note says."""
    done = m.get("completed") or 0
    counted_out = m.get("output_tokens_source") in ("usage", "tokenizer") and m.get("output_tokens")
    input_len = m["input_tokens"] / done if done and m.get("input_tokens") else cell.get("input_len")
    output_len = m["output_tokens"] / done if done and counted_out else cell.get("output_len")
    if output_len is None and done and m.get("output_tokens"):
        output_len = m["output_tokens"] / done  # streamed chunks: the only count there is
    assumed = [f"{what} {default}" for what, value, default in (("input", input_len, 1024), ("output", output_len, 256))
               if not value]
    notes = [f"{' and '.join(assumed)} tokens assumed (the point neither counted nor fixed them)"] if assumed else []
    return input_len or 1024, output_len or 256, notes


def _not_llm_serving(api: str | None) -> str:
    """Why a loadtest point of another API does not calibrate, and what does calibrate its kind (the kind whose
    route the API's path is, from the registry)."""
    from ..endpoints.target import API_PATHS
    from ..kinds import KINDS

    only = "loadtest points calibrate LLM serving, from --api chat or completions"
    path = API_PATHS.get(api or "")
    kind = next((k.name for k in KINDS.values() for r in k.routes if r.path == path and k.name != "llm"), None)
    return (f"{api} load points do not calibrate ({only}); `infra-bench run` of a {kind} spec on that hardware "
            f"calibrates {kind}") if kind else only


def endpoint_measurements(records: list[dict], profiles: dict[str, HardwareProfile]) -> tuple[list[Measurement], list[str]]:
    """Closed-loop chat/completions points of `loadtest` records whose server was named with --hardware
    (a profile id or a device name) and whose model is in the planner catalog. The API does not say the
    server's precision or TP: they come from loadtest's --precision and --tp labels, else the precision the
    server reports (infra-bench serve does), else the precision the model is published in (bf16 for a 16-bit
    checkpoint) and TP 1 are assumed, and each point says so."""
    from .iteration import PRECISIONS
    from .llm_model import default_precision

    out, skipped = [], []
    for r in records:
        if r.get("kind") != "endpoint" or r.get("status") != "ok":
            continue
        c, label = r["cell"], (r.get("device") or {}).get("model")
        hw = profiles.get(label) if label in profiles else match_device(profiles, label)
        model = catalog_model((r.get("model") or {}).get("name"))
        backend, served = r.get("backend") or {}, (r.get("model") or {}).get("served") or {}
        precision = backend.get("precision") or (served.get("dtype") if served.get("dtype") in PRECISIONS else None)
        tp = backend.get("tp")
        m = r.get("metrics") or {}
        tpot, ttft = (m.get("tpot_s") or {}).get("mean"), (m.get("ttft_s") or {}).get("mean")
        why = (_not_llm_serving(r["spec"].get("api")) if r["spec"].get("api") not in ("chat", "completions")
               else "open-loop point: its concurrency is unknown (use --concurrency)" if c.get("load") != "concurrency"
               else f"--hardware '{label}' names no profile" if hw is None
               else (f"model '{(r.get('model') or {}).get('name')}' is not in the planner catalog (`infra-bench "
                     f"predict --help` lists it); serve it under a catalog id (vLLM --served-model-name)")
               if model is None
               else "no TPOT measured" if not tpot else None)
        if why:
            skipped.append(f"{r['cell_id']}: {why}")
            continue
        label = r["backend"].get("engine") or "unnamed"
        engine = engine_name(label) if engine_name(label) in ENGINES else "generic"
        published = default_precision(model, hw)  # what a server loads unless told otherwise: the checkpoint's own
        assumed = [what for what, known in ((published, precision), ("TP 1", tp)) if not known]
        precision = precision or published
        said = f"{' and '.join(assumed)} assumed (the API does not report it; loadtest --precision and --tp label it)"
        notes = ([said] if assumed else []) + ([f"engine '{label}' fitted as generic"] if engine == "generic" else [])
        input_len, output_len, lengths_said = _endpoint_lengths(c, m)
        out.append(Measurement(model, hw.id, engine, label, precision, int(tp or 1), 1, 1, 1, c["concurrency"],
                               input_len, output_len, ttft, tpot,
                               f"endpoint {r['run_id']}/{r['cell_id']}", note="; ".join(notes + lengths_said),
                               memory_fraction=backend.get("memory_fraction"), requests=m.get("completed")))
    return out, skipped
