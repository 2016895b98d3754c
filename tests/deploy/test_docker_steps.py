#!/usr/bin/python3
"""ctest docker_steps: the Dockerfile's steps, run outside Docker.

No Docker engine runs on the build machines, so this runs what the image
does: `cmake --install` of the build into a clean prefix (the build stage);
the runtime stage's package list against what `ldd` says the installed
binaries need (packages found with dpkg -S; the base image's libc6,
libgcc-s1, libstdc++6 excepted); the installed server started as a non-root
user (nobody, through setpriv) on the prefix's config, with loopback ports
for the test; the image's HEALTHCHECK command against it; SIGTERM and a
clean exit. It also checks the Dockerfile and docker-compose.yml carry the
fields an operator relies on, and that .dockerignore keeps the host's build
trees and .git out of the build context.
"""

import argparse
import fnmatch
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from test_manifests import fail, need  # noqa: E402  one way to report, for both deploy tests

BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
LISTEN_RE = re.compile(rb"\] info: (admin )?listening on 127\.0\.0\.1:(\d+)")


def runtime_stage(dockerfile):
    stages = re.split(r"(?m)^FROM ", dockerfile)
    need(len(stages) >= 3, "Dockerfile: a build stage and a runtime stage")
    return stages[-1]


def check_dockerfile(text):
    need(re.search(r"(?m)^FROM debian:bookworm-slim AS build$", text), "Dockerfile: build stage on bookworm-slim")
    need("scripts/install-deps.sh" in text, "Dockerfile: build stage installs with the README's script")
    rt = runtime_stage(text)
    need(rt.startswith("debian:bookworm-slim"), "Dockerfile: runtime stage on bookworm-slim")
    need(re.search(r"(?m)^USER skirmish$", rt), "Dockerfile: runs as a non-root user")
    need(re.search(r"(?m)^HEALTHCHECK .*", rt) and "/healthz" in rt, "Dockerfile: HEALTHCHECK on /healthz")
    need(re.search(r"(?m)^EXPOSE 7777/tcp 7778/tcp$", rt), "Dockerfile: EXPOSE")
    need(re.search(r"(?m)^STOPSIGNAL SIGTERM$", rt), "Dockerfile: STOPSIGNAL SIGTERM")
    need("--shm-size" in text and "--init" in text, "Dockerfile: notes on --shm-size and --init")
    m = re.search(r"apt-get install -y -qq --no-install-recommends ([^\\&\n]+)", rt)
    need(m, "Dockerfile: runtime apt-get install line")
    pkgs = set(m.group(1).split())
    hc = re.search(r"(?m)^  CMD (.+)$", rt)
    need(hc, "Dockerfile: HEALTHCHECK CMD")
    return pkgs, hc.group(1)


def check_compose(path):
    with open(path) as f:
        c = yaml.safe_load(f)
    srv = c["services"]["server"]
    need(srv.get("init") is True, "compose: init")
    need(srv.get("shm_size") == "128m", "compose: shm_size")
    lt = c["services"]["loadtest"]
    need(lt["depends_on"]["server"]["condition"] == "service_healthy", "compose: load test waits for health")
    need("skirmish-loadtest" in lt["entrypoint"][0], "compose: the load tester")


def dockerignored(path, patterns):
    """Docker's rule, enough for our patterns: a path is left out when it or a
    parent directory matches a pattern (fnmatch; ** matches any depth)."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        head = "/".join(parts[:i])
        for p in patterns:
            if fnmatch.fnmatch(head, p) or (p.startswith("**/") and fnmatch.fnmatch(parts[i - 1], p[3:])):
                return True
    return False


def check_dockerignore(source):
    path = os.path.join(source, ".dockerignore")
    need(os.path.isfile(path), ".dockerignore missing: COPY . . would send the build trees and .git")
    with open(path) as f:
        patterns = [ln.strip().rstrip("/") for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    need(not any(p.startswith("!") for p in patterns), ".dockerignore: no exceptions expected")
    for d in ("build", "build-asan", "build-fuzz", ".git", "tests/deploy/__pycache__"):
        need(dockerignored(d, patterns), f".dockerignore does not leave out {d}")
    tracked = subprocess.run(["git", "-C", source, "ls-files"], capture_output=True, text=True)
    files = tracked.stdout.split() if tracked.returncode == 0 else []
    kept = [f for f in files if dockerignored(f, patterns)]
    need(not kept, f".dockerignore leaves out tracked files the build may need: {kept[:5]}")
    print(f"ok   .dockerignore leaves out the build trees and .git, keeps all {len(files)} tracked files", flush=True)


def needed_packages(binaries):
    pkgs = set()
    for b in binaries:
        out = subprocess.run(["ldd", b], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.search(r"=> (/\S+)", line)
            if not m:
                continue
            real = os.path.realpath(m.group(1))
            s = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True)
            if s.returncode != 0:
                s = subprocess.run(["dpkg", "-S", m.group(1)], capture_output=True, text=True)
            need(s.returncode == 0, f"no package owns {real} (needed by {b})")
            pkgs.add(s.stdout.split(":")[0])
    return pkgs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    opts = ap.parse_args()
    with open(os.path.join(opts.source, "Dockerfile")) as f:
        runtime_pkgs, healthcheck = check_dockerfile(f.read())
    check_compose(os.path.join(opts.source, "docker-compose.yml"))
    check_dockerignore(opts.source)

    prefix = tempfile.mkdtemp(prefix="skirmish-prefix-")
    os.chmod(prefix, 0o755)
    server = None
    try:
        inst = subprocess.run(["cmake", "--install", opts.build, "--prefix", prefix], capture_output=True, text=True)
        need(inst.returncode == 0, f"cmake --install failed: {inst.stderr[-2000:]}")
        bins = [os.path.join(prefix, "bin", b) for b in ("skirmish-server", "skirmish-loadtest")]
        for b in bins:
            need(os.access(b, os.X_OK), f"{b} not installed")
        for cfg in ("skirmish.toml", "loadtest.toml", "container.toml"):
            need(os.path.isfile(os.path.join(prefix, "etc", "skirmish", cfg)), f"{cfg} not installed")
        missing = needed_packages(bins) - runtime_pkgs - BASE_IMAGE_PACKAGES
        # Sanitizer builds link their runtimes; the image is built without.
        missing = {p for p in missing if not p.startswith(("libasan", "libubsan", "liblsan"))}
        need(not missing, f"runtime stage lacks packages the binaries need: {sorted(missing)}")
        print(f"ok   installed into a clean prefix; runtime packages cover ldd: {sorted(runtime_pkgs)}", flush=True)

        # The runtime binary as a non-root user, on the prefix's config
        # (loopback ports for the test; the image's config listens wider).
        os.chmod(os.path.join(prefix, "bin"), 0o755)
        cmd = [os.path.join(prefix, "bin", "skirmish-server"), "--config",
               os.path.join(prefix, "etc", "skirmish", "skirmish.toml"), "--port", "0", "--admin-port", "0",
               "--shm-name", f"dockersteps-{os.getpid()}"]
        if os.getuid() == 0:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + cmd
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        log, ports = b"", {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(ports) < 2:
            r, _, _ = select.select([server.stdout], [], [], 0.2)
            if r:
                chunk = os.read(server.stdout.fileno(), 65536)
                if not chunk:
                    break
                log += chunk
                for m in LISTEN_RE.finditer(log):
                    ports["admin" if m.group(1) else "game"] = int(m.group(2))
        need(len(ports) == 2, f"server did not listen: {log.decode(errors='replace')[-1500:]}")
        if os.getuid() == 0:
            status = open(f"/proc/{server.pid}/status").read()
            need(re.search(r"(?m)^Uid:\s+65534\b", status), "the server does not run as the non-root user")
        # The HEALTHCHECK command, on the test's admin port, until healthy.
        probe = healthcheck.replace("7778", str(ports["admin"]))
        ok = False
        for _ in range(50):
            if subprocess.run(["sh", "-c", probe], capture_output=True).returncode == 0:
                ok = True
                break
            time.sleep(0.1)
        need(ok, f"HEALTHCHECK `{probe}` never succeeded")
        print(f"ok   non-root server healthy by the image's HEALTHCHECK ({probe})", flush=True)
        server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout=40)
        need(rc == 0, f"server exited {rc} after SIGTERM")
        server = None
        print("ok   SIGTERM: clean exit", flush=True)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    main()
