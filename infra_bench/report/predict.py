"""`infra-bench predict` for each kind: the prediction from the command's options, and its text.

Each function is a kind's `predict` hook: (model, hardware profile, options, calibration data, its
file name) -> (prediction with to_dict(), text). `options` holds every predict flag; a kind reads
the ones it models."""
from __future__ import annotations

from dataclasses import replace

from ..errors import UserError
from ..planner.profiles import HardwareProfile


def llm(model: str, hw: HardwareProfile, o: dict, data: dict | None, source: str | None):
    from ..planner import calibration as cal
    from ..planner import llm_model
    from ..planner.engines import default_engine
    from ..planner.shapes import get_shape, released_precision
    from .predictions import llm_text

    engine = default_engine(hw.vendor) if o["engine"] == "auto" else o["engine"]
    published = None if o["precision"] else llm_model.published_precision(get_shape(model), hw)
    precision = o["precision"] or (published[0] if published else "bf16")
    rep = llm_model.replica(model, hw, precision, o["tp"], o["pp"], o["dp"], o["ep"], engine,
                            o["max_seqs"], o["token_budget"], o["kv_cache"], o["memory_fraction"])
    unpeaked = ""  # the published precision this part has no peak for, said in a refusal too
    if published:
        rep.notes.append(f"{precision}: {model} as published ({published[1]}), which an engine loads unless told "
                         f"otherwise; --precision bf16 prices a 16-bit copy")
    elif not o["precision"] and (released := released_precision(rep.shape.id)):
        unpeaked = f"{model} is published as {released[1]}, for which {hw.id} has no published peak"
        rep.notes.append(f"bf16: {unpeaked}, so a 16-bit copy is priced")
    per, count = rep.devices, o["count"]
    if count is not None and count % per:
        raise UserError(f"--count {count} is not a multiple of TP x PP x DP = {per}; "
                        f"use --count {per * max(1, count // per)}")
    if o["num_prompts"] is not None:
        if count is not None and count != per:
            raise UserError(f"--num-prompts models one replica's benchmark run; leave out --count (or give --count {per})")
        p = llm_model.predict_run(rep, cal.fit_from(data), o["num_prompts"], o["concurrency"], o["input_len"],
                                  o["output_len"], o["lengths"])
    else:
        p = llm_model.predict(rep, cal.fit_from(data), o["concurrency"], o["input_len"], o["output_len"],
                              o["max_throughput"], cal.device_power(data) if data else None)
    if not p.fits:
        raise UserError(p.notes[-1] + (f" (priced in bf16: {unpeaked})" if unpeaked else ""))
    c = rep.case
    key = cal.case_key(cal.case_model(data, rep.shape), c.hardware, c.engine, c.precision)
    for line in (data or {}).get("miss_cases", {}).get(key, []):
        p.notes.append(f"{source} does not reproduce its own measurement of this case: {line}")
    if data and (busy := cal.busy_llm(data, c.hardware, c.engine, c.precision, rep.shape)):
        p.notes.append(f"{source}: {busy}")
    p = replace(p, replicas=(count or per) // per)
    return p, llm_text(p, hw)


def _media_fit(kind: str, hw: HardwareProfile, o: dict, data: dict | None, source: str | None,
               precision: str) -> tuple[dict | None, list[str]]:
    """The calibrated fit for this kind on `hw`, and a note when the file has none."""
    from ..planner import calibration as cal

    if not data:
        return None, []
    fitted = cal.for_media(data, kind, hw.id, None if o["engine"] == "auto" else o["engine"], precision)
    return fitted, [] if fitted else [f"{source} has no {kind} fit for {hw.id} at {precision}; using priors"]


def diffusion(model: str, hw: HardwareProfile, o: dict, data: dict | None, source: str | None):
    from ..planner import media_model
    from .predictions import diffusion_result, media_text

    precision = o["precision"] or "fp16"
    fitted, notes = _media_fit(media_model.fit_group("diffusion", model), hw, o, data, source, precision)
    guidance = 7.5 if o["guidance_scale"] is None else o["guidance_scale"]
    steps = o["steps"] or 30
    p = media_model.predict_diffusion(model, hw, precision, o["resolution"], steps, guidance, fitted)
    p.notes.extend(notes)
    evals = media_model.diffusion_unit(model, o["resolution"], steps, guidance)["unet_evals_per_step"]
    p.notes.append(f"one image of {o['resolution']} x {o['resolution']} px, {steps} steps, guidance scale {guidance:g} "
                   f"({'two passes per step: conditional and unconditional' if evals == 2 else 'one pass per step'})"
                   + ("" if any(o[k] is not None for k in ("steps", "guidance_scale")) else
                      "; --steps and --guidance-scale change them"))
    if o["concurrency"] > 1 or o["max_throughput"]:
        p = media_model.at_batch(p, model, o["resolution"], o["resolution"], steps,
                                 None if o["max_throughput"] else o["concurrency"])
    return p, media_text(p, hw, diffusion_result)


def tts(model: str, hw: HardwareProfile, o: dict, data: dict | None, source: str | None):
    from ..planner import media_model, speech_lm
    from .predictions import media_text, speech_lm_text, tts_result

    if speech_lm.is_speech_lm(model):
        from ..planner import calibration as cal

        mode, precision = "eager" if o["engine"] == "auto" else o["engine"], o["precision"] or speech_lm.default_precision(hw)
        fitted = cal.for_speech_lm(data, hw.id, mode, precision) if data else None
        p = speech_lm.predict(model, hw, precision, mode, o["text_len"], o["concurrency"], fitted)
        if data and not fitted:
            p.notes.append(f"{source} has no speech-LM fit for {hw.id} ({mode}, {precision}); using the public fit")
        return p, speech_lm_text(p, hw)
    if o["concurrency"] != 1:  # --max-throughput is no TTS option (predict refuses it for every TTS model)
        raise UserError(f"--concurrency/--batch applies to speech LMs, which batch streams; {model} synthesizes one "
                        f"utterance at a time (plan sizes its streams per device); leave it out")
    precision = o["precision"] or "fp16"
    fitted, notes = _media_fit("tts", hw, o, data, source, precision)
    p = media_model.predict_tts(model, hw, precision, o["text_len"], calibration=fitted)
    p.notes.extend(notes)
    return p, media_text(p, hw, tts_result)
