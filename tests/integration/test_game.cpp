// The game end to end: real skirmish-server processes, real clients (the
// client library) over 127.0.0.1. Players queue, the coordinator forms
// matches, owners tick them, every player gets snapshots and MatchEnd with
// rating changes, wherever the match is ticked.
//
// Every wait is a deadline on a condition; the only timing asserted is the
// snapshot rate over a whole 5 s match (the issue's ±10%), which a tick loop
// that catches up late ticks keeps even on a loaded machine.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "client/games/arena_view.h"
#include "client/lib/skirmish_client.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "tests/support/bots.h"
#include "tests/support/server_process.h"
#include "tests/support/test_client.h"
#include "tests/support/uv_loop.h"

using namespace skirmish;
using namespace skirmish::test;
using client::Client;
using client::Options;
using proto::ErrorCode;

namespace {

const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

// What every finished match must satisfy, whatever the workers.
void check_finished_round(Round& r, size_t match_size) {
  std::map<uint32_t, std::vector<Bot*>> by_match;
  uint64_t full_n = 0, full_bytes = 0, delta_n = 0, delta_bytes = 0;
  double rate_sum = 0;
  for (auto& b : r.bots) {
    INFO("bot player " << b->c->player_id() << ", first error code "
                        << (b->errors.empty() ? 0 : int(b->errors[0])));
    REQUIRE(b->errors.empty());
    REQUIRE(b->match_ends >= 1);
    REQUIRE(b->end_match_id == *b->match_ids.begin());
    REQUIRE((b->reason == proto::EndReason::TimeLimit || b->reason == proto::EndReason::ScoreLimit));
    REQUIRE(b->results.size() == match_size);
    by_match[b->end_match_id].push_back(b.get());
    ++r.per_worker[b->c->worker_index()];
    // Every tick of the match was sent as a snapshot (a late tick is
    // caught up, never skipped); the client saw nearly all of them.
    REQUIRE(b->final_tick > 0);
    REQUIRE(b->snapshots >= b->final_tick * 9 / 10);
    REQUIRE(b->last_tick == b->final_tick);
    // Its inputs were applied.
    REQUIRE(b->last_input_seq_seen > 0);
    REQUIRE(b->last_input_seq_seen <= b->c->last_input_seq());
    // Snapshots at the tick rate, +-10%, over the whole match.
    const double secs = double(b->last_snapshot_ms - b->first_snapshot_ms) / 1000.0;
    REQUIRE(secs > 0);
    const double rate = double(b->snapshots - 1) / secs;
    INFO("snapshot rate " << rate << " Hz over " << secs << " s");
    REQUIRE(rate >= kTickHz * 0.9);
    REQUIRE(rate <= kTickHz * 1.1);
    rate_sum += rate;
    const auto& st = b->c->stats();
    REQUIRE(st.snapshots_missing_base == 0);
    full_n += st.snapshots_full;
    full_bytes += st.snapshot_bytes_full;
    delta_n += st.snapshots_delta;
    delta_bytes += st.snapshot_bytes_delta;
  }
  // Every match has exactly match_size players and they agree on it.
  bool some_rating_moved = false;
  for (auto& [id, bots] : by_match) {
    REQUIRE(bots.size() == match_size);
    std::set<uint8_t> slots;
    for (Bot* b : bots) slots.insert(b->first_slot);
    REQUIRE(slots.size() == match_size);
    for (const Result& res : bots[0]->results) {
      REQUIRE(res.place >= 1);
      REQUIRE(res.place <= match_size);
      if (res.after != res.before) some_rating_moved = true;
    }
  }
  REQUIRE(some_rating_moved);
  // Deltas: most snapshots, and smaller than full ones.
  REQUIRE(full_n >= r.bots.size());
  REQUIRE(delta_n > full_n * 10);
  const double full_avg = double(full_bytes) / double(full_n);
  const double delta_avg = double(delta_bytes) / double(delta_n);
  INFO("full " << full_avg << " B, delta " << delta_avg << " B");
  REQUIRE(delta_avg < full_avg);
  WARN("snapshot bytes: full " << full_avg << ", delta " << delta_avg << "; mean rate "
                               << rate_sum / double(r.bots.size()) << " Hz");
}

// A sample from /metrics (name with its labels, if any), or -1 if it is not
// there.
long metric(uint16_t admin_port, const std::string& name) {
  const std::string body = http_get(admin_port, "/metrics");
  const std::string needle = "\n" + name + " ";
  const size_t at = body.find(needle);
  return at == std::string::npos ? -1 : std::stol(body.substr(at + needle.size()));
}

// A client's close() ends its side at once; the server sees the EOF when
// its worker next reads that socket, and until then the seat is attached
// and a Resume with its token is refused (BadToken). A test that resumes
// right after a close waits for the seat to be free, as a client that
// lost its connection would find it after the server noticed.
bool await_disconnected(uint16_t admin_port, long n) {
  return wait_until([&] { return metric(admin_port, "skirmish_players{state=\"disconnected\"}") == n; }, 10s);
}

}  // namespace

TEST_CASE("64 clients on 2 workers play full matches to MatchEnd and their ratings seed the next match") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 64, /*matches_wanted=*/2);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.matches_found >= 1; }); }, 20s));
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 30s));
  check_finished_round(r, 4);
  // Both workers served clients (the next test has a match across both).
  REQUIRE(r.per_worker.size() == 2);

  // The new rating seeds the next match: MatchFound shows it.
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.matches_found >= 2; }); }, 20s));
  for (auto& b : r.bots) {
    float after = -1;
    for (const Result& res : b->results)
      if (res.player_id == b->c->player_id()) after = res.after;
    REQUIRE(b->found_rating.size() == 2);
    REQUIRE(b->found_rating[1] == after);
    REQUIRE(b->match_ids.size() == 2);  // a new match, not the old one again
  }
}

TEST_CASE("a match on one worker and a match across two workers play the same, on an I/O quantum or not") {
  for (const char* quantum : {"0", "4"})
  for (const char* workers : {"1", "2"}) {
    DYNAMIC_SECTION("workers " << workers << ", io_quantum_ms " << quantum) {
      GameConfig cfg(std::map<std::string, std::string>{{"io_quantum_ms", quantum}});
      ServerProcess srv({"--workers", workers}, cfg.path);
      REQUIRE(srv.wait_ready());
      Loop loop;
      Round r;
      connect_bots(loop, r, srv.port(), 4);
      REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 30s));
      check_finished_round(r, 4);
      // One match of four: with two workers its players sit on both.
      REQUIRE(r.per_worker.size() == size_t(std::stoi(workers)));
    }
  }
}

TEST_CASE("parties are kept together") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  for (int i = 0; i < 8; ++i) r.bots.push_back(std::make_unique<Bot>(loop.get(), "p" + std::to_string(i)));
  // Two parties of two (keys 7 and 9), four solos.
  for (int i : {0, 1}) r.bots[i]->party_key = 7;
  for (int i : {2, 3}) r.bots[i]->party_key = 9;
  for (int i = 0; i < 4; ++i) r.bots[i]->party_size = 2;
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.matches_found >= 1; }); }, 20s));
  REQUIRE(r.bots[0]->match_id == r.bots[1]->match_id);
  REQUIRE(r.bots[2]->match_id == r.bots[3]->match_id);
  std::map<uint32_t, int> sizes;
  for (auto& b : r.bots) ++sizes[b->match_id];
  REQUIRE(sizes.size() == 2);
  for (auto& [id, n] : sizes) REQUIRE(n == 4);
}

TEST_CASE("queue rules: one ticket, leave, status, and refusals that keep the session") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  std::vector<proto::QueueState> states;
  std::vector<ErrorCode> errors;
  Client c(loop.get(), Options{.name = "solo"});
  bool welcomed = false;
  c.callbacks().on_welcome = [&](const proto::Welcome&) { welcomed = true; };
  c.callbacks().on_queue_status = [&](const proto::QueueStatus& s) { states.push_back(s.state()); };
  c.callbacks().on_error = [&](ErrorCode code, std::string_view, bool fatal) {
    REQUIRE_FALSE(fatal);
    errors.push_back(code);
  };
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return welcomed; }));

  REQUIRE(client::arena::send_input(c, 10, 10, 0) == 0);  // not in a match
  REQUIRE(c.queue_join(3) == 0);          // unknown mode
  REQUIRE(c.queue_join(0, 5, 9) == 0);    // party larger than a match
  REQUIRE(loop.run_until([&] { return errors.size() == 3; }));
  REQUIRE(errors == std::vector<ErrorCode>{ErrorCode::NotInMatch, ErrorCode::BadRequest, ErrorCode::BadRequest});

  REQUIRE(c.queue_join() == 0);
  REQUIRE(loop.run_until([&] { return states.size() == 1; }));
  REQUIRE(states[0] == proto::QueueState::Searching);
  REQUIRE(c.queue_join() == 0);  // a second ticket is refused, not made
  REQUIRE(loop.run_until([&] { return errors.size() == 4; }));
  REQUIRE(errors[3] == ErrorCode::AlreadyInQueue);
  REQUIRE(c.queue_status() == 0);
  REQUIRE(loop.run_until([&] { return states.size() == 2; }));
  REQUIRE(states[1] == proto::QueueState::Searching);
  REQUIRE(c.queue_leave() == 0);
  REQUIRE(loop.run_until([&] { return states.size() == 3; }));
  REQUIRE(states[2] == proto::QueueState::Idle);
  REQUIRE(c.queue_leave() == 0);
  REQUIRE(loop.run_until([&] { return errors.size() == 5; }));
  REQUIRE(errors[4] == ErrorCode::NotInQueue);
  REQUIRE(c.state() == client::State::Ready);
}

TEST_CASE("bad inputs in a match are refused without a close") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 4);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 3; }); }, 20s));
  Bot& b = *r.bots[0];
  b.c->callbacks().on_snapshot = nullptr;  // stop steering; send by hand
  REQUIRE(client::arena::send_input(*b.c, 101, 0, 0) == 0);
  REQUIRE(client::arena::send_input(*b.c, 0, -128, 0) == 0);
  REQUIRE(client::arena::send_input(*b.c, 0, 0, 0x80) == 0);
  REQUIRE(loop.run_until([&] { return b.errors.size() == 3; }));
  for (ErrorCode e : b.errors) REQUIRE(e == ErrorCode::BadInput);
  // A good input after them is applied.
  REQUIRE(client::arena::send_input(*b.c, 50, 50, 0) == 0);
  const uint32_t seq = b.c->last_input_seq();
  REQUIRE(loop.run_until([&] { return b.c->world() != nullptr && b.c->world()->last_input_seq == seq; }));
  REQUIRE(b.c->state() == client::State::Ready);
}

TEST_CASE("the coordinator killed with -9 loses no ticket and matches none twice") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  // Three queue: not enough for a match of four.
  connect_bots(loop, r, srv.port(), 3);
  int searching = 0;
  for (auto& b : r.bots)
    b->c->callbacks().on_queue_status = [&](const proto::QueueStatus& s) {
      if (s.state() == proto::QueueState::Searching) ++searching;
    };
  REQUIRE(loop.run_until([&] { return searching == 3; }));
  REQUIRE(srv.wait_log("coordinator up"));  // the tickets sit in its rounds
  pid_t coord = 0;
  REQUIRE(wait_until([&] { return (coord = child_titled(srv.pid(), "skirmish: coordinator")) != 0; }, 5s));
  REQUIRE(::kill(coord, SIGKILL) == 0);
  pid_t fresh = 0;
  REQUIRE(wait_until(
      [&] {
        fresh = child_titled(srv.pid(), "skirmish: coordinator");
        return fresh != 0 && fresh != coord;
      },
      10s));
  // The new one has recovered and is up (its own "coordinator up" line).
  const bool up = wait_until(
      [&] {
        const std::string& log = srv.log();
        return log.find("coordinator up") != log.rfind("coordinator up");
      },
      10s);
  if (!up) FAIL("no second coordinator came up; server log:\n" << srv.log());
  // The fourth joins the new coordinator's queue; all four play together.
  r.bots.push_back(std::make_unique<Bot>(loop.get(), "late"));
  REQUIRE(r.bots.back()->c->connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.matches_found >= 1; }); }, 20s));
  std::set<uint32_t> ids;
  for (auto& b : r.bots) {
    ids.insert(b->match_id);
    REQUIRE(b->matches_found == 1);
  }
  REQUIRE(ids.size() == 1);
  loop.run_for(300);  // a second MatchFound would arrive by now
  for (auto& b : r.bots) REQUIRE(b->matches_found == 1);
}

TEST_CASE("a dropped player's ticket waits out the resume grace, then is cancelled") {
  GameConfig cfg(std::map<std::string, std::string>{{"resume_grace_ms", "1000"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  uint32_t queued = UINT32_MAX;
  int statuses = 0;
  Client watcher(loop.get(), Options{.name = "watcher"});
  watcher.callbacks().on_queue_status = [&](const proto::QueueStatus& s) {
    REQUIRE(s.state() == proto::QueueState::Idle);
    queued = s.queued_players();
    ++statuses;
  };
  Client leaver(loop.get(), Options{.name = "leaver"});
  bool searching = false;
  leaver.callbacks().on_welcome = [&](const proto::Welcome&) { leaver.queue_join(); };
  leaver.callbacks().on_queue_status = [&](const proto::QueueStatus& s) {
    searching = s.state() == proto::QueueState::Searching;
  };
  REQUIRE(watcher.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(leaver.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return searching && watcher.state() == client::State::Ready; }));
  auto ask = [&] {
    const int before = statuses;
    REQUIRE(watcher.queue_status() == 0);
    REQUIRE(loop.run_until([&] { return statuses > before; }));
    return queued;
  };
  REQUIRE(ask() == 1);
  const auto dropped_at = std::chrono::steady_clock::now();
  leaver.close();
  REQUIRE(loop.run_until([&] { return leaver.state() == client::State::Closed; }));
  // Still queued inside the grace (the seat could come back)...
  if (std::chrono::steady_clock::now() - dropped_at < 500ms) REQUIRE(ask() == 1);
  // ...gone after it.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {  // polled every 50 ms, 10 s at most
    gone = ask() == 0;
    if (!gone) loop.run_for(50);
  }
  REQUIRE(gone);
  REQUIRE(std::chrono::steady_clock::now() - dropped_at >= 900ms);
}

TEST_CASE("resume: the seat, the match and a full snapshot come back, and bad tokens are refused") {
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "30"}, {"resume_grace_ms", "2000"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 4);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 5; }); }, 20s));
  Bot& b = *r.bots[0];
  const client::Token token = b.c->token();
  const uint32_t id = b.c->player_id();
  const uint32_t match = b.match_id;
  b.c->close();
  REQUIRE(loop.run_until([&] { return b.c->state() == client::State::Closed; }));
  REQUIRE(await_disconnected(srv.admin_port(), 1));

  auto resume_with = [&](const client::Token& t, bool* welcomed, ErrorCode* error, std::unique_ptr<Client>& c) {
    c = std::make_unique<Client>(loop.get(), Options{.name = "again", .auto_hello = false});
    c->set_token(t);
    c->callbacks().on_connected = [&c](int) { c->resume(); };
    c->callbacks().on_welcome = [=](const proto::Welcome& w) {
      *welcomed = true;
      REQUIRE(w.resumed());
      REQUIRE(w.player_id() == id);
      REQUIRE(w.match_id() == match);
    };
    c->callbacks().on_error = [=](ErrorCode e, std::string_view, bool fatal) {
      REQUIRE(fatal);
      *error = e;
    };
    REQUIRE(c->connect("127.0.0.1", srv.port()) == 0);
  };
  // A wrong secret with the right row is refused like an unknown token.
  client::Token wrong = token;
  wrong[3] ^= 1;
  bool welcomed = false;
  ErrorCode error = ErrorCode::None;
  std::unique_ptr<Client> c;
  resume_with(wrong, &welcomed, &error, c);
  REQUIRE(loop.run_until([&] { return c->state() == client::State::Closed; }));
  REQUIRE(error == ErrorCode::BadToken);
  REQUIRE_FALSE(welcomed);

  // The right token: Welcome(resumed), MatchFound for the same match, then
  // a full snapshot, and inputs apply again.
  int found = 0;
  uint64_t fulls = 0;
  error = ErrorCode::None;
  resume_with(token, &welcomed, &error, c);
  c->callbacks().on_match_found = [&](const proto::MatchFound& m) {
    REQUIRE(m.match_id() == match);
    ++found;
  };
  c->callbacks().on_snapshot = [&](const client::World&) { fulls = c->stats().snapshots_full; };
  REQUIRE(loop.run_until([&] { return welcomed && found == 1 && fulls >= 1; }));
  REQUIRE(error == ErrorCode::None);
  REQUIRE(client::arena::send_input(*c, 100, 0, 0) == 0);
  const uint32_t seq = c->last_input_seq();
  REQUIRE(loop.run_until([&] { return c->world() != nullptr && c->world()->last_input_seq == seq; }));

  // The same token again while attached: refused.
  bool welcomed2 = false;
  ErrorCode error2 = ErrorCode::None;
  std::unique_ptr<Client> c2;
  resume_with(token, &welcomed2, &error2, c2);
  REQUIRE(loop.run_until([&] { return c2->state() == client::State::Closed; }));
  REQUIRE(error2 == ErrorCode::BadToken);

  // Dropped past the grace: the token has expired.
  c->close();
  REQUIRE(loop.run_until([&] { return c->state() == client::State::Closed; }));
  const auto dropped = std::chrono::steady_clock::now();
  loop.run_for(3000);  // past resume_grace_ms (2 s) and a coordinator sweep
  REQUIRE(std::chrono::steady_clock::now() - dropped >= 2s);
  welcomed2 = false;
  error2 = ErrorCode::None;
  resume_with(token, &welcomed2, &error2, c2);
  REQUIRE(loop.run_until([&] { return c2->state() == client::State::Closed; }));
  REQUIRE(error2 == ErrorCode::BadToken);
  REQUIRE_FALSE(welcomed2);
}

// A raw client, so the test chooses every ack: after a resume the first
// Snapshot is full, and a delta never names a base older than it, even when
// the client acks a world it still holds from the dropped connection (the
// base the server must not use: it was never sent on this connection) or a
// tick it never got. Fails before the fix: the resumed session took any ack
// up to the newest tick sent and got deltas against bases 1 to 4 ticks
// older than its full snapshot.
TEST_CASE("after a resume, deltas are against bases sent on the new connection only") {
  GameConfig cfg(std::map<std::string, std::string>{
      {"match_size", "2"}, {"time_limit_s", "30"}, {"resume_grace_ms", "5000"}});
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  using proto::Message;
  auto welcome_of = [](TestClient& c) {
    auto body = c.recv_type(Message::Welcome);
    REQUIRE(body);
    const auto* w = TestClient::envelope(*body)->msg_as_Welcome();
    REQUIRE(w != nullptr);
    return std::make_tuple(*w->token(), w->last_input_seq(), w->resumed());
  };
  auto join = [](TestClient& c) {
    auto& b = c.enc.builder();
    REQUIRE(c.send_frame(c.enc.finish(proto::CreateQueueJoin(b, 0, 0, 1))));
  };
  // Reads the next Snapshot: (tick, base_tick).
  auto snapshot = [](TestClient& c) {
    auto body = c.recv_type(Message::Snapshot);
    REQUIRE(body);
    const auto* s = TestClient::envelope(*body)->msg_as_Snapshot();
    return std::make_pair(s->tick(), s->base_tick());
  };
  uint32_t seq = 0;
  auto input = [&seq](TestClient& c, uint32_t ack) {
    auto& b = c.enc.builder();
    ++seq;
    const std::vector<uint8_t> still = {0, 0, 0};  // an arena input: stand still
    REQUIRE(c.send_frame(c.enc.finish(proto::CreateInputDirect(b, seq, seq, ack, &still))));
  };

  TestClient a, other;
  REQUIRE(a.connect(srv.port()));
  REQUIRE(other.connect(srv.port()));
  REQUIRE(a.send_hello("a"));
  REQUIRE(other.send_hello("b"));
  const auto [token, seq0, resumed0] = welcome_of(a);
  (void)seq0;
  REQUIRE_FALSE(resumed0);
  welcome_of(other);
  join(a);
  join(other);
  REQUIRE(a.recv_type(Message::MatchFound, std::chrono::seconds(10)));
  // Play a little as a client does: ack each snapshot, so deltas flow.
  uint32_t last = 0;
  int deltas = 0;
  for (int i = 0; i < 20; ++i) {
    const auto [tick, base] = snapshot(a);
    last = tick;
    deltas += base != 0;
    input(a, tick);
  }
  REQUIRE(deltas > 0);
  a.close();
  REQUIRE(await_disconnected(srv.admin_port(), 1));

  TestClient r;
  REQUIRE(r.connect(srv.port()));
  {
    auto& b = r.enc.builder();
    REQUIRE(r.send_frame(r.enc.finish(proto::CreateResume(b, proto::ProtocolVersion::Current, &token, last))));
  }
  const auto [token2, last_seq, resumed] = welcome_of(r);
  (void)token2;
  REQUIRE(resumed);
  seq = std::max(seq, last_seq);
  REQUIRE(r.recv_type(Message::MatchFound));
  const auto [first, first_base] = snapshot(r);
  REQUIRE(first_base == 0);  // full after the resume
  REQUIRE(first > last);
  // Acks of worlds this connection never got: the one the client kept
  // from before the drop, and the tick just before the full snapshot.
  input(r, last);
  input(r, first - 1);
  for (int i = 0; i < 15; ++i) {
    const auto [tick, base] = snapshot(r);
    INFO("tick " << tick << " base " << base << ", full snapshot at " << first << ", pre-drop tick " << last);
    REQUIRE((base == 0 || base >= first));
  }
  // A proper ack brings deltas back, against bases of this connection.
  int resumed_deltas = 0;
  for (int i = 0; i < 20; ++i) {
    const auto [tick, base] = snapshot(r);
    INFO("tick " << tick << " base " << base << ", full snapshot at " << first);
    REQUIRE((base == 0 || base >= first));
    resumed_deltas += base != 0;
    input(r, tick);
  }
  REQUIRE(resumed_deltas > 0);
}

TEST_CASE("automatic resume gives up after its tries when the server is gone") {
  GameConfig cfg;
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Options o{.name = "stubborn"};
  o.reconnect = {.enabled = true, .max_tries = 3, .max_ms = 10000, .initial_delay_ms = 20, .max_delay_ms = 100};
  Client c(loop.get(), o);
  bool welcomed = false;
  int closed = 0, reason = 0;
  std::vector<uint32_t> attempts;
  c.callbacks().on_welcome = [&](const proto::Welcome&) { welcomed = true; };
  c.callbacks().on_reconnecting = [&](uint32_t attempt, uint32_t delay_ms, int) {
    attempts.push_back(attempt);
    REQUIRE(delay_ms <= 150);  // the cap with +50 % jitter
  };
  c.callbacks().on_closed = [&](int r) {
    ++closed;
    reason = r;
  };
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return welcomed; }));
  srv.signal(SIGKILL);  // the master; its children follow it
  REQUIRE(srv.wait_exit() != -1);
  REQUIRE(loop.run_until([&] { return closed == 1; }, 15s));
  REQUIRE(attempts == std::vector<uint32_t>{1, 2, 3});
  REQUIRE(reason != 0);
  REQUIRE(c.stats().reconnect_attempts == 3);
  REQUIRE(c.stats().reconnect_give_ups == 1);
  loop.run_for(200);
  REQUIRE(closed == 1);
}

TEST_CASE("a match every player has left for good ends at once as Abandoned, with no rating change") {
  // A long match and a short grace: without the fix it ticks on to its
  // 60 s time limit for nobody.
  constexpr int64_t kGraceMs = 1000;
  GameConfig cfg(std::map<std::string, std::string>{{"time_limit_s", "60"},
                                                    {"resume_grace_ms", std::to_string(kGraceMs)}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 4);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.snapshots >= 5; }); }, 20s));
  const uint32_t match = r.bots[0]->match_id;
  for (auto& b : r.bots) REQUIRE(b->match_id == match);
  REQUIRE(wait_until([&] { return metric(srv.admin_port(), "skirmish_matches_active") == 1; }, 5s));
  std::string error;
  auto seg = shm::Segment::open_existing(srv.shm_name(), error);
  REQUIRE(seg);
  const shm::MatchRow* row = seg->matches().get_wire(match);
  REQUIRE(row != nullptr);
  float before[4];
  for (int i = 0; i < 4; ++i) before[i] = row->results[i].rating_before;
  auto state = [&] { return shm::shared_load(row->state); };
  // Seat `i`'s player is in the grace: when did the server see it leave?
  auto disconnected_at = [&](int i) -> int64_t {
    const shm::PlayerRow* p = seg->players().get_wire(row->players[i]);
    return p != nullptr && shm::shared_load(p->state) == shm::PlayerState::Disconnected
               ? shm::shared_load(p->disconnected_at_ms)
               : 0;
  };
  // The bot in seat `i`.
  auto in_seat = [&](int i) -> Bot& {
    for (auto& b : r.bots)
      if (b->slot == i) return *b;
    FAIL("no bot in seat " << i);
    return *r.bots[0];
  };

  // Three leave: the fourth still plays, past their grace.
  for (int i = 0; i < 3; ++i) in_seat(i).c->close();
  REQUIRE(wait_until([&] { return disconnected_at(0) && disconnected_at(1) && disconnected_at(2); }, 5s));
  const uint32_t snaps = in_seat(3).snapshots;
  loop.run_for(int(kGraceMs) + 500);
  REQUIRE(state() == shm::MatchState::Running);
  REQUIRE(in_seat(3).snapshots > snaps + 20);
  REQUIRE(in_seat(3).match_ends == 0);

  // The last one leaves and never comes back: the match ends once its grace
  // is over, a tick or two later (some slack for a loaded machine).
  in_seat(3).c->close();
  int64_t left_ms = 0;
  REQUIRE(wait_until([&] { return (left_ms = disconnected_at(3)) != 0; }, 5s));
  REQUIRE(wait_until([&] { return metric(srv.admin_port(), "skirmish_matches_active") == 0; },
                     std::chrono::milliseconds(kGraceMs + 3000)));
  REQUIRE(state() == shm::MatchState::Ended);
  const int64_t ended_after = shm::shared_load(row->ended_at_ms) - left_ms;
  INFO("ended " << ended_after << " ms after the last player left");
  REQUIRE(ended_after >= kGraceMs);
  REQUIRE(ended_after <= kGraceMs + 2 * 1000 / kTickHz + 200);
  REQUIRE(row->end_reason == uint32_t(proto::EndReason::Abandoned) + 1);
  REQUIRE(row->tick < 60 * kTickHz);
  for (int i = 0; i < 4; ++i) REQUIRE(row->results[i].rating_after == row->results[i].rating_before);
  for (int i = 0; i < 4; ++i) REQUIRE(row->results[i].rating_before == before[i]);
  // The server still plays: four new players get a whole match.
  Round next;
  connect_bots(loop, next, srv.port(), 4);
  REQUIRE(loop.run_until([&] { return all(next, [](const Bot& b) { return b.matches_found >= 1; }); }, 20s));
}
