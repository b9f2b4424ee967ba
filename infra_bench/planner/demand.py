"""The demand a cluster must serve: a mix of LLM, diffusion and TTS services, each with its
traffic, latency SLOs, headroom and redundancy. Validated on load; the same objects serve YAML,
the CLI and Python.

    name: support-assistant      # a service's kind (llm, diffusion, tts) follows from its model
    headroom: 0.2            # spare capacity kept at the target load (0.2: run replicas at 80%)
    redundancy: 1            # extra replicas per service (N+1)
    services:
      - name: chat
        model: llama-3.1-8b
        precision: [bf16, fp8]            # the planner picks per accelerator
        engine: vllm                      # or {name: sglang, max_seqs: 256, token_budget: 8192, memory_fraction: 0.9}; default auto
        traffic: {requests_per_s: 20, input_len: 1024, output_len: {mean: 256, distribution: exponential}}
        slo: {ttft_p95_s: 2.0, tpot_p99_s: 0.05}
      - {name: images, kind: diffusion, model: sd-1.5, resolution: 512, steps: 30,
         traffic: {images_per_hour: 3000}, slo: {latency_p95_s: 8}}
      - {name: voice, kind: tts, model: vits-mms, traffic: {concurrent_streams: 200},
         slo: {rtf: 0.5, first_audio_p95_s: 1.0}}
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from ..errors import UserError, article, closest, explain_validation
from ..inputs import load_yaml
from ..kinds import KINDS
from ..kinds.base import load_ref

LLM_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4", "fp4")
MEDIA_PRECISIONS = ("fp16", "bf16", "fp32")
QUANT_PRECISIONS = ("fp8", "int8")  # W8A8 diffusion transformers (planner/quant_prior.py)


class Strict(BaseModel):
    """A demand's fields: unknown ones refused, and numbers finite (YAML's .inf and .nan passed `gt=0` and
    stopped the sizing with an internal error)."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def _exactly_one(self, a: str, b: str):
        """For a validator: exactly one of the two fields is given."""
        if (getattr(self, a) is None) == (getattr(self, b) is None):
            raise ValueError(f"give exactly one of {a} or {b}")
        return self


class Length(Strict):
    """A token-length distribution: fixed, or exponential with the given mean (capped at `max`)."""
    mean: int = Field(ge=1)
    distribution: Literal["fixed", "exponential"] = "fixed"
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _cap(self):
        if self.max is not None and self.max < self.mean:
            raise ValueError(f"max {self.max} is below the mean {self.mean}")
        return self

    @property
    def cap(self) -> int:
        return self.max or (self.mean if self.distribution == "fixed" else 4 * self.mean)

    @property
    def drawn_mean(self) -> float:
        """The mean of the lengths as the planner draws them (an exponential rounded to whole tokens, at least
        1, capped at `cap`): what requests average, so what tokens per second and per unit are counted on."""
        if self.distribution == "fixed":
            return float(self.mean)
        from .buckets import Range

        return Range(self).mean


def _length(v):
    return {"mean": v} if isinstance(v, int) and not isinstance(v, bool) else v


class LlmTraffic(Strict):
    requests_per_s: float | None = Field(default=None, gt=0)
    output_tokens_per_s: float | None = Field(default=None, gt=0)
    input_len: Length = Length(mean=1024)
    output_len: Length = Length(mean=256)

    _lengths = field_validator("input_len", "output_len", mode="before")(classmethod(lambda cls, v: _length(v)))

    @model_validator(mode="after")
    def _one_rate(self):
        return self._exactly_one("requests_per_s", "output_tokens_per_s")

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests_per_s or self.output_tokens_per_s / self.output_len.drawn_mean


MAX_TPOT_SLO_S = 2.0    # above this per output token, the value is milliseconds written as seconds
MAX_TTFT_SLO_S = 300.0


class LlmSlo(Strict):
    ttft_p95_s: float | None = Field(default=None, gt=0)
    ttft_p99_s: float | None = Field(default=None, gt=0)
    tpot_p99_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _one_ttft(self):
        self._exactly_one("ttft_p95_s", "ttft_p99_s")
        for name, value, most in (("tpot_p99_s", self.tpot_p99_s, MAX_TPOT_SLO_S),
                                  ("ttft_p95_s", self.ttft_p95_s, MAX_TTFT_SLO_S),
                                  ("ttft_p99_s", self.ttft_p99_s, MAX_TTFT_SLO_S)):
            if value is not None and value > most:  # milliseconds written where seconds are meant
                raise ValueError(f"{name} {value:g} is {value:g} seconds; SLOs are in seconds "
                                 f"({value:g} ms is {value / 1000:g}), at most {most:g}")
        return self

    @property
    def ttft(self) -> tuple[float, float]:
        """(percentile, seconds)."""
        return (95.0, self.ttft_p95_s) if self.ttft_p95_s else (99.0, self.ttft_p99_s)


class UnitRate(Strict):
    """Units (images, videos) per hour or per second, exactly one of the two RATES fields; `rate` is per second."""
    RATES: ClassVar[tuple[str, str]]

    @model_validator(mode="after")
    def _one_rate(self):
        return self._exactly_one(*self.RATES)

    @property
    def rate(self) -> float:
        per_hour, per_s = (getattr(self, f) for f in self.RATES)
        return per_s or per_hour / 3600


class DiffusionTraffic(UnitRate):
    RATES: ClassVar[tuple[str, str]] = ("images_per_hour", "images_per_s")
    images_per_hour: float | None = Field(default=None, gt=0)
    images_per_s: float | None = Field(default=None, gt=0)


class DiffusionSlo(Strict):
    latency_p95_s: float = Field(gt=0)


class TtsTraffic(Strict):
    concurrent_streams: float | None = Field(default=None, gt=0)
    audio_hours_per_day: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_rate(self):
        return self._exactly_one("concurrent_streams", "audio_hours_per_day")

    @property
    def streams(self) -> float:
        """Real-time streams at once (audio hours per day spread evenly over the day)."""
        return self.concurrent_streams or self.audio_hours_per_day / 24


class TtsSlo(Strict):
    rtf: float = Field(default=1.0, gt=0, le=1.0)
    first_audio_p95_s: float | None = Field(default=None, gt=0)

    def words(self) -> str:
        """The SLO as plan's lines say it: 'RTF 1' or 'RTF 0.5 / first audio 1s'."""
        return f"RTF {self.rtf:g}" + (f" / first audio {self.first_audio_p95_s:g}s" if self.first_audio_p95_s else "")


def precisions(v, allowed: tuple[str, ...]):
    """One precision or a list of them, each one the planner models for this kind of service."""
    v = [v] if isinstance(v, str) else v
    for p in v or []:  # null: the field's default, or a type error where it has none
        if p not in allowed:
            raise ValueError(f"unknown precision '{p}'{closest(str(p), allowed)}; use {', '.join(allowed)}")
    return v


class Service(Strict):
    """A service of some kind; each kind's subclass says how its load is counted and sized."""
    name: str | None = None
    model: str
    headroom: float | None = Field(default=None, ge=0, lt=1)
    redundancy: int | None = Field(default=None, ge=0)

    cost_unit: ClassVar[tuple[str, float]]  # what costs are quoted per, and how many units that is

    @property
    def load(self) -> float:
        """The target load, in the unit replica capacity is counted in (requests/s, images/s, streams)."""
        raise NotImplementedError

    def units_per_hour(self) -> float:
        """Units of work per hour at the target load (output tokens, images, audio hours)."""
        raise NotImplementedError

    def options(self, label: str, hw, headroom: float, redundancy: int, calibration: dict | None,
                node: int, replicas: dict) -> list:
        """The ways `hw` could serve this service (planner.sizing.Option), one per precision and split."""
        raise NotImplementedError


class EngineChoice(Strict):
    """The serving engine and, optionally, limits that replace its defaults (planner/engines.py)."""
    name: str = "auto"
    max_seqs: int | None = Field(default=None, ge=1)
    token_budget: int | None = Field(default=None, ge=1)
    memory_fraction: float | None = Field(default=None, gt=0, le=1)  # the engine's memory share (Engine.with_limits)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from .engines import ENGINES, engine_name

        if v != "auto" and engine_name(v) not in ENGINES:
            raise ValueError(f"unknown engine '{v}'{closest(engine_name(v), ENGINES)}; use auto or {', '.join(ENGINES)}")
        return v


class LlmService(Service):
    kind: Literal["llm"] = "llm"
    precision: list[str] | None = None  # None: the model's published precision on each part, else bf16
    engine: EngineChoice = EngineChoice()
    traffic: LlmTraffic
    slo: LlmSlo

    _engine = field_validator("engine", mode="before")(classmethod(lambda cls, v: {"name": v} if isinstance(v, str) else v))

    _known = field_validator("precision", mode="before")(classmethod(lambda cls, v: precisions(v, LLM_PRECISIONS)))

    cost_unit: ClassVar[tuple[str, float]] = ("1M output tokens", 1e6)

    @property
    def load(self) -> float:
        return self.traffic.rate

    def units_per_hour(self) -> float:
        return self.traffic.rate * self.traffic.output_len.drawn_mean * 3600

    def precisions_on(self, hw) -> list[str]:
        """The precisions to price on `hw`: the service's `precision:`, else the one the model is published in
        there (llm_model.default_precision: DeepSeek-R1's fp8, gpt-oss's 4-bit experts), else bf16."""
        from .llm_model import default_precision

        return self.precision or [default_precision(self.model, hw)]

    def options(self, label, hw, headroom, redundancy, calibration, node, replicas) -> list:
        from .sizing import TP_OPTIONS, llm_option

        opts = []
        for precision in self.precisions_on(hw):
            for tp in TP_OPTIONS:
                if tp > node or node % tp:
                    continue
                o, r = llm_option(self, label, hw, precision, tp, headroom, redundancy, calibration)
                opts.append(o)
                replicas[(hw.id, label, precision, tp)] = r
        return opts


class _MediaService(Service):
    precision: list[str] = ["fp16"]

    _known = field_validator("precision", mode="before")(classmethod(lambda cls, v: precisions(v, MEDIA_PRECISIONS)))


class _DiffusionPrecisions(_MediaService):
    """Image and video services: fp8 and int8 too, for diffusion transformers; the load is the traffic's
    unit rate, one image or video at a time."""
    _known = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: precisions(v, (*MEDIA_PRECISIONS, *QUANT_PRECISIONS))))

    @model_validator(mode="after")
    def _quantized_dit_only(self):
        from ..catalog import architectures

        quant = [p for p in self.precision if p in QUANT_PRECISIONS]
        if quant and self.model not in {**architectures("dit"), **architectures("video")}:
            raise ValueError(f"{quant[0]} is priced for diffusion transformers only (FLUX.1, SD3.5, Qwen-Image, "
                             f"HunyuanDiT, video); {self.model} is a UNet pipeline: use fp16 or bf16")
        return self

    @property
    def load(self) -> float:
        return self.traffic.rate

    def units_per_hour(self) -> float:
        return self.traffic.rate * 3600


class DiffusionService(_DiffusionPrecisions):
    kind: Literal["diffusion"] = "diffusion"
    resolution: int = Field(default=512, ge=8)
    steps: int = Field(default=30, ge=1)
    guidance_scale: float = Field(default=7.5, ge=0)
    traffic: DiffusionTraffic
    slo: DiffusionSlo

    cost_unit: ClassVar[tuple[str, float]] = ("1k images", 1e3)

    def options(self, label, hw, headroom, redundancy, calibration, node, replicas) -> list:
        from .sizing import diffusion_option

        return [diffusion_option(self, label, hw, p, headroom, redundancy, calibration) for p in self.precision]


class TtsService(_MediaService):
    kind: Literal["tts"] = "tts"
    precision: list[str] | None = Field(default=None, description=(
        "default fp16; a speech LM's is speech_lm.default_precision, per part, as predict's"))
    text_len: int = Field(default=60, ge=1, description="tokens per utterance (5 frames each)")
    engine: Literal["eager", "compiled"] = Field(
        default="eager", description="speech LMs: eager PyTorch/transformers, or compiled (torch.compile, CUDA "
                                     "graphs, TensorRT-LLM)")
    traffic: TtsTraffic
    slo: TtsSlo = TtsSlo()

    cost_unit: ClassVar[tuple[str, float]] = ("audio hour", 1.0)

    @property
    def load(self) -> float:
        return self.traffic.streams

    def units_per_hour(self) -> float:
        return self.traffic.streams

    def options(self, label, hw, headroom, redundancy, calibration, node, replicas) -> list:
        from . import speech_lm
        from .sizing import tts_option

        default = speech_lm.default_precision(hw) if speech_lm.is_speech_lm(self.model) else "fp16"
        return [tts_option(self, label, hw, p, headroom, redundancy, calibration) for p in self.precision or [default]]


def services() -> dict[str, type[Service]]:
    """Kind -> its demand service, for every registered kind the planner sizes."""
    return {name: k.service_class() for name, k in KINDS.items() if k.service}


class Demand(Strict):
    name: str = "demand"
    headroom: float = Field(default=0.2, ge=0, lt=1)
    redundancy: int = Field(default=1, ge=0)
    services: list[SerializeAsAny[Service]] = Field(min_length=1)

    def label(self, i: int) -> str:
        return self.services[i].name or f"{self.services[i].model}#{i + 1}"

    def headroom_of(self, s: Service) -> float:
        return self.headroom if s.headroom is None else s.headroom

    def redundancy_of(self, s: Service) -> int:
        return self.redundancy if s.redundancy is None else s.redundancy


def _kind_of(model, label: str) -> str:
    """The kind of a service that does not say: from the catalog its model is in."""
    from .media_model import kind_of

    if not isinstance(model, str):
        raise UserError(f"{label}: missing required field 'model' (a model id from the planner catalog, or an LLM "
                        f"folder with config.json)")
    try:
        return kind_of(model)
    except UserError as e:
        raise UserError(f"{label}: {e}") from None


def _local_model(s: dict, where: str, label: str) -> dict:
    """The service with a local model's path (an LLM folder with config.json) made absolute, a relative one
    relative to the demand file as a spec's `model:` is to the spec file, and its shape built, so that a path
    the planner cannot read is refused here, naming the service."""
    from .local_shape import as_path, exists
    from .media_model import catalog_kind
    from .shapes import get_shape

    model = s.get("model")
    if not isinstance(model, str) or not model.strip() or catalog_kind(model):
        return s
    base = Path(where).parent if where.endswith((".yaml", ".yml")) else Path.cwd()
    path = as_path(model)
    full = path if path.is_absolute() else base / path
    if not (exists(full) or any(load_ref(k.planner_paths)(model) for k in KINDS.values() if k.planner_paths)):
        return s  # neither an id nor a path: _kind_of says so
    model = str(full.resolve() if exists(full) else full.absolute())
    try:
        get_shape(model)
    except UserError as e:
        raise UserError(f"{label}: {e}") from None
    return {**s, "model": model}


def demand_from_dict(data, where: str = "demand") -> Demand:
    """Validate a demand mapping; each service by its `kind` (default llm), errors naming the service."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: a demand must be a mapping with a 'services' list")
    raw = data.get("services")
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{where}: 'services' must be a non-empty list of services (model, traffic, slo)")
    known, out = services(), []
    for i, s in enumerate(raw):
        label = f"{where}: services[{i}]"
        if not isinstance(s, dict):
            raise UserError(f"{label}: a service must be a mapping (model, traffic, slo)")
        s = _local_model(s, where, label)
        name = f" ({s['name']})" if s.get("name") else ""
        kind = s.get("kind") or _kind_of(s.get("model"), label)
        if not isinstance(kind, str) or kind not in known:
            raise UserError(f"{label}: unknown kind '{kind}'{closest(str(kind), known)}; use {', '.join(known)}")
        if s.get("kind") and isinstance(s.get("model"), str):
            actual = _kind_of(s["model"], label + name)
            if actual != kind:
                raise UserError(f"{label + name}: model '{s['model']}' is {article(actual)} {actual} model, not {kind}; "
                                f"set kind: {actual}, or name {article(kind)} {kind} model")
        cls = known[kind]
        try:
            out.append(cls(**s))
        except ValidationError as err:
            implied = "" if s.get("kind") else f" ({s.get('model')} is {article(kind)} {kind} model)"  # the user never said the kind
            raise UserError(explain_validation(err, label + name, cls.model_fields) + implied) from None
    names = [x.name for x in out if x.name]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{where}: service name '{twice[0]}' is given to {names.count(twice[0])} services; give each "
                        f"its own name (costs per unit, coverage and reports are keyed by it)")
    try:
        return Demand(**{**data, "services": out})
    except ValidationError as err:
        raise UserError(explain_validation(err, where, Demand.model_fields)) from None


def load_demand(path: str | Path) -> Demand:
    p = Path(path)
    data = load_yaml(p, "demand file", "give a demand YAML (example: workloads/demand-example.yaml)")
    return demand_from_dict(data, str(p))
