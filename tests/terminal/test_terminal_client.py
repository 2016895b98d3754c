#!/usr/bin/python3
"""ctest terminal_client: skirmish-client driven through a real terminal (tmux).

Starts skirmish-server (port 0, its own shm name) with configs/loadtest.toml
changed to match_size = 2, one opponent bot with skirmish-loadtest, and
skirmish-client --target localhost:PORT (a name, resolved by the client) in
a detached 100x40 tmux session on a socket of its own.
Then, each step awaited with a deadline (no fixed sleeps):
  1. the screen shows the arena with our player's digit, "in match" and a tick;
  2. after Right is pressed our digit moves right on the screen;
  3. after kill -9 of the worker serving the client, the client resumes by
     itself: back in the match ("resumed on worker N"), the tick moving on;
  4. after q the client exits with 0, the terminal is restored (the normal
     screen shows the client's goodbye line, not the arena) and the client's
     process is gone; then the pane is closed.
Clean-up kills only what the test started, by pid or by its own tmux socket.
tmux comes from Debian (scripts/install-deps.sh --test); without it the
test fails with that hint, it is never skipped.
"""

import argparse
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LISTEN_RE = re.compile(r"\] info: listening on 127\.0\.0\.1:(\d+)")
WIDTH, HEIGHT = 100, 40
EXIT_MARK = "terminal-test: client exited with "
CLIENT_LIFETIME_S = 170  # the ctest TIMEOUT is 180


def log(msg):
    print(msg, flush=True)


class Failure(Exception):
    pass


def wait_for(what, timeout_s, probe, interval_s=0.1):
    """Calls probe() until it returns a truthy value; bounded in time and count."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / interval_s) + 2):
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    raise Failure(f"timed out after {timeout_s} s waiting for {what}")


class Tmux:
    """A tmux server of the test's own: -L socket under TMUX_TMPDIR = the test's temporary directory."""

    def __init__(self, socket, conf, tmpdir):
        self.base = ["tmux", "-L", socket, "-f", conf]
        self.env = dict(os.environ, TMUX_TMPDIR=tmpdir)

    def run(self, *args, check=True):
        r = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=10, env=self.env)
        if check and r.returncode != 0:
            raise Failure(f"tmux {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    def capture(self):
        r = self.run("capture-pane", "-p", "-t", "term", check=False)
        return r.stdout if r.returncode == 0 else ""

    def pane(self, fmt):  # a pane variable, "" when the session is gone
        r = self.run("list-panes", "-t", "term", "-F", fmt, check=False)
        return r.stdout.strip() if r.returncode == 0 else ""

    def kill_server(self):
        try:
            self.run("kill-server", check=False)
        except (subprocess.TimeoutExpired, OSError):
            pass


def parse_screen(text):
    """The arena as drawn: our slot, the tick, our digit's (column, row); None if not (yet) drawn."""
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0].startswith("+"):
        return None
    right = lines[0].find("+", 1)
    if right < 0:
        return None
    panel = "\n".join(l[right + 1:] for l in lines)
    state = re.search(r"^\s*state\s+(.+?)\s*$", panel, re.M)
    tick = re.search(r"^\s*tick\s+(\d+)", panel, re.M)
    you = re.search(r"^\s*you\s+slot (\d+)", panel, re.M)
    worker = re.search(r"^\s*worker\s+(\d+)", panel, re.M)
    if not (state and tick and you and worker) or state.group(1) != "in match":
        return None
    glyph = "0123456789abcdef"[int(you.group(1))]
    found = []
    for row, line in enumerate(lines[1:], start=1):
        if not line.startswith("|"):
            break
        col = line.find(glyph, 1, right)
        if col >= 0:
            found.append((col - 1, row - 1))
    if len(found) != 1:
        return None
    return {"slot": int(you.group(1)), "tick": int(tick.group(1)), "pos": found[0],
            "worker": int(worker.group(1)), "resumed": "resumed on worker" in panel}


def start_server(binary, config, shm_name, log_path):
    out = open(log_path, "wb")
    proc = subprocess.Popen([binary, "--config", config, "--port", "0", "--admin-port", "0",
                             "--shm-name", shm_name], stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_this_script)
    out.close()

    def port():
        if proc.poll() is not None:
            raise Failure(f"server exited with {proc.returncode}: {read(log_path)[-2000:]}")
        m = LISTEN_RE.search(read(log_path))
        return int(m.group(1)) if m else None

    try:
        return proc, wait_for("the server's listening line", 15, port)
    except Failure:
        proc.kill()
        proc.wait()
        raise


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def descendants_of(pid, depth=4):
    out = []
    for child in children_of(pid):
        out.append(child)
        if depth > 1:
            out.extend(descendants_of(child, depth - 1))
    return out


def die_with_this_script():
    """preexec_fn: the child gets SIGTERM when this script dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def process_gone(pid):
    """True when pid no longer exists (or is a zombie: it has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def stop(proc, name, timeout_s, problems):
    """SIGTERM to a process the test started, then waits; SIGKILL (and a problem) past the timeout."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            problems.append(f"{name} still running {timeout_s} s after SIGTERM")
    return proc.returncode


def run(opts, tmp):
    with open(opts.config) as f:
        config = f.read()
    config, n = re.subn(r"(?m)^match_size\s*=.*$", "match_size = 2", config)
    if n != 1:
        raise Failure(f"{opts.config} has {n} match_size lines")
    config_path = os.path.join(tmp, "server.toml")
    with open(config_path, "w") as f:
        f.write(config)
    tmux_conf = os.path.join(tmp, "tmux.conf")
    with open(tmux_conf, "w") as f:
        # /bin/sh runs the command line: it waits for the client, prints its exit
        # status and stays (sleep) so the pane keeps what the client left on the
        # normal screen. (tmux 3.3a's remain-on-exit loses some of a dead pane's
        # last output, so the test does not rely on it.)
        f.write("set-option -g default-shell /bin/sh\n")

    tag = f"{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
    server_log = os.path.join(tmp, "server.log")
    server = bot = None
    tmux = Tmux(f"skirmish-term-{tag}", tmux_conf, tmp)
    try:
        server, port = start_server(opts.server, config_path, f"termtest-{tag}", server_log)
        log(f"ok   server listening on 127.0.0.1:{port}")

        # `timeout` bounds the client's life should this script be killed
        # (--foreground: the client stays in the terminal's foreground group).
        command = (f"timeout --foreground -s TERM {CLIENT_LIFETIME_S} {shlex.quote(opts.client)} "
                   f"--target localhost:{port} --name tester; echo \"{EXIT_MARK}$?\"; exec sleep 60")
        tmux.run("new-session", "-d", "-s", "term", "-x", str(WIDTH), "-y", str(HEIGHT), command)
        shell_pid = int(wait_for("the tmux pane", 10, lambda: tmux.pane("#{pane_pid}")))
        client_pid = wait_for("the client process", 10, lambda: next(
            (p for p in descendants_of(shell_pid) if read(f"/proc/{p}/comm").strip() == "skirmish-client"), None))

        bot_log = open(os.path.join(tmp, "bot.log"), "wb")
        bot = subprocess.Popen([opts.loadtest, "--target", f"127.0.0.1:{port}", "--bots", "1",
                                "--duration", "60"], stdout=bot_log, stderr=subprocess.STDOUT,
                               preexec_fn=die_with_this_script)
        bot_log.close()

        def in_match():
            if bot.poll() is not None:
                raise Failure(f"the bot exited with {bot.returncode}: {read(os.path.join(tmp, 'bot.log'))[-1000:]}")
            s = parse_screen(tmux.capture())
            return s if s and s["tick"] > 0 else None

        try:
            first = wait_for("the arena with our player and a tick", 30, in_match)
        except Failure:
            log(tmux.capture())
            raise
        log(f"ok   in match: slot {first['slot']} at cell {first['pos']}, tick {first['tick']}")

        for _ in range(3):
            tmux.run("send-keys", "-t", "term", "Right")

        def moved_right():
            s = parse_screen(tmux.capture())
            return s if s and s["pos"][0] > first["pos"][0] else None

        try:
            moved = wait_for("our player to move right on the screen", 15, moved_right)
        except Failure:
            log(tmux.capture())
            raise
        log(f"ok   moved right: cell {first['pos']} -> {moved['pos']}, tick {moved['tick']}")

        # kill -9 of the worker serving the client: it must resume by itself.
        worker_pid = next((p for p in children_of(server.pid)
                           if read(f"/proc/{p}/cmdline").replace("\0", " ").strip()
                           == f"skirmish: worker {moved['worker']}"), None)
        if worker_pid is None:
            raise Failure(f"no process titled 'skirmish: worker {moved['worker']}' under the server")
        os.kill(worker_pid, signal.SIGKILL)

        def resumed():
            s = parse_screen(tmux.capture())
            return s if s and s["resumed"] and s["tick"] > moved["tick"] + 30 else None

        try:
            back = wait_for("the client to resume after its worker was killed", 30, resumed)
        except Failure:
            log(tmux.capture())
            raise
        log(f"ok   worker {moved['worker']} (pid {worker_pid}) killed: resumed on worker {back['worker']}, "
            f"tick {moved['tick']} -> {back['tick']}")

        tmux.run("send-keys", "-t", "term", "q")
        screen = wait_for("the client to exit", 10, lambda: (lambda t: t if EXIT_MARK in t else None)(tmux.capture()))
        status = re.search(re.escape(EXIT_MARK) + r"(\d+)", screen)
        if status is None or status.group(1) != "0":
            raise Failure(f"the client did not exit with 0:\n{screen}")
        if "skirmish-client: bye" not in screen:
            raise Failure(f"no goodbye line on the restored screen:\n{screen}")
        if "Skirmish  tester" in screen or screen.lstrip().startswith("+---"):
            raise Failure(f"the arena is still on the screen after exit (terminal not restored):\n{screen}")
        wait_for("the client process to end", 10, lambda: process_gone(client_pid))
        tmux.kill_server()
        wait_for("the pane to close", 10, lambda: process_gone(shell_pid))
        log("ok   q: exit status 0, terminal restored, client process gone; pane closed")
    finally:
        tmux.kill_server()
        problems = []
        bot_rc = stop(bot, "skirmish-loadtest", 20, problems)
        server_rc = stop(server, "skirmish-server", 40, problems)
    if problems:
        raise Failure("; ".join(problems))
    if server_rc not in (0, None):
        raise Failure(f"server exited with {server_rc} after SIGTERM: {read(server_log)[-2000:]}")
    log(f"ok   clean-up: bot exited with {bot_rc}, server with {server_rc}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--loadtest", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--config", required=True)
    opts = ap.parse_args()
    if shutil.which("tmux") is None:
        log("FAIL tmux is not installed: run scripts/install-deps.sh --test (Debian's tmux)")
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="skirmish-term-")
    try:
        run(opts, tmp)
    except Failure as e:
        log(f"FAIL {e}")
        sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("ok   terminal_client")


if __name__ == "__main__":
    main()
