"""What the load-test tests share (test_loadtest.py, test_rx_clock.py): a
failure line and a real skirmish-server started on port 0 with its own shm
name, its port read from its log."""

import os
import re
import select
import signal
import subprocess
import sys
import time

LISTEN_RE = re.compile(rb"\] info: listening on [^ \n]+:(\d+)")


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def start_server(binary, config, shm_name):
    """Returns (process, port); fails the test when it does not listen within 15 s."""
    proc = subprocess.Popen([binary, "--config", config, "--port", "0", "--admin-port", "0",
                             "--shm-name", shm_name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            log += chunk
            m = LISTEN_RE.search(log)
            if m:
                return proc, int(m.group(1))
    proc.kill()
    proc.wait()
    fail(f"server did not listen within 15 s: {log.decode(errors='replace')[-2000:]}")


def stop_server(proc):
    """SIGTERM and a bounded wait (40 s, then SIGKILL and a failure); returns its exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        fail("server still running 40 s after SIGTERM")
