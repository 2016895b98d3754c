#!/usr/bin/python3
"""ctest terminal_client[_battleship]: skirmish-client driven through a real terminal (tmux).

Starts skirmish-server (port 0, its own shm name) with configs/loadtest.toml
changed to match_size = 2 (and, with --game battleship, to
[game] module = "battleship" with a 6 x 6 board, a long move timer and
max_turns = 4; with --game unknown, to the module given), then two skirmish-client processes, "tester" (--target
localhost:PORT, a name, resolved by the client) and "rival" (127.0.0.1), each
in its own detached 100x40 tmux session on a tmux socket of the test's own.
The two clients play each other. Each step is awaited with a deadline (no
fixed sleeps).

arena:
  1. the screen shows the arena with our player's digit, "in match", game
     "arena" and a tick;
  2. after Right is pressed our digit moves right on the screen;
  3. after kill -9 of the worker serving the client, the client resumes by
     itself: back in the match ("resumed on worker N"), the tick moving on.
battleship:
  1. both screens show two 6 x 6 boards, game "battleship", exactly one of
     the two panels says it is its turn, the move timer counts down; each own board shows the whole
     fleet (8 ship cells), the opponent's board shows no ship (hidden
     information);
  2. the player whose turn it is moves the aim (Right, Down: "aim B2") and
     fires with Enter: the shot appears at B2 on its opponent's board and
     on the other client's own board, "shots 1 of 4", and the shooter's
     screen says "your shot at B2: miss" (or hit);
  3. a key press by the player whose turn it is not is refused on the
     screen ("not your turn") and fires nothing;
  4. three more shots (whoever's turn it is: Right, then space), then both
     clients show the results: "match over: time is up (turn limit)".
unknown (--module tests/modules' slow_step.so, a game named "slow_step"):
  1. both screens say 'this client cannot play "slow_step" ...' while in
     the match (no input sent, no crash);
  2. the match ends ("match over"), n queues both again, and a second match
     shows the same message: the session was kept.
both:
  after q each client exits with 0, the terminal is restored (the normal
  screen shows the client's goodbye line, not the game) and the client's
  process is gone; then the panes are closed.
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
OPTS = None  # the parsed command line


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

    def capture(self, session):
        r = self.run("capture-pane", "-p", "-t", session, check=False)
        return r.stdout if r.returncode == 0 else ""

    def pane(self, session, fmt):  # a pane variable, "" when the session is gone
        r = self.run("list-panes", "-t", session, "-F", fmt, check=False)
        return r.stdout.strip() if r.returncode == 0 else ""

    def keys(self, session, *keys):
        self.run("send-keys", "-t", session, *keys)

    def kill_server(self):
        try:
            self.run("kill-server", check=False)
        except (subprocess.TimeoutExpired, OSError):
            pass


def split_screen(text):
    """(box lines, the right border's column, the panel as text), or None when no box is drawn."""
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0].startswith("+"):
        return None
    right = lines[0].find("+", 1)
    if right < 0:
        return None
    box = []
    for line in lines[1:]:
        if not line.startswith("|"):
            break
        box.append(line[1:right])
    return box, right, "\n".join(l[right + 1:] for l in lines)


def panel_value(panel, label):
    m = re.search(r"^\s*" + re.escape(label) + r"\s\s+(.+?)\s*$", panel, re.M)
    return m.group(1) if m else None


def parse_panel(text):
    """The panel while in a match: state, game, tick, slot, worker, turn, ...; None if not (yet) drawn."""
    split = split_screen(text)
    if split is None:
        return None
    box, _, panel = split
    state, tick, you, worker = (panel_value(panel, k) for k in ("state", "tick", "you", "worker"))
    if not (state and tick and you and worker) or not tick.isdigit() or not worker.isdigit():
        return None
    slot = re.match(r"slot (\d+)", you)
    if slot is None:
        return None
    return {"state": state, "tick": int(tick), "slot": int(slot.group(1)), "worker": int(worker),
            "game": panel_value(panel, "game") or "", "turn": panel_value(panel, "turn") or "",
            "aim": panel_value(panel, "aim") or "", "shots": panel_value(panel, "shots") or "",
            "resumed": "resumed on worker" in panel, "box": box}


def parse_arena(text):
    """The arena as drawn: our slot, the tick, our digit's (column, row); None if not (yet) drawn."""
    s = parse_panel(text)
    if s is None or s["state"] != "in match" or not s["game"].startswith("arena"):
        return None
    glyph = "0123456789abcdef"[s["slot"]]
    found = [(line.find(glyph), row) for row, line in enumerate(s["box"]) if glyph in line]
    if len(found) != 1 or line_count(s["box"], glyph) != 1:
        return None
    s["pos"] = found[0]
    return s


def line_count(box, glyph):
    return sum(line.count(glyph) for line in box)


def parse_battleship(text, board=6):
    """Both boards as drawn: own[y][x] and other[y][x] glyphs, plus the panel; None if not (yet) drawn."""
    s = parse_panel(text)
    if s is None or s["state"] != "in match" or not s["game"].startswith("battleship"):
        return None
    letters = " ".join("ABCDEFGHIJ"[:board])
    for i, line in enumerate(s["box"]):
        cols = [m.start() for m in re.finditer(re.escape(letters), line)]
        if len(cols) != 2:
            continue
        rows = s["box"][i + 1:i + 1 + board]
        if len(rows) != board:
            return None
        try:
            s["own"] = [[row[cols[0] + 2 * x] for x in range(board)] for row in rows]
            s["other"] = [[row[cols[1] + 2 * x] for x in range(board)] for row in rows]
        except IndexError:
            return None
        s["text"] = "\n".join(s["box"])
        return s
    return None


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


def server_config(opts):
    with open(opts.config) as f:
        config = f.read()
    config, n = re.subn(r"(?m)^match_size\s*=.*$", "match_size = 2", config)
    if n != 1:
        raise Failure(f"{opts.config} has {n} match_size lines")
    if opts.game != "arena":
        module = opts.module if opts.game == "unknown" else opts.game
        config, n = re.subn(r'(?m)^module\s*=.*$', f'module = "{module}"', config)
        if n != 1:
            raise Failure(f"{opts.config} has {n} module lines")
        # The arena's params are not battleship's: the [game.params] table is replaced.
        params = BATTLESHIP_PARAMS if opts.game == "battleship" else UNKNOWN_PARAMS
        config, n = re.subn(r"(?ms)^\[game\.params\]\n.*?(?=^\[)", params + "\n", config)
        if n != 1:
            raise Failure(f"{opts.config} has {n} [game.params] tables")
    return config


# 6 x 6 (fleet 3,3,2: 8 cells), a move timer far longer than the test needs,
# and a match of 4 turns (a turn is a shot or a stall).
BATTLESHIP_PARAMS = """[game.params]
board = 6
turn_ms = 60000
max_stalls = 3
max_turns = 4
"""


# tests/modules' slow_step (base_game.h) barely slowed: a game named
# "slow_step" that this client has no renderer for, ending after 2 s.
UNKNOWN_PARAMS = """[game.params]
ticks = 60
spin_us = 1
"""


class Player:
    def __init__(self, tmux, session, name, target):
        self.tmux, self.session, self.name = tmux, session, name
        # `timeout` bounds the client's life should this script be killed
        # (--foreground: the client stays in the terminal's foreground group).
        command = (f"timeout --foreground -s TERM {CLIENT_LIFETIME_S} {shlex.quote(OPTS.client)} "
                   f"--target {target} --name {name}; echo \"{EXIT_MARK}$?\"; exec sleep 60")
        tmux.run("new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), command)
        self.shell_pid = int(wait_for(f"the tmux pane of {name}", 10, lambda: tmux.pane(session, "#{pane_pid}")))
        self.pid = wait_for(f"the client process of {name}", 10, lambda: next(
            (p for p in descendants_of(self.shell_pid) if read(f"/proc/{p}/comm").strip() == "skirmish-client"),
            None))

    def screen(self):
        return self.tmux.capture(self.session)

    def keys(self, *keys):
        self.tmux.keys(self.session, *keys)

    def await_screen(self, what, timeout_s, probe):
        try:
            return wait_for(f"{self.name}: {what}", timeout_s, lambda: probe(self.screen()))
        except Failure:
            log(self.screen())
            raise

    def quit(self):
        self.keys("q")
        screen = wait_for(f"{self.name} to exit", 10,
                          lambda: (lambda t: t if EXIT_MARK in t else None)(self.screen()))
        status = re.search(re.escape(EXIT_MARK) + r"(\d+)", screen)
        if status is None or status.group(1) != "0":
            raise Failure(f"{self.name} did not exit with 0:\n{screen}")
        if "skirmish-client: bye" not in screen:
            raise Failure(f"{self.name}: no goodbye line on the restored screen:\n{screen}")
        if f"Skirmish  {self.name}" in screen or screen.lstrip().startswith("+---"):
            raise Failure(f"{self.name}: the game is still on the screen after exit (terminal not restored):\n{screen}")
        wait_for(f"the process of {self.name} to end", 10, lambda: process_gone(self.pid))


def play_arena(server, tester, rival):
    def in_match(text):
        s = parse_arena(text)
        return s if s and s["tick"] > 0 else None

    rival.await_screen("the arena", 30, in_match)
    first = tester.await_screen("the arena with our player and a tick", 30, in_match)
    log(f"ok   in match (arena): slot {first['slot']} at cell {first['pos']}, tick {first['tick']}")

    for _ in range(3):
        tester.keys("Right")
    moved = tester.await_screen("our player to move right on the screen", 15, lambda t: (
        lambda s: s if s and s["pos"][0] > first["pos"][0] else None)(in_match(t)))
    log(f"ok   moved right: cell {first['pos']} -> {moved['pos']}, tick {moved['tick']}")

    # kill -9 of the worker serving the client: it must resume by itself.
    worker_pid = next((p for p in children_of(server.pid)
                       if read(f"/proc/{p}/cmdline").replace("\0", " ").strip()
                       == f"skirmish: worker {moved['worker']}"), None)
    if worker_pid is None:
        raise Failure(f"no process titled 'skirmish: worker {moved['worker']}' under the server")
    os.kill(worker_pid, signal.SIGKILL)
    back = tester.await_screen("the client to resume after its worker was killed", 30, lambda t: (
        lambda s: s if s and s["resumed"] and s["tick"] > moved["tick"] + 30 else None)(in_match(t)))
    log(f"ok   worker {moved['worker']} (pid {worker_pid}) killed: resumed on worker {back['worker']}, "
        f"tick {moved['tick']} -> {back['tick']}")


FLEET_CELLS = 8  # board 6: ships 3, 3, 2
SHOT_GLYPHS = "oX*"


def play_battleship(tester, rival):
    players = [tester, rival]

    def view(p):
        return parse_battleship(p.screen())

    def both(what, probe, timeout_s=30):
        """probe(tester view, rival view) until it returns a truthy value."""
        def step():
            a, b = view(tester), view(rival)
            return probe(a, b) if a and b and a["tick"] > 0 and b["tick"] > 0 else None
        try:
            return wait_for(what, timeout_s, step)
        except Failure:
            log(tester.screen())
            log(rival.screen())
            raise

    def shooter(a, b):
        mine = [s["turn"].startswith("yours") for s in (a, b)]
        return mine.index(True) if mine.count(True) == 1 else None

    a, b = both("both boards with exactly one player to fire", lambda a, b: (a, b) if shooter(a, b) is not None else None)
    log(f"ok   in match (battleship): tester slot {a['slot']}, rival slot {b['slot']}; "
        f"{players[shooter(a, b)].name} fires first")
    for s, p in ((a, tester), (b, rival)):
        ships = sum(row.count("#") for row in s["own"])
        hidden = sum(row.count("#") for row in s["other"])
        if ships != FLEET_CELLS or hidden != 0:
            raise Failure(f"{p.name}: own board shows {ships} ship cells (want {FLEET_CELLS}), the opponent's "
                          f"{hidden} (want 0: hidden):\n{s['text']}")
        if not re.match(r"(yours|theirs), \d+\.\d s$", s["turn"]):
            raise Failure(f"{p.name}: the turn row shows no move timer: {s['turn']!r}")
    timer = lambda s: float(re.search(r"(\d+\.\d) s$", s["turn"]).group(1))
    later = both("the move timer to count down", lambda a2, b2: (a2, b2) if re.search(
        r"\d+\.\d s$", a2["turn"]) and timer(a2) < timer(a) else None)[0]
    log(f"ok   own fleets shown ({FLEET_CELLS} cells each), the opponent's ships hidden; "
        f"timer: {a['turn']!r} -> {later['turn']!r}")

    # The first shot: B2.
    first = shooter(a, b)
    p, q = players[first], players[1 - first]
    p.keys("Right")
    p.keys("Down")
    p.await_screen("aim B2", 10, lambda t: (lambda s: s if s and s["aim"] == "B2" else None)(parse_battleship(t)))
    # The other one may not fire: it is refused on its screen and nothing is shot.
    q.keys("Enter")
    q.await_screen("'not your turn'", 10, lambda t: "not your turn" in t)
    p.keys("Enter")

    def shot_landed(a, b):
        me, them = (a, b) if first == 0 else (b, a)
        if (me["other"][1][1] in SHOT_GLYPHS and them["own"][1][1] in SHOT_GLYPHS and me["shots"] == "1 of 4"
                and re.search(r"your shot at B2: (miss|hit)", me["text"])):
            return me, them
        return None

    me, them = both("the shot at B2 on both screens", shot_landed)
    shots_on = lambda s: sum(ch in SHOT_GLYPHS for row in s["other"] for ch in row)
    if shots_on(me) != 1 or sum(ch in SHOT_GLYPHS for row in them["other"] for ch in row) != 0:
        raise Failure(f"after one shot: {shots_on(me)} shots on {p.name}'s target board, "
                      f"{shots_on(them)} on {q.name}'s (want 1 and 0)")
    log(f"ok   {p.name} fired at B2: {me['other'][1][1]!r} on its target board, "
        f"{them['own'][1][1]!r} on {q.name}'s fleet; {me['shots']}")

    for n in (2, 3, 4):
        a, b = both(f"the turn for shot {n}", lambda a, b: (a, b) if shooter(a, b) is not None else None)
        who = players[shooter(a, b)]
        who.keys("Right")
        who.keys("Space")
        if n < 4:
            both(f"shot {n} on the screens", lambda a, b: (a, b) if a["shots"] == f"{n} of 4" == b["shots"] else None)
        log(f"ok   shot {n}: {who.name}")

    def over(t):
        return t if "match over: time is up (turn limit)" in t else None

    for pl in players:
        pl.await_screen("the results after the turn limit", 20, over)
    log("ok   match over: time is up (turn limit) on both screens")


def play_unknown(tester, rival):
    """A game the client does not know: a clear message, no crash, and the session stays (n queues again)."""
    message = 'this client cannot play "slow_step" (it knows arena, battleship)'

    def told(t):
        s = parse_panel(t)
        return t if s and s["state"] == "in match" and s["game"].startswith("slow_step") and message in t else None

    for p in (tester, rival):
        p.await_screen("the unknown-game message", 30, told)
    log(f"ok   unknown game: {message!r}")
    for p in (tester, rival):
        p.await_screen("the match to end", 30, lambda t: (lambda s: s if s and s["state"] == "match over" else None)(
            parse_panel(t)))
    for p in (tester, rival):
        p.keys("n")
    for p in (tester, rival):
        p.await_screen("a second match of the unknown game", 30, told)
    log("ok   the match ended, n queued again, a second match: the session was kept")


def run(opts, tmp):
    config_path = os.path.join(tmp, "server.toml")
    with open(config_path, "w") as f:
        f.write(server_config(opts))
    tmux_conf = os.path.join(tmp, "tmux.conf")
    with open(tmux_conf, "w") as f:
        # /bin/sh runs the command line: it waits for the client, prints its exit
        # status and stays (sleep) so the pane keeps what the client left on the
        # normal screen. (tmux 3.3a's remain-on-exit loses some of a dead pane's
        # last output, so the test does not rely on it.)
        f.write("set-option -g default-shell /bin/sh\n")

    tag = f"{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
    server_log = os.path.join(tmp, "server.log")
    server = None
    tmux = Tmux(f"skirmish-term-{tag}", tmux_conf, tmp)
    try:
        server, port = start_server(opts.server, config_path, f"termtest-{tag}", server_log)
        log(f"ok   server listening on 127.0.0.1:{port} ({opts.game})")
        tester = Player(tmux, "tester", "tester", f"localhost:{port}")
        rival = Player(tmux, "rival", "rival", f"127.0.0.1:{port}")
        if opts.game == "battleship":
            play_battleship(tester, rival)
        elif opts.game == "unknown":
            play_unknown(tester, rival)
        else:
            play_arena(server, tester, rival)
        for p in (tester, rival):
            p.quit()
        tmux.kill_server()
        for p in (tester, rival):
            wait_for(f"the pane of {p.name} to close", 10, lambda: process_gone(p.shell_pid))
        log("ok   q: exit status 0, terminal restored, client processes gone; panes closed")
    finally:
        tmux.kill_server()
        problems = []
        server_rc = stop(server, "skirmish-server", 40, problems)
    if problems:
        raise Failure("; ".join(problems))
    if server_rc not in (0, None):
        raise Failure(f"server exited with {server_rc} after SIGTERM: {read(server_log)[-2000:]}")
    log(f"ok   clean-up: server exited with {server_rc}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--game", choices=("arena", "battleship", "unknown"), default="arena")
    ap.add_argument("--module", help="with --game unknown: tests/modules' slow_step.so")
    global OPTS
    opts = OPTS = ap.parse_args()
    if opts.game == "unknown" and not opts.module:
        ap.error("--game unknown needs --module")
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
    log(f"ok   terminal_client ({opts.game})")


if __name__ == "__main__":
    main()
