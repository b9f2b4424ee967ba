"""The GPU checklist in one call: what a lent NVIDIA GPU measures, and what the planner predicted for the same cells.

Each step is its own `infra-bench` process with a time limit; one that fails or runs out of time is said in the
summary and the next one runs. The steps, in order of value:
1. sysinfo, and probe: the measured roofline (matmul TFLOPS per dtype, memory-copy bandwidth) against the profile;
2. LLM on torch CUDA, bf16, an 8B-shaped model (Llama-3.1-8B, random weights), prompt 512, output 128, batch
   1/8/32/64, eager; then compiled (reduce-overhead: a static KV cache and CUDA graphs) at batch 1 and 8; then one
   16,384-token prompt, whose TTFT checks the planner's prefill-attention ceiling (about a fifth of that prefill is
   attention);
3. diffusion, bf16: SD-1.5 at 512 px and SDXL base at 1024 px, 25 steps (diffusers must be importable);
4. TTS: the MMS-shaped VITS at batch 1 and 8;
5. ONNX Runtime's CUDA provider (llama-tiny), where the installed build has it;
6. the planner's prediction of every LLM and diffusion cell beside its measurement, and each LLM cell's decode
   bandwidth utilisation: the bytes a decode step reads (weights and KV cache) over its TPOT, over the probe's
   bandwidth (read plus write, as the copy counts it).
Everything lands under --out as it is made: each run's records (results/), each step's log, summary.json.

--quick runs the same steps with small models on this machine's CPU, to check the script; its figures mean
nothing, and its predictions are for --hardware (default nv_h100_sxm), not this machine.
How to run it on a lent device: docs/benchmarks.md, "On a lent GPU".
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runs from a checkout with nothing installed (a lent device)


def steps(quick: bool) -> list[tuple[str, list[str], int]]:
    """(name, infra-bench arguments, time limit in seconds)."""
    dev = "cpu" if quick else "cuda"
    few = ["--warmup", "1", "--min-iters", "2", "--min-time", "0"]
    if quick:
        llm = ["--arch", "gpt2-small", "--set", "dtype=fp32", "--set", "batch_size=[1,2]", "--set", "prompt_len=[16]",
               "--set", "output_len=[8]"]
        compiled: list[str] = []
        long: list[str] = []
        images = [["--arch", "sd-tiny", "--set", "steps=2", "--set", "resolution=64"]]
        tts = ["--arch", "vits-tiny", "--set", "batch_size=[1]"]
    else:
        llm = ["--arch", "llama-3.1-8b", "--set", "dtype=bf16", "--set", "batch_size=[1,8,32,64]",
               "--set", "prompt_len=[512]", "--set", "output_len=[128]"]
        compiled = ["--arch", "llama-3.1-8b", "--set", "dtype=bf16", "--set", "batch_size=[1,8]",
                    "--set", "prompt_len=[512]", "--set", "output_len=[128]", "--compile", "reduce-overhead"]
        long = ["--arch", "llama-3.1-8b", "--set", "dtype=bf16", "--set", "batch_size=[1]",
                "--set", "prompt_len=[16384]", "--set", "output_len=[8]"]
        images = [["--arch", "sd-1.5", "--set", "dtype=bf16", "--set", "steps=25", "--set", "resolution=512"],
                  ["--arch", "sdxl-base-1.0", "--set", "dtype=bf16", "--set", "steps=25", "--set", "resolution=1024"]]
        tts = ["--arch", "vits-mms", "--set", "batch_size=[1,8]"]
    out = [("sysinfo", ["sysinfo", "--json"], 60),
           ("probe", ["probe", "--device", dev, "--json", *(["--quick"] if quick else [])], 90),
           ("llm eager", ["run", *llm, "--device", dev, *few], 240)]
    if compiled:
        out.append(("llm compiled", ["run", *compiled, "--device", dev, *few], 200))
    if long:
        out.append(("llm long prompt", ["run", *long, "--device", dev, *few], 150))
    out += [(f"diffusion {a[1]}", ["run", *a, "--device", dev, *few], 150) for a in images]
    out.append(("tts", ["run", *tts, "--device", dev, *few], 60))
    if not quick:
        out.append(("onnxruntime cuda", ["run", "--arch", "llama-tiny", "--backend", "onnxruntime", "--ep", "cuda",
                                         *few], 90))
    return out


def _env() -> dict:
    """This checkout first on the path of every infra-bench process (nothing need be installed)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _step(name: str, args: list[str], limit: int, out: Path, results: Path) -> dict:
    """Run one infra-bench command; its stdout and stderr go to out/<name>.log (and .json for --json)."""
    if args[0] in ("run", "probe"):
        args = [*args, "--out", str(results)]
    stem = name.replace(" ", "_").replace(".", "")
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "infra_bench", *args], capture_output=True, text=True,
                           timeout=limit, env=_env(), check=False)
        rc, stdout, stderr = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, stdout, stderr = None, e.stdout or "", (e.stderr or "") + f"\n(stopped after its {limit} s limit)"
        stdout, stderr = (s.decode() if isinstance(s, bytes) else s for s in (stdout, stderr))
    (out / f"{stem}.log").write_text(f"$ infra-bench {' '.join(args)}\n{stdout}\n--- stderr ---\n{stderr}")
    if "--json" in args and rc == 0:
        (out / f"{stem}.json").write_text(stdout)
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    return {"step": name, "rc": rc, "seconds": round(time.perf_counter() - t0, 1),
            "said": last if rc != 0 else ""}


def _records(results: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(results.glob("*/records.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]


def _copy_bandwidth(records: list[dict]) -> float | None:
    """The probe's memory-copy bandwidth, bytes per second (read plus write)."""
    for r in records:
        if r.get("kind") == "probe" and (r.get("cell") or {}).get("test") == "memory_copy" and r["status"] == "ok":
            return r["metrics"]["value"] * 1e9
    return None


def _predict(args: list[str]) -> dict | None:
    p = subprocess.run([sys.executable, "-m", "infra_bench", "predict", *args, "--json"], capture_output=True,
                       text=True, timeout=60, env=_env(), check=False)
    return json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr.strip().splitlines()[-1:]}


def compare(records: list[dict], hardware: str) -> list[dict]:
    """Each ok LLM and diffusion cell: measured, predicted on `hardware`, and an LLM cell's decode bandwidth
    utilisation."""
    from infra_bench.planner.shapes import get_shape

    bw = _copy_bandwidth(records)
    rows = []
    for r in records:
        if r["status"] != "ok" or r["kind"] not in ("llm", "diffusion"):
            continue
        arch, cell, m = r["spec"].get("arch"), r["cell"], r["metrics"]
        dtype = r["spec"].get("dtype", "fp32")
        row = {"kind": r["kind"], "arch": arch, "cell": cell, "backend": r["backend"].get("name"),
               "compile": r["backend"].get("compile"), "energy_source": m.get("energy_source"),
               "j_per_unit": m.get("j_per_token", m.get("j_per_image"))}
        if r["kind"] == "llm":
            b, isl, osl = cell["batch_size"], cell["prompt_len"], cell["output_len"]
            row.update(ttft_s=m["ttft_s"]["mean"], tpot_s=m["tpot_s"]["mean"], tokens_per_s=m["output_tokens_per_s"],
                       peak_bytes=m.get("device_peak_allocated_bytes"))
            p = _predict(["--model", arch, "--hardware", hardware, "--engine", "torch", "--precision", dtype,
                          "--concurrency", str(b), "--input-len", str(isl), "--output-len", str(osl)])
            row["predicted"] = ({"ttft_s": p["ttft_s"], "tpot_s": p["tpot_s"]} if p and "ttft_s" in p else p)
            shape = get_shape(arch)
            width = 2.0 if dtype in ("bf16", "fp16") else 4.0
            step_bytes = shape.total_params * width + b * shape.kv_bytes(isl + osl // 2, width)
            row["decode_bytes_per_step"] = step_bytes
            row["decode_bandwidth_utilisation"] = step_bytes / row["tpot_s"] / bw if bw else None
        else:
            row.update(seconds_per_image=m["image_s"]["mean"], seconds_per_step=m["step_s"]["mean"])
            p = _predict(["--model", arch, "--hardware", hardware, "--precision", dtype,
                          "--resolution", str(cell.get("resolution", 512)), "--steps", str(cell.get("steps", 25))])
            row["predicted"] = p
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small models on this machine's CPU: checks the script")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-checklist"),
                    help="where everything lands (default: $OUT, else ./gpu-checklist)")
    ap.add_argument("--hardware", help="the profile predictions are for (default: the one sysinfo matches to "
                                       "cuda:0; with --quick, nv_h100_sxm)")
    ap.add_argument("--budget", type=float, default=540.0,
                    help="seconds: a step that would start later is skipped, and said (default 540)")
    a = ap.parse_args()
    out = a.out.resolve()
    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    t0, done = time.perf_counter(), []
    summary = {"mode": "quick (CPU, small models: figures mean nothing)" if a.quick else "gpu", "steps": done}
    for name, args, limit in steps(a.quick):
        left = a.budget - (time.perf_counter() - t0)
        if left < 20:
            done.append({"step": name, "rc": None, "seconds": 0, "said": "skipped: the time budget was spent"})
        else:
            done.append(_step(name, args, int(min(limit, left)), out, results))
        print(f"{done[-1]['step']}: rc {done[-1]['rc']} in {done[-1]['seconds']} s {done[-1]['said']}", flush=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    hardware = a.hardware or ("nv_h100_sxm" if a.quick else None)
    if hardware is None and (out / "sysinfo.json").exists():
        hardware = json.loads((out / "sysinfo.json").read_text()).get("profiles", {}).get("cuda:0")
    summary["hardware"] = hardware
    summary["cells"] = compare(_records(results), hardware) if hardware else []
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\nmeasured against predicted on {hardware or 'no profile (sysinfo matched none; give --hardware)'}:")
    for c in summary["cells"]:
        pred = c.get("predicted") or {}
        if c["kind"] == "llm":
            util = c["decode_bandwidth_utilisation"]
            mode = "eager" if c["compile"] in (None, "none") else f"compiled {c['compile']}"
            print(f"  {c['arch']} batch {c['cell']['batch_size']}, prompt {c['cell']['prompt_len']} ({mode}): "
                  f"TTFT {c['ttft_s']:.4f} s "
                  f"(predicted {pred.get('ttft_s', float('nan')):.4f}), TPOT {c['tpot_s']:.5f} s (predicted "
                  f"{pred.get('tpot_s', float('nan')):.5f}), decode bandwidth utilisation "
                  f"{'-' if util is None else f'{util:.2f}'}")
        else:
            print(f"  {c['arch']} at {c['cell'].get('resolution')} px, {c['cell'].get('steps')} steps: "
                  f"{c['seconds_per_image']:.3f} s/image (predicted {pred.get('latency_s', float('nan')):.3f}, "
                  f"bound by {pred.get('bound')})")
    print(f"gpu checklist done in {time.perf_counter() - t0:.0f} s; everything under {out}")


if __name__ == "__main__":
    main()
