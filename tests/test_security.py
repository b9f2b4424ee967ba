"""Security: nothing reaches the network at run time, model loading never unpickles, remote code
and unsafe parsing stay out of the source. (Serving: loopback by default and API keys kept out of
records and logs are tested in tests/test_endpoints.py and tests/test_serve.py.)"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import write_spec

REPO = Path(__file__).resolve().parents[1]

# Runs CLI commands in one process under an audit hook that refuses any socket connection or name
# lookup outside loopback (and records it), so a hidden download attempt fails the test.
AUDITED = r'''
import ipaddress, sys
bad = []
def local(host):
    if host in (None, "", "localhost") or isinstance(host, bytes):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False
def hook(event, args):
    if event in ("socket.connect", "socket.sendto") and isinstance(args[1], tuple) and not local(args[1][0]):
        bad.append(f"{event} {args[1]}")
        raise PermissionError(f"network access to {args[1]} during a test of the offline tool")
    if event == "socket.getaddrinfo" and not local(args[0]):
        bad.append(f"{event} {args[0]}")
        raise PermissionError(f"name lookup of {args[0]} during a test of the offline tool")
sys.addaudithook(hook)
from infra_bench.cli import main
for argv in COMMANDS:
    try:
        main(argv)
    except SystemExit as e:
        if e.code:
            print(f"FAILED {argv}: exit {e.code}", file=sys.stderr)
print("violations:", bad)
'''


def test_no_command_opens_a_socket_beyond_loopback(tmp: Path):
    spec = write_spec(tmp, batch_size=[1])
    diffusion = tmp / "d.yaml"
    diffusion.write_text(yaml.safe_dump({"kind": "diffusion", "arch": "sd-tiny", "resolution": [32], "steps": [2],
                                         "batch_size": [1], "min_iters": 1, "warmup": 0, "min_time_s": 0.0}))
    commands = [["sysinfo"], ["run", str(spec), "--out", str(tmp / "res"), "--report", str(tmp / "r.html")],
                ["run", str(diffusion), "--out", str(tmp / "res")],
                ["predict", "--model", "llama-3.1-8b", "--hardware", "hw_910b2"],
                ["plan", str(REPO / "workloads" / "demand-example.yaml"), "--site", "cn-east", "--mixed",
                 "--confirm", "1", "--report", str(tmp / "p.html")]]
    p = subprocess.run([sys.executable, "-c", f"COMMANDS = {commands!r}\n" + AUDITED], cwd=tmp,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "violations: []" in p.stdout, p.stdout + p.stderr
    assert "FAILED" not in p.stderr, p.stderr
    assert (tmp / "r.html").is_file() and (tmp / "p.html").is_file()


def test_the_hook_does_catch_a_connection(tmp: Path):
    """The audit hook above is live: a connection attempt to a non-loopback address is refused."""
    script = AUDITED.replace("from infra_bench.cli import main", "import socket\ndef main(argv):\n"
                             "    try:\n        socket.create_connection(('192.0.2.1', 9), timeout=1)\n"
                             "    except PermissionError:\n        pass")
    p = subprocess.run([sys.executable, "-c", "COMMANDS = [['x']]\n" + script], capture_output=True, text=True,
                       timeout=60)
    assert "violations: ['socket.getaddrinfo 192.0.2.1']" in p.stdout, p.stdout + p.stderr


UNSAFE = {
    r"\bpickle\.loads?\(": "unpickling",
    r"\btorch\.load\((?![^)]*weights_only=True)": "torch.load without weights_only=True",
    r"trust_remote_code\s*=\s*True": "remote code trusted unconditionally",
    r"\byaml\.(?:load|unsafe_load|full_load)\(": "a YAML loader that builds Python objects",
    r"shell\s*=\s*True": "a shell command line",
    r"(?<![\w.])(?:eval|exec)\(": "eval/exec",
}


def test_the_source_has_no_unsafe_loading():
    found = []
    for path in sorted((REPO / "infra_bench").rglob("*.py")):
        text = path.read_text()
        for pattern, why in UNSAFE.items():
            for m in re.finditer(pattern, text):
                found.append(f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {why}")
    assert not found, found


def test_serve_listens_on_loopback_only_by_default(tmp: Path):
    import psutil

    from .test_endpoints import start_server, stop_server

    proc, url = start_server("--arch", "llama-tiny", cwd=tmp)
    try:
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
    finally:
        stop_server(proc)
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    assert url.startswith("http://127.0.0.1:")
