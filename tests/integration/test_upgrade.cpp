// The zero-downtime binary upgrade (SIGUSR2): a new master from the same
// executable inherits the listen socket and the segment; the old master's
// workers finish their matches and exit. Real processes, real sockets.
//
// The new master is the old one's child; when the old one exits it would
// be re-parented to init, so this test process makes itself a child
// subreaper (PR_SET_CHILD_SUBREAPER) to wait for it by pid.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <regex>

#include "tests/support/bots.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "tests/support/test_client.h"

using namespace skirmish;
using namespace skirmish::test;

namespace {

const bool g_setup = [] {
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return true;
}();


bool healthy(uint16_t admin_port) { return http_get(admin_port, "/healthz").rfind("HTTP/1.1 200", 0) == 0; }

// A process this test adopted (the new master): killed by pid if the test
// fails before stopping it.
struct Adopted {
  pid_t pid = 0;
  int status = -1;
  ~Adopted() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  bool wait_exit(std::chrono::milliseconds timeout) {
    return wait_until([&] { return pid > 0 && waitpid(pid, &status, WNOHANG) == pid; }, timeout) && (pid = 0, true);
  }
};

pid_t new_master_pid(ServerProcess& srv) {
  static const std::regex re(R"(upgrade: handed over to pid (\d+))");
  std::smatch m;
  const std::string& l = srv.log();
  return std::regex_search(l, m, re) ? pid_t(std::stoi(m[1])) : 0;
}

// New connections, one every `every_ms`, each until Welcome: any that does
// not reach Welcome (refused, reset, closed) is a failure.
struct Prober {
  Loop& loop;
  uint16_t port;
  std::vector<std::unique_ptr<Client>> clients;
  uv_timer_t timer;
  int started = 0, welcomed = 0, failed = 0;
  std::vector<int> last_errors;

  Prober(Loop& l, uint16_t p, int every_ms) : loop(l), port(p) {
    uv_timer_init(loop.get(), &timer);
    timer.data = this;
    uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<Prober*>(t->data)->probe(); }, 0, uint64_t(every_ms));
  }
  void probe() {
    auto c = std::make_unique<Client>(loop.get(), Options{.name = "probe"});
    Client* raw = c.get();
    auto ok = std::make_shared<bool>(false);
    raw->callbacks().on_welcome = [raw, ok, this](const proto::Welcome&) {
      *ok = true;
      ++welcomed;
      raw->close();
    };
    raw->callbacks().on_closed = [ok, this](int reason) {
      if (*ok) return;
      ++failed;
      last_errors.push_back(reason);
    };
    ++started;
    if (raw->connect("127.0.0.1", port) != 0) ++failed;
    clients.push_back(std::move(c));
  }
  ~Prober() { stop(); }
  void stop() {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer))) return;
    uv_timer_stop(&timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  }
  bool settled() const { return welcomed + failed == started; }
};

}  // namespace

TEST_CASE("SIGUSR2 upgrades the binary under load: no connection refused, every match ends, the old generation drains") {
  GameConfig cfg;  // 5 s matches
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  const pid_t old_master = srv.pid();
  const pid_t old_worker = child_titled(old_master, "skirmish: worker 0");
  REQUIRE(old_worker != 0);

  Loop loop;
  Round r;
  for (int i = 0; i < 32; ++i) {
    r.bots.push_back(std::make_unique<Bot>(loop.get(), "u" + std::to_string(i), true));
    r.bots.back()->matches_wanted = 3;
  }
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  Prober probes(loop, srv.port(), 10);
  // Every bot in its first match, a second into it.
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 30; }); }, 30s));

  const int probes_before = probes.started;
  const auto t0 = std::chrono::steady_clock::now();
  srv.signal(SIGUSR2);
  REQUIRE(loop.run_until([&] { return !srv.running(); }, 40s));  // the old master drained and exited
  const auto drain_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(WIFEXITED(srv.wait_exit(1s)));
  const int probes_during = probes.started - probes_before;
  Adopted next;
  next.pid = new_master_pid(srv);
  REQUIRE(next.pid > 0);
  REQUIRE(next.pid != old_master);
  INFO(srv.log());
  REQUIRE(srv.log().find("upgrade failed") == std::string::npos);
  REQUIRE(srv.log().find("stopped after the upgrade") != std::string::npos);
  REQUIRE(kill(old_worker, 0) != 0);  // the old generation is gone

  // Play on: the second and third matches are on the new generation.
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 3; }); }, 60s));
  // Stopped first, then awaited: run_until's last NOWAIT pass runs timers
  // too, so a prober still ticking could start one more probe after the
  // count settled.
  probes.stop();
  REQUIRE(loop.run_until([&] { return probes.settled(); }, 10s));

  // No connection failed to reach Welcome, before, during or after.
  INFO("probes " << probes.started << " welcomed " << probes.welcomed << " failed " << probes.failed);
  REQUIRE(probes.failed == 0);
  REQUIRE(probes.welcomed == probes.started);
  REQUIRE(probes_during > 10);
  // Every match ended with all its players, and no seat was lost.
  const int handed = check_survived(r, 3);
  REQUIRE(handed > 0);  // sent on from the old generation and resumed

  // The new master serves: workers in the other bank, the segment is its.
  REQUIRE(child_titled(next.pid, "skirmish: worker 2") != 0);
  REQUIRE(child_titled(next.pid, "skirmish: worker 3") != 0);
  REQUIRE(wait_until([&] { return child_titled(next.pid, "skirmish: coordinator") != 0; }, 5s));
  REQUIRE(wait_until([&] { return healthy(srv.admin_port()); }, 5s));
  {
    std::string error;
    auto seg = shm::Segment::open_existing(srv.shm_name(), error);
    REQUIRE(seg);
    REQUIRE(shm::shared_load(seg->header().master_pid) == next.pid);
    REQUIRE(seg->header().worker_bank == 1);
  }
  WARN("upgrade under load: " << probes_during << " connections opened during the switch, " << probes.failed
                              << " refused or failed; old generation drained in " << drain_ms << " ms; "
                              << handed << " bots handed over and resumed");

  // And stops cleanly, removing the segment.
  kill(next.pid, SIGTERM);
  REQUIRE(next.wait_exit(40s));
  REQUIRE(WIFEXITED(next.status));
  REQUIRE(WEXITSTATUS(next.status) == 0);
  REQUIRE(access(("/dev/shm/" + srv.shm_name()).c_str(), F_OK) != 0);
}

TEST_CASE("a failed upgrade leaves the old master serving") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  const std::string good = read_file(cfg.path);
  auto refused = [&](const std::string& config_text, const std::string& reason, int nth) {
    std::ofstream(cfg.path) << config_text;
    srv.signal(SIGUSR2);
    REQUIRE(wait_until([&] {
      size_t n = 0, at = 0;
      while ((at = srv.log().find("upgrade failed", at)) != std::string::npos) ++n, ++at;
      return int(n) == nth;
    }, 15s));
    INFO(srv.log());
    REQUIRE(srv.running());
    // The failed new master is reaped (a zombie still answers kill 0).
    static const std::regex started(R"(SIGUSR2: new master pid (\d+))");
    pid_t failed = 0;
    for (std::sregex_iterator it(srv.log().begin(), srv.log().end(), started), end; it != end; ++it)
      failed = pid_t(std::stoi((*it)[1]));
    REQUIRE(failed > 0);
    REQUIRE(wait_until([&] { return kill(failed, 0) != 0; }, 15s));
    REQUIRE(srv.log().find(reason) != std::string::npos);
    // Still serving: a new player gets Welcome; the spare bank is down again.
    Loop loop;
    Client c(loop.get(), Options{.name = "after"});
    bool welcomed = false;
    c.callbacks().on_welcome = [&](const proto::Welcome&) { welcomed = true; };
    REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return welcomed; }));
    REQUIRE(healthy(srv.admin_port()));
    std::string error;
    auto seg = shm::Segment::open_existing(srv.shm_name(), error);
    REQUIRE(seg);
    REQUIRE(shm::shared_load(seg->header().master_pid) == srv.pid());
    REQUIRE(wait_until([&] {
      for (uint32_t i = seg->bank_base(1); i < seg->bank_base(1) + 2; ++i)
        if (shm::shared_load(seg->process(i).state) != shm::ProcessState::Down) return false;
      return true;
    }, 10s));
  };
  SECTION("a config the new binary rejects") {
    refused(std::regex_replace(good, std::regex("tick_rate_hz = [0-9]+"), "tick_rate_hz = 100000"),
            "exited with status 2", 1);
  }
  SECTION("a config that changes the shared-memory sizes") {
    refused(std::regex_replace(good, std::regex("max_matches = [0-9]+"), "max_matches = 77"),
            "the config changes the shared-memory sizes", 1);
    // The next upgrade with the good config goes through.
    std::ofstream(cfg.path) << good;
    srv.signal(SIGUSR2);
    REQUIRE(srv.wait_log("upgrade: handed over to pid", 15s));
    Adopted next;
    next.pid = new_master_pid(srv);
    REQUIRE(srv.wait_exit(40s) != -1);
    kill(next.pid, SIGTERM);
    REQUIRE(next.wait_exit(40s));
  }
}

TEST_CASE("40 workers across SIGUSR2: matches whose players sit on workers past index 63 get every event") {
  // Two banks of 40: the new generation runs as workers 40..79, so event
  // fan-out must reach indices of 64 and above (a 64-bit mask skipped them:
  // no MatchFound, snapshot or MatchEnd for those players).
  constexpr uint32_t kWorkers = 40;
  GameConfig cfg;  // 5 s matches
  ServerProcess srv({"--workers", std::to_string(kWorkers)}, cfg.path);
  REQUIRE(srv.wait_ready(30s));
  REQUIRE(srv.wait_log("coordinator up", 30s));
  REQUIRE(wait_until([&] { return child_titled(srv.pid(), "skirmish: worker 39") != 0; }, 30s));
  Loop loop;
  // Playing through the switch: handed over (or finishing on the old bank),
  // then a second match on the new one.
  Round through;
  for (int i = 0; i < 8; ++i) {
    through.bots.push_back(std::make_unique<Bot>(loop.get(), "t" + std::to_string(i), true));
    through.bots.back()->matches_wanted = 2;
  }
  for (auto& b : through.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(through, [](const Bot& b) { return b.snapshots >= 10; }); }, 30s));

  srv.signal(SIGUSR2);
  REQUIRE(loop.run_until([&] { return !srv.running(); }, 60s));
  Adopted next;
  next.pid = new_master_pid(srv);
  REQUIRE(next.pid > 0);
  INFO(srv.log());
  REQUIRE(srv.log().find("upgrade failed") == std::string::npos);
  REQUIRE(wait_until([&] { return child_titled(next.pid, "skirmish: coordinator") != 0; }, 10s));
  for (uint32_t w = kWorkers; w < 2 * kWorkers; ++w)
    REQUIRE(wait_until([&] { return child_titled(next.pid, "skirmish: worker " + std::to_string(w)) != 0; }, 10s));

  // One player per new worker; each match a party of two players on
  // workers below 64 and two above, so every match spans the boundary.
  Round r;
  for (uint32_t i = 0; i < kWorkers; ++i) {
    r.bots.push_back(std::make_unique<Bot>(loop.get(), "w" + std::to_string(i)));
    r.bots.back()->queue_on_welcome = false;
  }
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.c->state() == client::State::Ready; }); },
                         20s));
  std::vector<Bot*> low, high;
  for (auto& b : r.bots) {
    REQUIRE(b->c->worker_index() >= kWorkers);  // the new bank
    (b->c->worker_index() < 64 ? low : high).push_back(b.get());
  }
  INFO(low.size() << " players on workers 40..63, " << high.size() << " on 64..79");
  REQUIRE(high.size() >= 2);
  REQUIRE(low.size() >= 2);
  std::sort(high.begin(), high.end(), [](Bot* a, Bot* b) { return a->c->worker_index() < b->c->worker_index(); });
  uint32_t key = 1000;
  auto party = [&](std::initializer_list<Bot*> members) {
    ++key;
    for (Bot* b : members) {
      b->party_key = key;
      b->party_size = 4;
      REQUIRE(b->c->queue_join(0, key, 4) == 0);
    }
  };
  std::vector<Bot*> rest;
  const size_t half = high.size() / 2;
  size_t mixed = 0;
  for (; mixed < half && 2 * mixed + 1 < low.size(); ++mixed)  // two lows, two highs of different workers
    party({low[2 * mixed], low[2 * mixed + 1], high[mixed], high[half + mixed]});
  for (size_t i = 2 * mixed; i < low.size(); ++i) rest.push_back(low[i]);
  for (size_t i = mixed; i < half; ++i) rest.push_back(high[i]);
  for (size_t i = half + mixed; i < high.size(); ++i) rest.push_back(high[i]);
  REQUIRE(mixed >= 1);
  REQUIRE(rest.size() % 4 == 0);
  for (size_t i = 0; i + 3 < rest.size(); i += 4) party({rest[i], rest[i + 1], rest[i + 2], rest[i + 3]});

  const bool ended = loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 40s);
  for (auto& b : r.bots)
    UNSCOPED_INFO("worker " << b->c->worker_index() << " party " << b->party_key << ": found " << b->matches_found
                            << ", snapshots " << b->snapshots << ", ends " << b->match_ends << ", errors "
                            << b->errors.size() << " first " << (b->errors.empty() ? -1 : int(b->errors[0])));
  REQUIRE(ended);
  REQUIRE(loop.run_until([&] { return all(through, [](const Bot& b) { return b.match_ends >= 2; }); }, 40s));
  check_survived(r);
  check_survived(through, 2);
  for (auto& b : r.bots) {
    INFO("player on worker " << b->c->worker_index());
    REQUIRE(b->errors.empty());
    REQUIRE(b->reason != proto::EndReason::Abandoned);
    // Snapshots all through the match, wherever it was ticked.
    REQUIRE(b->final_tick > 0);
    REQUIRE(b->snapshots >= b->final_tick * 9 / 10);
  }
  WARN(mixed << " matches across workers below and above 64, " << r.bots.size() / 4 - mixed << " others");
  kill(next.pid, SIGTERM);
  REQUIRE(next.wait_exit(40s));
}
