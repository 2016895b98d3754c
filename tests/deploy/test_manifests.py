#!/usr/bin/python3
"""ctest deploy_manifests: deploy/ parses, carries the fields it must, and agrees with the image.

The Agones Fleet: TCP game port 7777 with a dynamic host port, Kubernetes
probes on the admin port's /healthz and /readyz, Agones SDK health on with a
period the server's health pings (agones.health_interval_ms) fit in twice, the
"players" Counter the server updates, a memory-backed /dev/shm of at least
64 MiB, a grace period longer than the server's default drain.

The container's command line is what Kubernetes runs: the Dockerfile's
ENTRYPOINT (parsed from the Dockerfile, exec form) followed by the
container's args (or `command`, which replaces the ENTRYPOINT). No flag may
come twice, every absolute path under the image's install prefix (parsed
from the Dockerfile's `cmake --install --prefix` and `COPY --from=build`)
must exist in a real `cmake --install` of the build, and that command line,
with the prefix mapped onto the install, must pass the real server's
--check-config. The config it loads must listen on every interface on the
ports the manifest names.

The FleetAutoscaler: a buffer policy on that fleet. The systemd unit: the
drain signal, reload, no restart on a bad config (exit 2).
"""

import argparse
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

import yaml


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def need(cond, msg):
    if not cond:
        fail(msg)


def mib(q):
    units = {"Mi": 1, "Gi": 1024, "M": 1, "G": 1000}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q) / (1 << 20)


def image_facts(dockerfile_text):
    """The runtime stage's ENTRYPOINT (exec form) and the install prefix the image copies."""
    stages = re.split(r"(?m)^FROM ", dockerfile_text)
    need(len(stages) >= 3, "Dockerfile: a build stage and a runtime stage")
    build, runtime = stages[1], stages[-1]
    m = re.search(r"cmake --install \S+ --prefix (\S+)", build)
    need(m, "Dockerfile: the build stage installs with cmake --install --prefix")
    prefix = m.group(1)
    need(re.search(r"(?m)^COPY --from=build " + re.escape(prefix) + " " + re.escape(prefix) + "$", runtime),
         f"Dockerfile: the runtime stage copies {prefix} from the build stage")
    m = re.search(r"(?m)^ENTRYPOINT (.+)$", runtime)
    need(m, "Dockerfile: ENTRYPOINT in the runtime stage")
    try:
        entry = json.loads(m.group(1))
    except json.JSONDecodeError:
        entry = None
    need(isinstance(entry, list) and all(isinstance(a, str) for a in entry),
         "Dockerfile: ENTRYPOINT in exec form (a JSON array), so SIGTERM reaches the server")
    return entry, prefix


def container_argv(container, entrypoint):
    # Kubernetes: `command` replaces the image's ENTRYPOINT, `args` follow it.
    return list(container.get("command", entrypoint)) + list(container.get("args", []))


def option_value(argv, *names):
    for i, a in enumerate(argv):
        if a in names and i + 1 < len(argv):
            return argv[i + 1]
        for n in names:
            if a.startswith(n + "="):
                return a[len(n) + 1:]
    return None


def check_argv(argv, prefix, install, server_bin):
    need(argv and argv[0] == prefix + "/bin/skirmish-server", f"fleet: the container runs {prefix}/bin/skirmish-server, not {argv[:1]}")
    flags = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("-")]
    twice = sorted({f for f in flags if flags.count(f) > 1})
    aliases = {"-c": "--config"}
    canon = [aliases.get(f, f) for f in flags]
    twice += sorted({f for f in canon if canon.count(f) > 1} - set(twice))
    need(not twice, f"fleet: the container's command line {argv} gives {twice} more than once "
                    "(the image's ENTRYPOINT already passes them)")
    mapped = []
    for a in argv:
        if a.startswith(prefix + "/"):
            local = install + a[len(prefix):]
            need(os.path.exists(local), f"fleet: {a} is on the container's command line but not in the image "
                                        f"(a real cmake --install has no {a[len(prefix):]})")
            a = local
        elif a.startswith("/") and a != argv[0]:
            fail(f"fleet: {a} is outside the image's install prefix {prefix}: nothing puts it in the image")
        mapped.append(a)
    mapped[0] = server_bin
    r = subprocess.run(mapped + ["--check-config"], capture_output=True, text=True, timeout=30)
    need(r.returncode == 0, f"fleet: the container's command line fails the server's own check "
                            f"(exit {r.returncode}): {(r.stderr or r.stdout).strip()}")
    need("config ok:" in r.stdout, f"fleet: --check-config said {r.stdout!r}")
    cfg_path = option_value(mapped, "--config", "-c")
    need(cfg_path, "fleet: no --config on the container's command line (the server would look in the working directory)")
    return cfg_path


def check_fleet(path, entrypoint, prefix, install, server_bin):
    with open(path) as f:
        fleet = yaml.safe_load(f)
    need(fleet["apiVersion"] == "agones.dev/v1" and fleet["kind"] == "Fleet", "fleet: apiVersion/kind")
    gs = fleet["spec"]["template"]["spec"]
    ports = {p["name"]: p for p in gs["ports"]}
    need("game" in ports, "fleet: no 'game' port")
    need(ports["game"]["containerPort"] == 7777 and ports["game"]["protocol"] == "TCP", "fleet: game port 7777/TCP")
    need(ports["game"]["portPolicy"] == "Dynamic", "fleet: game port policy")
    pod = gs["template"]["spec"]
    c = pod["containers"][0]
    argv = container_argv(c, entrypoint)
    cfg_path = check_argv(argv, prefix, install, server_bin)
    with open(cfg_path, "rb") as f:
        cfg = tomllib.load(f)
    srv = cfg.get("server", {})
    game_port = int(option_value(argv, "--port") or srv.get("listen_port", 7777))
    admin_port = int(option_value(argv, "--admin-port") or srv.get("admin_port", 7778))
    need(srv.get("listen_host") in ("0.0.0.0", "::") and srv.get("admin_host") in ("0.0.0.0", "::"),
         f"fleet: {cfg_path} must listen beyond loopback in a pod")
    need(game_port == ports["game"]["containerPort"], f"fleet: the server listens on {game_port}, the manifest says "
                                                       f"{ports['game']['containerPort']}")
    need(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": admin_port}, "fleet: liveness on /healthz")
    need(c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": admin_port}, "fleet: readiness on /readyz")
    # Agones SDK health: on, and the server's pings fit in each period twice.
    health = gs.get("health", {})
    need(health.get("disabled", False) is False, "fleet: Agones health must be on (the server sends /health)")
    agones = cfg.get("agones", {})
    interval = agones.get("health_interval_ms", 2000)
    timeout = agones.get("request_timeout_ms", 1000)
    period_ms = health.get("periodSeconds", 5) * 1000
    need(2 * interval <= period_ms, f"fleet: health.periodSeconds ({period_ms} ms) shorter than two of the "
                                    f"server's pings (agones.health_interval_ms = {interval})")
    need(timeout <= interval, "fleet: agones.request_timeout_ms above the health interval")
    need(health.get("failureThreshold", 3) >= 2, "fleet: a single late ping would mark the server Unhealthy")
    counters = gs.get("counters", {})
    need("players" in counters and counters["players"].get("capacity", 0) >= 1,
         "fleet: the 'players' Counter the server updates")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    need(mounts.get("dshm") == "/dev/shm", "fleet: /dev/shm mount")
    need(vols["dshm"]["emptyDir"]["medium"] == "Memory", "fleet: /dev/shm in memory")
    need(mib(vols["dshm"]["emptyDir"]["sizeLimit"]) >= 64, "fleet: /dev/shm smaller than the segment needs")
    need(pod["terminationGracePeriodSeconds"] > 30, "fleet: grace shorter than the 30 s drain")
    print(f"ok   fleet: the container runs {' '.join(argv)}: every path in the image, --check-config passes",
          flush=True)
    return fleet["metadata"]["name"]


def check_autoscaler(path, fleet_name):
    with open(path) as f:
        fa = yaml.safe_load(f)
    need(fa["apiVersion"] == "autoscaling.agones.dev/v1" and fa["kind"] == "FleetAutoscaler", "autoscaler: kind")
    need(fa["spec"]["fleetName"] == fleet_name, "autoscaler: names another fleet")
    pol = fa["spec"]["policy"]
    need(pol["type"] == "Buffer", "autoscaler: buffer policy")
    b = pol["buffer"]
    need(0 < b["minReplicas"] <= b["maxReplicas"] and b["bufferSize"] >= 1, "autoscaler: bounds")


def check_unit(path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    with open(path) as f:
        unit.read_file(f)
    svc = unit["Service"]
    need(svc["KillSignal"] == "SIGTERM", "unit: SIGTERM drains")
    need(svc["Type"] == "notify" and svc["NotifyAccess"] == "all",
         "unit: Type=notify and NotifyAccess=all (the upgraded master sends MAINPID)")
    need("-HUP" in svc["ExecReload"], "unit: reload is SIGHUP")
    need(svc["RestartPreventExitStatus"] == "2", "unit: no restart loop on a bad config (exit 2)")
    need(int(svc["TimeoutStopSec"]) > 30, "unit: stop timeout shorter than the 30 s drain")
    need(svc["ExecStart"].startswith("/usr/local/bin/skirmish-server --config "), "unit: ExecStart")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deploy", required=True)
    ap.add_argument("--source", required=True, help="the repository (Dockerfile)")
    ap.add_argument("--build", required=True, help="a configured build tree to cmake --install")
    opts = ap.parse_args()
    with open(os.path.join(opts.source, "Dockerfile")) as f:
        entrypoint, prefix = image_facts(f.read())
    install = tempfile.mkdtemp(prefix="skirmish-image-")
    try:
        inst = subprocess.run(["cmake", "--install", opts.build, "--prefix", install], capture_output=True, text=True)
        need(inst.returncode == 0, f"cmake --install failed: {inst.stderr[-2000:]}")
        server_bin = os.path.join(install, "bin", "skirmish-server")
        need(os.access(server_bin, os.X_OK), "cmake --install put no bin/skirmish-server")
        name = check_fleet(os.path.join(opts.deploy, "agones", "fleet.yaml"), entrypoint, prefix, install, server_bin)
    finally:
        shutil.rmtree(install, ignore_errors=True)
    check_autoscaler(os.path.join(opts.deploy, "agones", "autoscaler.yaml"), name)
    check_unit(os.path.join(opts.deploy, "systemd", "skirmish.service"))
    print("ok   deploy/ manifests", flush=True)


if __name__ == "__main__":
    main()
