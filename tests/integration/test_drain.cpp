// The drain (SIGTERM) with real players: the matches in progress finish,
// everybody else is told at once, and the server exits 0. Real server
// processes, the client library's bots over 127.0.0.1, real signals and a
// real kill -9.
//
// What a drain promises (protocol/PROTOCOL.md, "Shutdown"):
//   - the master stops accepting and /readyz answers 503 at once;
//   - a session not in a match gets ServerShutdown and is closed; a Waiting
//     ticket is cancelled first with Error(ShuttingDown); QueueJoin is
//     answered Error(ShuttingDown);
//   - a seated player plays on (ticks and snapshots go on) and gets its
//     MatchEnd, then ServerShutdown, then the close;
//   - a match still running at timeouts.drain_timeout_ms ends with
//     EndReason::ShutdownDeadline: results, no rating change;
//   - a second SIGTERM or SIGINT stops at once;
//   - a worker that dies during the drain is not respawned; its matches are
//     adopted by a surviving worker, whose players still finish them.
//
// The 1,000-bot run is the hidden case "[drain1000]": ctest runs it on the
// optimized build (tests/CMakeLists.txt); scripts/bench-drain.sh runs it at
// any size and prints its figures.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <set>

#include "tests/support/bots.h"
#include "tests/support/test_client.h"

using namespace skirmish;
using namespace skirmish::test;
using proto::EndReason;
using proto::Message;

namespace {

const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

using Clock = std::chrono::steady_clock;

double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What each bot saw of the end, beside what Bot records.
struct Seen {
  int shutdowns = 0;
  int match_ends_at_shutdown = -1;  // Bot::match_ends when ServerShutdown came
  bool closed = false;
  uint32_t snapshots_at_term = 0;
};

// Bots, their watchers, and the loop they run on.
struct Players {
  Loop loop;
  Round r;
  std::vector<Seen> seen;

  void connect(uint16_t port, int n) {
    connect_bots(loop, r, port, n);
    seen.resize(r.bots.size());
    for (size_t i = 0; i < r.bots.size(); ++i) {
      Bot* b = r.bots[i].get();
      Seen* s = &seen[i];
      b->c->callbacks().on_server_shutdown = [b, s](const proto::ServerShutdown&) {
        if (s->shutdowns++ == 0) s->match_ends_at_shutdown = b->match_ends;
      };
      b->c->callbacks().on_closed = [s](int) { s->closed = true; };
    }
  }
  bool all_seated(std::chrono::milliseconds timeout) {
    return loop.run_until([&] { return all(r, [](const Bot& b) { return b.matches_found >= 1; }); }, timeout);
  }
  void mark_term() {
    for (size_t i = 0; i < r.bots.size(); ++i) seen[i].snapshots_at_term = r.bots[i]->snapshots;
  }
  bool all_closed(std::chrono::milliseconds timeout) {
    return loop.run_until(
        [&] { return std::all_of(seen.begin(), seen.end(), [](const Seen& s) { return s.closed; }); }, timeout);
  }
};

bool readyz_503(uint16_t admin_port) {
  return http_get(admin_port, "/readyz").rfind("HTTP/1.1 503", 0) == 0;
}

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

long exited_zero(ServerProcess& srv) {
  static const std::regex exited(R"((worker \d+|coordinator) \(pid \d+\) exited with status 0)");
  const std::string& log = srv.log();
  return std::distance(std::sregex_iterator(log.begin(), log.end(), exited), std::sregex_iterator());
}

// A raw client that queues alone (no match can form for it).
void queue_alone(TestClient& c, uint16_t port) {
  REQUIRE(c.connect(port));
  REQUIRE(c.send_hello("alone"));
  REQUIRE(c.recv_type(Message::Welcome));
  auto& b = c.enc.builder();
  REQUIRE(c.send_frame(c.enc.finish(proto::CreateQueueJoin(b, 0, 0, 1))));
  auto st = c.recv_type(Message::QueueStatus);
  REQUIRE(st);
  REQUIRE(TestClient::envelope(*st)->msg_as_QueueStatus()->state() == proto::QueueState::Searching);
}

// Figures of one drain: how many matches the bots were in and how many of
// them every seated player saw end with `want` (then ServerShutdown).
struct DrainFigures {
  size_t matches = 0;
  size_t finished = 0;
  int bots_without_match_end = 0;
  int bots_without_shutdown_after_end = 0;
  int bots_without_snapshots_after_term = 0;
  double term_to_last_close_s = 0;
};

DrainFigures figures(Players& p, const std::set<EndReason>& want) {
  DrainFigures f;
  std::map<uint32_t, int> ended_ok;  // match -> players who saw it end as wanted
  std::set<uint32_t> matches;
  for (size_t i = 0; i < p.r.bots.size(); ++i) {
    const Bot& b = *p.r.bots[i];
    const Seen& s = p.seen[i];
    if (b.matches_found > 0) matches.insert(*b.match_ids.begin());
    if (b.match_ends < 1) {
      ++f.bots_without_match_end;
      continue;
    }
    if (s.shutdowns != 1 || s.match_ends_at_shutdown != 1) ++f.bots_without_shutdown_after_end;
    if (b.snapshots <= s.snapshots_at_term) ++f.bots_without_snapshots_after_term;
    if (want.count(b.reason) && b.results.size() == 4 && b.end_match_id == *b.match_ids.begin())
      ++ended_ok[b.end_match_id];
  }
  f.matches = matches.size();
  for (auto& [id, n] : ended_ok) f.finished += n == 4 ? 1 : 0;
  return f;
}

}  // namespace

TEST_CASE("SIGTERM lets the matches in progress finish: MatchEnd, then ServerShutdown, and the rest are told at once") {
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "8"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));

  Players p;
  p.connect(srv.port(), 8);
  REQUIRE(p.all_seated(20s));
  TestClient alone;  // queued after the 8 are seated: waits alone
  queue_alone(alone, srv.port());
  p.loop.run_for(3000);  // 3 s into the 8 s matches

  p.mark_term();
  const auto term = Clock::now();
  srv.signal(SIGTERM);
  // Not ready at once, and nothing accepts.
  REQUIRE(wait_until([&] { return readyz_503(srv.admin_port()); }, 1s));
  REQUIRE(wait_until(
      [&] {
        TestClient probe;
        return !probe.connect(srv.port());
      },
      1s));
  // Still alive, though: a liveness probe that failed here would have the
  // orchestrator kill the pod in the middle of the matches it is finishing.
  CHECK(http_get(srv.admin_port(), "/healthz").rfind("HTTP/1.1 200", 0) == 0);
  // The queued ticket is cancelled with ShuttingDown, then the session is told and closed.
  auto err = alone.recv_type(Message::Error);
  REQUIRE(err);
  REQUIRE(TestClient::envelope(*err)->msg_as_Error()->code() == proto::ErrorCode::ShuttingDown);
  REQUIRE(alone.recv_type(Message::ServerShutdown));
  REQUIRE(alone.wait_closed());
  REQUIRE(secs_since(term) < 2.0);  // promptly, not at the end of the drain

  // A seated player that asks to queue is told ShuttingDown and plays on.
  Bot& asker = *p.r.bots[0];
  REQUIRE(asker.c->queue_join() == 0);
  REQUIRE(p.loop.run_until([&] { return !asker.errors.empty(); }, 5s));
  REQUIRE(asker.errors == std::vector<ErrorCode>{ErrorCode::ShuttingDown});

  REQUIRE(p.all_closed(15s));
  for (size_t i = 0; i < p.r.bots.size(); ++i) {
    const Bot& b = *p.r.bots[i];
    INFO("bot " << i << " on worker " << b.c->worker_index());
    REQUIRE(b.match_ends == 1);
    REQUIRE((b.reason == EndReason::TimeLimit || b.reason == EndReason::ScoreLimit));
    REQUIRE(b.results.size() == 4);
    REQUIRE(b.last_tick == b.final_tick);                   // ticked to its end
    REQUIRE(b.snapshots > p.seen[i].snapshots_at_term + 60);  // ~5 s of snapshots after SIGTERM
    REQUIRE(p.seen[i].shutdowns == 1);
    REQUIRE(p.seen[i].match_ends_at_shutdown == 1);  // ServerShutdown after MatchEnd
    if (i != 0) REQUIRE(b.errors.empty());
  }
  const DrainFigures f = figures(p, {EndReason::TimeLimit, EndReason::ScoreLimit});
  REQUIRE(f.matches == 2);
  REQUIRE(f.finished == 2);
  // Rated as usual.
  bool moved = false;
  for (const auto& res : p.r.bots[0]->results) moved |= res.before != res.after;
  REQUIRE(moved);

  const int status = srv.wait_exit(10s);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(exited_zero(srv) == 3);
  REQUIRE(srv.log().find("still running after the drain") == std::string::npos);
}

TEST_CASE("a match still running at drain_timeout_ms ends with ShutdownDeadline, results and no rating change") {
  GameConfig cfg({{"time_limit_s", "30"}, {"drain_timeout_ms", "2000"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  Players p;
  p.connect(srv.port(), 8);
  REQUIRE(p.all_seated(20s));
  p.loop.run_for(1000);

  p.mark_term();
  const auto term = Clock::now();
  srv.signal(SIGTERM);
  REQUIRE(p.loop.run_until([&] { return all(p.r, [](const Bot& b) { return b.match_ends >= 1; }); }, 10s));
  const double ended_after = secs_since(term);
  INFO("MatchEnd " << ended_after << " s after SIGTERM");
  REQUIRE(ended_after >= 1.8);
  REQUIRE(ended_after < 4.0);
  REQUIRE(p.all_closed(5s));
  for (size_t i = 0; i < p.r.bots.size(); ++i) {
    const Bot& b = *p.r.bots[i];
    INFO("bot " << i);
    REQUIRE(b.match_ends == 1);
    REQUIRE(b.reason == EndReason::ShutdownDeadline);
    REQUIRE(b.results.size() == 4);
    std::set<uint8_t> places;
    for (const auto& res : b.results) {
      REQUIRE(res.before == res.after);  // no rating change
      REQUIRE(res.place >= 1);
      places.insert(res.place);
    }
    REQUIRE(places.count(1) == 1);
    REQUIRE(b.snapshots > p.seen[i].snapshots_at_term + 30);  // ticked through the drain
    REQUIRE(p.seen[i].match_ends_at_shutdown == 1);
    REQUIRE(b.errors.empty());
  }
  const int status = srv.wait_exit(10s);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(exited_zero(srv) == 3);
  REQUIRE(srv.log().find("still running after the drain") == std::string::npos);
  REQUIRE(srv.log().find("matches ended unfinished, no rating change") != std::string::npos);
}

TEST_CASE("a second SIGTERM or SIGINT during the drain stops at once") {
  const int second = GENERATE(SIGTERM, SIGINT);
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "30"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  Players p;
  p.connect(srv.port(), 8);
  REQUIRE(p.all_seated(20s));
  p.loop.run_for(500);
  srv.signal(SIGTERM);
  REQUIRE(wait_until([&] { return readyz_503(srv.admin_port()); }, 2s));
  // The drain holds: a second later the matches still tick.
  p.mark_term();
  p.loop.run_for(1000);
  REQUIRE(srv.running());
  for (size_t i = 0; i < p.r.bots.size(); ++i) REQUIRE(p.r.bots[i]->snapshots > p.seen[i].snapshots_at_term);

  const auto t = Clock::now();
  srv.signal(second);
  REQUIRE(srv.wait_exit(3s) != -1);
  REQUIRE(secs_since(t) < 2.0);
  REQUIRE(p.all_closed(5s));
  for (auto& b : p.r.bots) REQUIRE(b->match_ends == 0);
}

TEST_CASE("during a drain a match whose players have all gone ends at once as Abandoned") {
  // Nothing listens during a drain, so a player who drops cannot come back:
  // waiting out resume_grace_ms (or drain_timeout_ms) for it holds the pod
  // for nobody. Before this, the server stayed for the whole drain.
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "60"}, {"drain_timeout_ms", "30000"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  Players p;
  p.connect(srv.port(), 8);
  REQUIRE(p.all_seated(20s));
  p.loop.run_for(500);
  srv.signal(SIGTERM);
  REQUIRE(wait_until([&] { return readyz_503(srv.admin_port()); }, 2s));
  const auto t = Clock::now();
  p.r.bots.clear();  // every player leaves
  p.loop.run_for(100);
  const int status = srv.wait_exit(10s);
  REQUIRE(status != -1);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(secs_since(t) < 5.0);
  REQUIRE(srv.log().find("still running after the drain") == std::string::npos);
}

TEST_CASE("a worker killed during the drain is not respawned, and its matches end for the players elsewhere") {
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "8"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("worker 1 up"));
  REQUIRE(srv.wait_log("coordinator up"));
  Players p;
  p.connect(srv.port(), 8);
  REQUIRE(p.all_seated(20s));
  p.loop.run_for(2000);
  const pid_t w0 = child_titled(srv.pid(), "skirmish: worker 0");
  REQUIRE(w0 > 0);
  srv.signal(SIGTERM);
  REQUIRE(wait_until([&] { return readyz_503(srv.admin_port()); }, 2s));
  REQUIRE(kill(w0, SIGKILL) == 0);
  REQUIRE(srv.wait_log("worker 0 (pid " + std::to_string(w0) + ") killed"));

  REQUIRE(p.all_closed(15s));
  int on_survivor = 0;
  for (auto& b : p.r.bots) {
    if (b->c->worker_index() != 1) continue;  // its connection died with worker 0
    ++on_survivor;
    INFO("bot " << b->c->player_id() << " in match " << b->match_id);
    REQUIRE(b->match_ends == 1);
    REQUIRE((b->reason == EndReason::TimeLimit || b->reason == EndReason::ScoreLimit));
  }
  REQUIRE(on_survivor >= 2);
  const int status = srv.wait_exit(10s);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const std::string& log = srv.log();
  REQUIRE(count_of(log, "info: worker 0 up") == 1);  // never respawned
}

// The 1,000-bot drain (about 10 s, both cores busy): hidden from
// catch_discover_tests, registered by hand for the optimized build only;
// scripts/bench-drain.sh runs it and prints these figures.
TEST_CASE("1,000 bots: SIGTERM mid-match, every match finishes", "[.][drain1000]") {
  const char* env = std::getenv("SKIRMISH_DRAIN_BOTS");
  const int n = env != nullptr ? std::atoi(env) : 1000;
  REQUIRE(n >= 8);
  GameConfig cfg({{"time_limit_s", "8"}, {"max_wait_ms", "500"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  Players p;
  const auto start = Clock::now();
  p.connect(srv.port(), n);
  const bool seated = p.all_seated(60s);
  const double seat_s = secs_since(start);
  p.loop.run_for(3000);
  p.mark_term();
  const auto term = Clock::now();
  srv.signal(SIGTERM);
  const bool ready_503 = wait_until([&] { return readyz_503(srv.admin_port()); }, 1s);
  const bool closed = p.all_closed(30s);
  const double close_s = secs_since(term);
  const int status = srv.wait_exit(15s);
  const double exit_s = secs_since(term);
  DrainFigures f = figures(p, {EndReason::TimeLimit, EndReason::ScoreLimit});
  std::printf("drain of %d bots (2 workers, 4-player matches of 8 s, SIGTERM 3 s after all were seated):\n"
              "  seated in %.1f s; /readyz 503 after SIGTERM: %s\n"
              "  matches finished during the drain: %zu of %zu\n"
              "  bots without MatchEnd: %d; without ServerShutdown after it: %d; without snapshots after SIGTERM: %d\n"
              "  last close %.1f s and server exit %.1f s after SIGTERM (status %d)\n",
              n, seat_s, ready_503 ? "yes" : "no", f.finished, f.matches, f.bots_without_match_end,
              f.bots_without_shutdown_after_end, f.bots_without_snapshots_after_term, close_s, exit_s,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  std::fflush(stdout);
  REQUIRE(seated);
  REQUIRE(ready_503);
  REQUIRE(closed);
  REQUIRE(f.matches == size_t(n / 4));
  REQUIRE(f.finished == f.matches);
  REQUIRE(f.bots_without_match_end == 0);
  REQUIRE(f.bots_without_shutdown_after_end == 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}
