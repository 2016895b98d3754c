// Chaos: real processes killed while 64 bots play. Every match must still
// reach MatchEnd with every player in it, every bot that lost its
// connection must resume, and no process may be left stuck on a lock.
//
// Bots resume on their own (client library, Options::reconnect); the
// server's side is resume by token, match adoption by the coordinator, and
// the robust locks' repair steps.
#include <catch2/catch.hpp>

#include <signal.h>

#include <optional>

#include "tests/support/bots.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "tests/support/test_client.h"

using namespace skirmish;
using namespace skirmish::test;

namespace {

const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

// Matches each worker ticks now, read from the live segment.
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

uint32_t busiest(const std::map<uint32_t, int>& owned) {
  uint32_t best = 0;
  int most = -1;
  for (auto [w, n] : owned)
    if (n > most) {
      most = n;
      best = w;
    }
  return best;
}

// The server still answers: a fresh client gets Welcome and Pong, and every
// process is alive (none stuck on a lock would miss its heartbeat).
void check_alive(ServerProcess& srv, Loop& loop) {
  Client c(loop.get(), Options{.name = "after"});
  int pongs = 0;
  c.callbacks().on_welcome = [&](const proto::Welcome&) { c.ping(); };
  c.callbacks().on_pong = [&](uint32_t, uint32_t) { ++pongs; };
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return pongs == 1; }));
  REQUIRE(srv.running());
  REQUIRE(srv.log().find("missed its heartbeat") == std::string::npos);
}

}  // namespace

TEST_CASE("a worker killed with -9 mid-match: its matches are adopted and its players resume") {
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "8"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  for (int i = 0; i < 64; ++i) r.bots.push_back(std::make_unique<Bot>(loop.get(), "c" + std::to_string(i), true));
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 30; }); }, 30s));

  const auto owned = owners(srv.shm_name());
  const uint32_t victim = busiest(owned);
  REQUIRE(owned.at(victim) > 0);
  const pid_t pid = child_titled(srv.pid(), "skirmish: worker " + std::to_string(victim));
  REQUIRE(pid != 0);
  REQUIRE(::kill(pid, SIGKILL) == 0);

  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 40s));
  const int dropped = check_survived(r);
  WARN(dropped << " of " << r.bots.size() << " bots lost their connection and resumed");
  REQUIRE(srv.log().find("adopted by worker") != std::string::npos);
  uint64_t worst_gap = 0;
  for (auto& b : r.bots)
    if (b->drops == 0) worst_gap = std::max(worst_gap, b->max_gap_ms);
  WARN("longest snapshot pause of a bot that kept its connection: " << worst_gap << " ms");
  check_alive(srv, loop);
}

TEST_CASE("battleship: a worker killed with -9 mid-match: its matches are adopted and finish") {
  // The second game through the same machinery: a turn-based module with
  // hidden views is adopted from shared memory like the arena.
  GameConfig cfg({{"module", "\"battleship\""}, {"match_size", "2"}},
                 GameConfig::Params{"board = 10\nturn_ms = 2000\nmax_stalls = 5\nmax_turns = 1000\n"});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  for (int i = 0; i < 32; ++i) r.bots.push_back(std::make_unique<Bot>(loop.get(), "b" + std::to_string(i), true));
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 15; }); }, 30s));
  const auto owned = owners(srv.shm_name());
  const uint32_t victim = busiest(owned);
  REQUIRE(owned.at(victim) > 0);
  const pid_t pid = child_titled(srv.pid(), "skirmish: worker " + std::to_string(victim));
  REQUIRE(pid != 0);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 60s));
  const int dropped = check_survived(r, 1, 2);
  WARN(dropped << " of " << r.bots.size() << " battleship bots lost their connection and resumed");
  for (auto& b : r.bots) REQUIRE(b->reason == proto::EndReason::Completed);
  REQUIRE(srv.log().find("adopted by worker") != std::string::npos);
  check_alive(srv, loop);
}

TEST_CASE("a worker stopped with SIGSTOP is replaced and its matches go on") {
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "8"}, {"heartbeat_timeout_ms", "1000"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  for (int i = 0; i < 32; ++i) r.bots.push_back(std::make_unique<Bot>(loop.get(), "s" + std::to_string(i), true));
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 30; }); }, 30s));
  const uint32_t victim = busiest(owners(srv.shm_name()));
  const pid_t pid = child_titled(srv.pid(), "skirmish: worker " + std::to_string(victim));
  REQUIRE(pid != 0);
  REQUIRE(::kill(pid, SIGSTOP) == 0);
  REQUIRE(srv.wait_log("missed its heartbeat", 10s));
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 40s));
  const int dropped = check_survived(r);
  WARN(dropped << " of " << r.bots.size() << " bots lost their connection and resumed");
}

TEST_CASE("the coordinator killed with -9 mid-matchmaking: every bot is matched exactly once") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  Loop loop;
  Round r;
  for (int i = 0; i < 64; ++i) r.bots.push_back(std::make_unique<Bot>(loop.get(), "m" + std::to_string(i)));
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  // Kill it while the queue fills: some tickets matched, some waiting, a
  // round perhaps half done.
  REQUIRE(loop.run_until([&] { return std::count_if(r.bots.begin(), r.bots.end(), [](auto& b) { return b->matches_found > 0; }) >= 8; }, 20s));
  const pid_t coord = child_titled(srv.pid(), "skirmish: coordinator");
  REQUIRE(coord != 0);
  REQUIRE(::kill(coord, SIGKILL) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 40s));
  std::map<uint32_t, std::set<uint32_t>> seats;
  for (auto& b : r.bots) {
    REQUIRE(b->matches_found == 1);
    REQUIRE(b->errors.empty());
    seats[b->match_id].insert(b->c->player_id());
  }
  for (auto& [id, players] : seats) REQUIRE(players.size() == 4);
  REQUIRE(seats.size() == 16);
  check_alive(srv, loop);
}

TEST_CASE("a MatchEnd still in the write queue of a worker killed with -9 comes again on resume") {
  // Seen in skirmish-bench-chaos: a match ended moments before its
  // players' worker was killed; their MatchEnd was queued, not yet
  // written, and their rows no longer named the match, so the resume
  // found nothing to send. Made deterministic here: one player stops
  // reading (a 2 KiB receive buffer, a 4 KiB send buffer on the server), so
  // its MatchEnd is certainly still queued in the worker when it dies.
  GameConfig cfg(std::map<std::string, std::string>{
      {"time_limit_s", "6"}, {"score_limit", "10000"}, {"socket_send_buffer_bytes", "4096"}});
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("coordinator up"));
  const pid_t worker = child_titled(srv.pid(), "skirmish: worker 0");
  REQUIRE(worker != 0);

  TestClient stalled;
  REQUIRE(stalled.connect(srv.port(), "127.0.0.1", nullptr, 2048));
  REQUIRE(stalled.send_hello("stalled"));
  auto welcome = stalled.recv_type(proto::Message::Welcome);
  REQUIRE(welcome);
  const proto::SessionToken token = *TestClient::envelope(*welcome)->msg_as_Welcome()->token();
  {
    auto& b = stalled.enc.builder();
    REQUIRE(stalled.send_frame(stalled.enc.finish(proto::CreateQueueJoin(b, 0, 0, 1))));
  }
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 3);
  std::optional<std::vector<uint8_t>> found;
  REQUIRE(loop.run_until([&] { return (found = stalled.recv_type(proto::Message::MatchFound, 10ms)).has_value(); },
                         20s));
  const uint32_t match = TestClient::envelope(*found)->msg_as_MatchFound()->match_id();
  // From here `stalled` reads nothing: a whole match of snapshots piles up.
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 30s));
  REQUIRE(r.bots[0]->end_match_id == match);
  std::string error;
  auto seg = shm::Segment::open_existing(srv.shm_name(), error);
  REQUIRE(seg);
  REQUIRE(shm::shared_load(seg->matches().get_wire(match)->state) == shm::MatchState::Ended);

  REQUIRE(::kill(worker, SIGKILL) == 0);
  REQUIRE(wait_until([&] {
    const pid_t now = child_titled(srv.pid(), "skirmish: worker 0");
    return now != 0 && now != worker;
  }, 10s));
  stalled.close();
  // Resume, as a client does after a close without an Error: retried while
  // the server has not yet seen the old connection's end (BadToken).
  TestClient again;
  std::optional<std::vector<uint8_t>> w;
  for (int i = 0; i < 50 && !w; ++i) {
    REQUIRE(again.connect(srv.port()));
    auto& b = again.enc.builder();
    REQUIRE(again.send_frame(again.enc.finish(proto::CreateResume(b, proto::ProtocolVersion::Current, &token))));
    auto m = again.recv(2s);
    REQUIRE(m);
    if (TestClient::envelope(*m)->msg_type() == proto::Message::Welcome) {
      w = m;
      break;
    }
    REQUIRE(TestClient::envelope(*m)->msg_as_Error()->code() == proto::ErrorCode::BadToken);
    loop.run_for(100);
  }
  REQUIRE(w);
  const proto::Welcome* wm = TestClient::envelope(*w)->msg_as_Welcome();
  REQUIRE(wm->resumed());
  REQUIRE(wm->match_id() == 0);  // over while away...
  auto end = again.recv(2s);     // ...so its MatchEnd follows the Welcome
  REQUIRE(end);
  REQUIRE(TestClient::envelope(*end)->msg_type() == proto::Message::MatchEnd);
  const proto::MatchEnd* me = TestClient::envelope(*end)->msg_as_MatchEnd();
  REQUIRE(me->match_id() == match);
  REQUIRE(me->results()->size() == 4);
}
