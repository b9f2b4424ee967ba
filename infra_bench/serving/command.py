"""`infra-bench serve`: the command that builds the specs' models and serves them (serving/app.py)."""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--spec", "spec_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Workload spec file(s) as `infra-bench run` takes; each spec (llm, diffusion, tts or "
                   "embedding; video is not served yet) is one served model named by its label. Repeatable.")
@click.option("--arch", "archs", multiple=True, help="A built-in architecture to serve with random weights "
                                                     "(llama-tiny, sd-tiny, vits-tiny ...); repeatable. "
                                                     "Default: llama-tiny when no --spec is given.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), help="For every model (default: the spec's).")
@click.option("--device", help="torch: cpu, cuda, cuda:1, npu ... (default: the spec's, auto).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True,
              help="Port to bind; 0 picks a free one (the URL is printed).")
@click.option("--api-key-env", metavar="VAR", help="Require 'Authorization: Bearer <key>' with the key from this "
                                                   "environment variable.")
@click.option("--trust-remote-code", is_flag=True, help="Allow a local model folder's own Python code to run.")
def serve(spec_files, archs, backend, device, host, port, api_key_env, trust_remote_code) -> None:
    """Serve our own runners over an OpenAI-compatible HTTP API (completions, chat, speech, images,
    embeddings, rerank),
    one request at a time, for load-testing end to end and quick local serving."""
    from ..endpoints.bench import require_aiohttp
    from ..endpoints.target import api_key
    from .app import bind, run_server
    from .models import load_specs_for_serving

    require_aiohttp()
    key = api_key(api_key_env)
    sock = bind(host, port)
    try:
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"warning: binding {host} exposes this benchmark server beyond this machine"
                       f"{'' if key else ' without authentication (add --api-key-env VAR)'}; "
                       f"use the default 127.0.0.1 unless others must reach it", err=True)
        specs = load_specs_for_serving(list(spec_files), list(archs), backend, device)
        run_server(specs, sock, key, trust_remote_code, lambda line: click.echo(line))
    finally:
        sock.close()
