#!/usr/bin/python3
"""ctest deploy_manifests: deploy/ parses and carries the fields it must.

The Agones Fleet: TCP game port 7777 with a dynamic host port, Kubernetes
probes on the admin port's /healthz and /readyz (Agones SDK health is off:
the server does not link the SDK), a memory-backed /dev/shm of at least
64 MiB, a grace period longer than the server's default drain, and the
container config that listens beyond loopback. The FleetAutoscaler: a
buffer policy on that fleet. The systemd unit: the drain signal, reload,
no restart on a bad config (exit 2).
"""

import argparse
import configparser
import os
import sys

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


def check_fleet(path):
    with open(path) as f:
        fleet = yaml.safe_load(f)
    need(fleet["apiVersion"] == "agones.dev/v1" and fleet["kind"] == "Fleet", "fleet: apiVersion/kind")
    gs = fleet["spec"]["template"]["spec"]
    ports = {p["name"]: p for p in gs["ports"]}
    need("game" in ports, "fleet: no 'game' port")
    need(ports["game"]["containerPort"] == 7777 and ports["game"]["protocol"] == "TCP", "fleet: game port 7777/TCP")
    need(ports["game"]["portPolicy"] == "Dynamic", "fleet: game port policy")
    need(gs["health"]["disabled"] is True, "fleet: Agones SDK health must be off (no SDK in the server)")
    pod = gs["template"]["spec"]
    c = pod["containers"][0]
    args = c["args"]
    need("/etc/skirmish/container.toml" in args, "fleet: the container config (listens beyond loopback)")
    need(args[args.index("--port") + 1] == "7777" and args[args.index("--admin-port") + 1] == "7778", "fleet: ports in args")
    need(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 7778}, "fleet: liveness on /healthz")
    need(c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 7778}, "fleet: readiness on /readyz")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    need(mounts.get("dshm") == "/dev/shm", "fleet: /dev/shm mount")
    need(vols["dshm"]["emptyDir"]["medium"] == "Memory", "fleet: /dev/shm in memory")
    need(mib(vols["dshm"]["emptyDir"]["sizeLimit"]) >= 64, "fleet: /dev/shm smaller than the segment needs")
    need(pod["terminationGracePeriodSeconds"] > 30, "fleet: grace shorter than the 30 s drain")
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
    opts = ap.parse_args()
    name = check_fleet(os.path.join(opts.deploy, "agones", "fleet.yaml"))
    check_autoscaler(os.path.join(opts.deploy, "agones", "autoscaler.yaml"), name)
    check_unit(os.path.join(opts.deploy, "systemd", "skirmish.service"))
    print("ok   deploy/ manifests", flush=True)


if __name__ == "__main__":
    main()
