// Replays end to end: the real skirmish-server with [game] record_dir, bots
// over real sockets, then the real skirmish-replay in another process.
//
// - A match of each bundled game, recorded while it is played, replays to
//   the same MatchEnd (exit 0); the same file with its inputs changed
//   diverges (exit 1, naming a tick at or after the change).
// - kill -9 of the match's owner and of the coordinator mid-match lose
//   nothing of the record: it still replays to the end (exit 0).
// - A match quarantined for a module that crashes in step() (GameError)
//   replays into the same crash: skirmish-replay dies of SIGSEGV on the
//   tick the server's workers died on.
// - record_dir that is not a writable directory stops the start: exit 2.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "tests/support/bots.h"
#include "tests/support/server_process.h"
#include "tests/support/uv_loop.h"

using namespace skirmish;
using namespace skirmish::test;

namespace {

const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/skirmish-records-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() {
    for (const std::string& f : files()) unlink((path + "/" + f).c_str());
    rmdir(path.c_str());
  }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') out.push_back(e->d_name);
      closedir(d);
    }
    return out;
  }
  // The finished records (.skr, not .skr.part).
  std::vector<std::string> records() const {
    std::vector<std::string> out;
    for (const std::string& f : files())
      if (f.size() > 4 && f.compare(f.size() - 4, 4, ".skr") == 0) out.push_back(path + "/" + f);
    return out;
  }
};

struct Run {
  int status = -1;  // as from waitpid
  std::string output;
};

// skirmish-replay with `args`, to its end (killed past 60 s), output captured.
Run replay(const std::vector<std::string>& args) {
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    std::vector<char*> argv{const_cast<char*>(SKIRMISH_REPLAY_BIN)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  Run r;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    r.output.append(buf, size_t(n));
  }
  close(fds[0]);
  if (waitpid(pid, &r.status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &r.status, 0);
  }
  return r;
}

int exit_code(const Run& r) { return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1; }

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A copy of the record with every arena input of tick >= `from` steering
// the other way (record.h: the format); with `refused`, instead the first
// input from there on moves 127 (the arena's check_input allows -100..100),
// one no server hands step().
std::string tampered(const std::string& path, uint32_t from, bool refused = false) {
  std::vector<uint8_t> f = slurp(path);
  REQUIRE(f.size() > 16);
  uint32_t pos = 0;
  std::memcpy(&pos, f.data() + 12, 4);
  int changed = 0;
  while (pos + 4 <= f.size()) {
    uint16_t len = 0;
    std::memcpy(&len, f.data() + pos, 2);
    REQUIRE(len >= 4);
    if (f[pos + 2] == 1) {  // TICK
      uint32_t tick = 0;
      std::memcpy(&tick, f.data() + pos + 4, 4);
      uint32_t at = pos + 12;
      for (uint32_t i = 0; i < f[pos + 3]; ++i) {
        const uint8_t n = f[at + 1];
        if (tick >= from && refused) {
          if (changed++ == 0) f[at + 6] = 127;
        } else if (tick >= from) {
          int8_t& mx = reinterpret_cast<int8_t&>(f[at + 6]);
          mx = mx == 0 ? 100 : int8_t(-mx);
          ++changed;
        }
        at += 6 + n;
      }
    }
    pos += len;
  }
  REQUIRE(changed > 0);
  const std::string out = path + ".tampered";
  std::ofstream(out, std::ios::binary).write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
  return out;
}

// Matches each worker ticks now, from the live segment.
std::map<uint32_t, int> owners(const std::string& shm_name) {
  std::string error;
  auto seg = shm::Segment::open_existing(shm_name, error);
  REQUIRE(seg);
  std::map<uint32_t, int> out;
  seg->matches().for_each_used([&](shm::Handle, shm::MatchRow& m) {
    if (shm::shared_load(m.state) == shm::MatchState::Running) ++out[shm::shared_load(m.owner_worker)];
  });
  return out;
}

std::map<std::string, std::string> recording(const TempDir& dir, std::map<std::string, std::string> more = {}) {
  more.emplace("record_dir", "\"" + dir.path + "\"");
  more.emplace("record_hash_every", "10");
  return more;
}

}  // namespace

TEST_CASE("a recorded arena match replays to the same end, and with changed inputs diverges at a named tick") {
  TempDir dir;
  GameConfig cfg(recording(dir));
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 4);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 60s));
  REQUIRE(wait_until([&] { return dir.records().size() == 1; }, 10s));
  const std::string file = dir.records()[0];
  REQUIRE(file.find("-arena-m") != std::string::npos);

  const Run ok = replay({file});
  INFO(ok.output);
  REQUIRE(exit_code(ok) == 0);
  REQUIRE(ok.output.find("ok: arena") != std::string::npos);
  REQUIRE(ok.output.find("ended TimeLimit at tick " + std::to_string(r.bots[0]->final_tick)) != std::string::npos);

  const Run bad = replay({tampered(file, 40)});
  INFO(bad.output);
  REQUIRE(exit_code(bad) == 1);
  std::smatch m;
  REQUIRE(std::regex_search(bad.output, m, std::regex("diverged at tick ([0-9]+)")));
  const int tick = std::stoi(m[1]);
  REQUIRE(tick >= 40);
  REQUIRE(tick <= 50);  // the first state hash after the change (record_hash_every = 10)
  unlink((file + ".tampered").c_str());

  // An input the server would have refused is named, not handed to step().
  const Run refused = replay({tampered(file, 40, true)});
  INFO(refused.output);
  REQUIRE(exit_code(refused) == 1);
  REQUIRE(std::regex_search(refused.output, m, std::regex("diverged at tick ([0-9]+): input 0 \\(seat [0-3], 3 bytes\\) is one the server refuses")));
  REQUIRE(std::stoi(m[1]) >= 40);
  unlink((file + ".tampered").c_str());

  // A wrong module is refused before anything is stepped.
  const Run wrong = replay({file, "--module", "battleship"});
  INFO(wrong.output);
  REQUIRE(exit_code(wrong) == 2);
  REQUIRE(wrong.output.find("the record is of arena") != std::string::npos);
}

TEST_CASE("a recorded battleship match (turns, hidden views) replays to the same end") {
  TempDir dir;
  GameConfig cfg(recording(dir, {{"module", "\"battleship\""}, {"match_size", "2"}}),
                 GameConfig::Params{"board = 6\nturn_ms = 1000\nmax_stalls = 3\nmax_turns = 400\n"});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 2);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 120s));
  REQUIRE(r.bots[0]->reason == proto::EndReason::Completed);
  REQUIRE(wait_until([&] { return dir.records().size() == 1; }, 10s));
  const Run ok = replay({dir.records()[0]});
  INFO(ok.output);
  REQUIRE(exit_code(ok) == 0);
  REQUIRE(ok.output.find("ok: battleship") != std::string::npos);
  REQUIRE(ok.output.find("ended Completed") != std::string::npos);
}

TEST_CASE("kill -9 of the owner and of the coordinator mid-match: the record still replays to the end") {
  TempDir dir;
  GameConfig cfg(recording(dir, {{"time_limit_s", "8"}}));
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  for (int i = 0; i < 8; ++i) r.bots.push_back(std::make_unique<Bot>(loop.get(), "c" + std::to_string(i), true));
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 40; }); }, 30s));
  const auto owned = owners(srv.shm_name());
  REQUIRE(!owned.empty());
  const pid_t worker = child_titled(srv.pid(), "skirmish: worker " + std::to_string(owned.begin()->first));
  REQUIRE(worker != 0);
  REQUIRE(::kill(worker, SIGKILL) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 120; }); }, 30s));
  const pid_t coordinator = child_titled(srv.pid(), "skirmish: coordinator");
  REQUIRE(coordinator != 0);
  REQUIRE(::kill(coordinator, SIGKILL) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 40s));
  REQUIRE(wait_until([&] { return dir.records().size() == 2; }, 15s));
  for (const std::string& file : dir.records()) {
    const Run ok = replay({file});
    INFO(file << "\n" << ok.output);
    REQUIRE(exit_code(ok) == 0);
    REQUIRE(ok.output.find("ok: arena") != std::string::npos);
  }
  REQUIRE(srv.log().find("adopted by worker") != std::string::npos);
}

TEST_CASE("a quarantined match's record reproduces its crash: skirmish-replay dies of SIGSEGV") {
  TempDir dir;
  setenv("ASAN_OPTIONS", "handle_segv=0:detect_leaks=0", 1);
  GameConfig cfg(recording(dir, {{"module", "\"" + std::string(SKIRMISH_TEST_MODULES_DIR) + "/crash_step.so\""},
                                 {"match_size", "2"}}),
                 GameConfig::Params{"crash_after = 20\nticks = 100000\n"});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  // Plain clients: the broken module has no bot policy (no inputs is enough).
  Loop loop;
  struct Player {
    std::unique_ptr<client::Client> c;
    int ends = 0;
    proto::EndReason reason = proto::EndReason::ScoreLimit;
  };
  std::vector<Player> ps(2);
  for (size_t i = 0; i < ps.size(); ++i) {
    client::Options o{.name = "q" + std::to_string(i)};
    o.reconnect.enabled = true;
    ps[i].c = std::make_unique<client::Client>(loop.get(), o);
    Player& p = ps[i];
    p.c->callbacks().on_welcome = [&p](const proto::Welcome& w) {
      if (!w.resumed()) p.c->queue_join();
    };
    p.c->callbacks().on_match_end = [&p](const proto::MatchEnd& m) {
      ++p.ends;
      p.reason = m.reason();
    };
    REQUIRE(p.c->connect("127.0.0.1", srv.port()) == 0);
  }
  REQUIRE(loop.run_until([&] { return ps[0].ends == 1 && ps[1].ends == 1; }, 60s));
  REQUIRE(ps[0].reason == proto::EndReason::GameError);
  REQUIRE(wait_until([&] { return dir.records().size() == 1; }, 10s));
  const Run crash = replay({dir.records()[0]});
  unsetenv("ASAN_OPTIONS");
  INFO(crash.output);
  REQUIRE(crash.output.find("note: match quarantined (GameError): the module crashed in step() of tick 20") !=
          std::string::npos);
  REQUIRE(WIFSIGNALED(crash.status));
  REQUIRE(WTERMSIG(crash.status) == SIGSEGV);
}

TEST_CASE("game.record_dir that is not a writable directory stops the start with one line and exit 2") {
  GameConfig cfg(std::map<std::string, std::string>{{"record_dir", "\"/nonexistent/skirmish-records\""}});
  auto r = run_server({"--config", cfg.path, "--port", "0", "--admin-port", "0"});
  INFO(r.output);
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.output.find("game.record_dir = \"/nonexistent/skirmish-records\": No such file or directory") !=
          std::string::npos);
  REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}
