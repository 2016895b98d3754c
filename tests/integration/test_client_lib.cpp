// skirmish_client (client/lib) against the real server, against a scripted
// fake server on a plain socket (snapshots, garbage, a peer that never
// reads), and its snapshot reconstruction on its own.
//
// Every test runs a libuv loop in the test thread with a deadline; nothing
// sleeps for a fixed time.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "tests/support/server_process.h"
#include "client/lib/skirmish_client.h"
#include "client/games/arena_view.h"
#include "protocol/view_delta.h"
#include "tests/support/uv_loop.h"

using namespace skirmish;
using namespace skirmish::test;
using client::Client;
using client::Options;
using client::State;
using proto::ErrorCode;

namespace {

// The library's contract: the process ignores SIGPIPE.
const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

bool token_nonzero(const client::Token& t) { return (t[0] | t[1] | t[2] | t[3]) != 0; }

// A port nobody listens on (bound, read back, closed).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A scripted server on plain blocking sockets: the test writes exactly the
// frames it wants and reads what the client sent. The kernel completes the
// TCP handshake from the backlog, so the client connects before accept().
class FakeServer {
 public:
  explicit FakeServer(int rcvbuf = 0) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 8);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~FakeServer() {
    if (fd_ >= 0) ::close(fd_);
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }

  bool accept_one() {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    return fd_ >= 0;
  }
  bool send(std::span<const uint8_t> bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += size_t(n);
    }
    return true;
  }
  void close_conn() {
    ::close(fd_);
    fd_ = -1;
  }
  // Reads until `count` frames arrived (bodies copied) or the deadline.
  std::vector<std::vector<uint8_t>> recv_frames(size_t count, int timeout_ms = 5000) {
    std::vector<std::vector<uint8_t>> out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (out.size() < count) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, int(left.count())) != 1) break;
      alignas(8) uint8_t buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      dec_.feed(buf, size_t(n), [&](const proto::Frame& f) {
        out.emplace_back(f.body.begin(), f.body.end());
        return true;
      });
    }
    return out;
  }
  proto::FrameEncoder enc;

 private:
  int listen_fd_ = -1;
  int fd_ = -1;
  uint16_t port_ = 0;
  proto::FrameDecoder dec_{proto::DecodeLimits{.max_frame_bytes = 1 << 16}};
};

const proto::Envelope* env(const std::vector<uint8_t>& body) { return proto::GetEnvelope(body.data()); }

using Bytes = std::vector<uint8_t>;

// The generic delta from `base` to `cur`, as the server would send it.
Bytes delta(const Bytes& base, const Bytes& cur) {
  Bytes out(proto::delta_bound(cur.size()));
  const size_t n = proto::encode_delta(base.data(), base.size(), cur.data(), cur.size(), out.data(), out.size());
  REQUIRE(n > 0);
  out.resize(n);
  return out;
}

// One Snapshot as a stand-alone flatbuffer (root Snapshot), for the
// reconstruction tests: `payload` is the view (base 0) or a delta.
struct SnapMsg {
  flatbuffers::FlatBufferBuilder b;
  SnapMsg(uint32_t match, uint32_t tick, uint32_t base, const Bytes& payload, uint32_t last_seq = 0) {
    b.Finish(proto::CreateSnapshotDirect(b, match, tick, base, last_seq, &payload));
  }
  const proto::Snapshot& get() const { return *flatbuffers::GetRoot<proto::Snapshot>(b.GetBufferPointer()); }
};

std::span<const uint8_t> snapshot_frame(proto::FrameEncoder& enc, uint32_t match, uint32_t tick, uint32_t base,
                                        const Bytes& payload) {
  auto& b = enc.builder();
  return enc.finish(proto::CreateSnapshotDirect(b, match, tick, base, 0, &payload));
}

}  // namespace

// ---------------------------------------------------------------------------
// Snapshot reconstruction, no I/O.

TEST_CASE("snapshot history: full, delta, missing base, bad delta, stale") {
  using client::ApplyResult;
  client::SnapshotHistory h(8);
  REQUIRE(h.newest() == nullptr);
  REQUIRE(h.ack_tick() == 0);

  const Bytes v10 = {1, 2, 3, 4, 5, 6, 7, 8};
  REQUIRE(h.apply(SnapMsg(7, 10, 0, v10).get()) == ApplyResult::Full);
  REQUIRE(h.ack_tick() == 10);
  REQUIRE(h.newest()->view == v10);
  REQUIRE(h.newest()->match_id == 7);

  // Delta on 10: one byte changes, the view grows by two.
  const Bytes v11 = {1, 2, 9, 4, 5, 6, 7, 8, 10, 11};
  REQUIRE(h.apply(SnapMsg(7, 11, 10, delta(v10, v11), 3).get()) == ApplyResult::Delta);
  REQUIRE(h.newest()->view == v11);
  REQUIRE(h.newest()->last_input_seq == 3);

  // Delta on 11: the view shrinks.
  const Bytes v12 = {1, 2, 9};
  REQUIRE(h.apply(SnapMsg(7, 12, 11, delta(v11, v12)).get()) == ApplyResult::Delta);
  REQUIRE(h.newest()->view == v12);

  // Delta on an older base still in the ring (the server's ack lags).
  const Bytes v13 = {0, 2, 3, 4, 5, 6, 7, 8};
  REQUIRE(h.apply(SnapMsg(7, 13, 10, delta(v10, v13)).get()) == ApplyResult::Delta);
  REQUIRE(h.newest()->view == v13);
  // The views it was built from are untouched.
  REQUIRE(h.find(7, 12)->view == v12);
  REQUIRE(h.find(7, 10)->view == v10);

  // A base never received: skipped, the newest world stays.
  REQUIRE(h.apply(SnapMsg(7, 15, 14, delta(v10, v13)).get()) == ApplyResult::MissingBase);
  REQUIRE(h.ack_tick() == 13);
  // A base from another match with the same tick: missing too.
  REQUIRE(h.apply(SnapMsg(8, 15, 13, delta(v13, v13)).get()) == ApplyResult::MissingBase);
  // A delta that does not decode (a run past new_len): skipped.
  REQUIRE(h.apply(SnapMsg(7, 15, 13, Bytes{2, 0, 5, 1, 1, 1, 1, 1}).get()) == ApplyResult::BadDelta);
  REQUIRE(h.ack_tick() == 13);
  REQUIRE(h.newest()->view == v13);

  // Not newer than the newest world of the same match: stale.
  REQUIRE(h.apply(SnapMsg(7, 13, 0, v10).get()) == ApplyResult::Stale);
  REQUIRE(h.apply(SnapMsg(7, 12, 11, delta(v11, v12)).get()) == ApplyResult::Stale);
  REQUIRE(h.newest()->view == v13);

  // A full snapshot heals it.
  REQUIRE(h.apply(SnapMsg(7, 16, 0, Bytes{42}).get()) == ApplyResult::Full);
  REQUIRE(h.newest()->view == Bytes{42});
  REQUIRE(h.ack_tick() == 16);

  // A new match may start its ticks lower.
  REQUIRE(h.apply(SnapMsg(9, 1, 0, v10).get()) == ApplyResult::Full);
  REQUIRE(h.ack_tick() == 1);

  h.reset();
  REQUIRE(h.newest() == nullptr);
  REQUIRE(h.ack_tick() == 0);
  REQUIRE(h.apply(SnapMsg(9, 2, 1, delta(v10, v10)).get()) == ApplyResult::MissingBase);
}

TEST_CASE("snapshot history: a base in the slot being overwritten, old bases age out") {
  using client::ApplyResult;
  client::SnapshotHistory h(4);
  Bytes prev = {0, 1};
  const Bytes v1 = prev;
  REQUIRE(h.apply(SnapMsg(1, 1, 0, v1).get()) == ApplyResult::Full);
  for (uint32_t t = 2; t <= 4; ++t) {
    Bytes cur = {uint8_t(t), 1};
    REQUIRE(h.apply(SnapMsg(1, t, t - 1, delta(prev, cur)).get()) == ApplyResult::Delta);
    prev = cur;
  }
  // Tick 5 lands in tick 1's slot (depth 4) and deltas against tick 1.
  const Bytes v5 = {0, 2, 2};
  REQUIRE(h.apply(SnapMsg(1, 5, 1, delta(v1, v5)).get()) == ApplyResult::Delta);
  REQUIRE(h.newest()->view == v5);
  REQUIRE(h.find(1, 1) == nullptr);  // overwritten
  REQUIRE(h.apply(SnapMsg(1, 6, 1, delta(v1, v5)).get()) == ApplyResult::MissingBase);
  REQUIRE(h.apply(SnapMsg(1, 6, 2, delta(Bytes{2, 1}, v5)).get()) == ApplyResult::Delta);
  REQUIRE(h.newest()->view == v5);
}

TEST_CASE("snapshot history: no allocation once warm") {
  client::SnapshotHistory h(4);
  Bytes prev(972, 7);
  REQUIRE(h.apply(SnapMsg(1, 1, 0, prev).get()) == client::ApplyResult::Full);
  for (uint32_t t = 2; t <= 12; ++t) {
    Bytes cur = prev;
    cur[t % cur.size()] ^= 0x55;
    REQUIRE(h.apply(SnapMsg(1, t, t - 1, delta(prev, cur)).get()) == client::ApplyResult::Delta);
    prev = cur;
  }
  // Every slot and the scratch world now hold view-sized buffers: further
  // snapshots reuse them (the buffer addresses cycle through a fixed set).
  std::set<const uint8_t*> seen;
  for (uint32_t t = 13; t <= 40; ++t) {
    Bytes cur = prev;
    cur[(t * 31) % cur.size()] ^= 0x33;
    REQUIRE(h.apply(SnapMsg(1, t, t - 1, delta(prev, cur)).get()) == client::ApplyResult::Delta);
    REQUIRE(h.newest()->view == cur);
    seen.insert(h.newest()->view.data());
    prev = cur;
  }
  REQUIRE(seen.size() <= 5);  // depth 4 + the scratch world
}

// ---------------------------------------------------------------------------
// Against the real server.

TEST_CASE("client: connect, Welcome with identity, close") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  Loop loop;
  int connected = 1, closed = 0, reason = 99;
  bool welcomed = false;
  Client c(loop.get(), Options{.name = "ann"});
  c.callbacks().on_connected = [&](int s) { connected = s; };
  c.callbacks().on_welcome = [&](const proto::Welcome& w) {
    welcomed = true;
    CHECK(w.protocol_version() == proto::ProtocolVersion::Current);
    CHECK(w.player_id() == c.player_id());  // identity is stored before the callback
  };
  c.callbacks().on_closed = [&](int r) {
    ++closed;
    reason = r;
  };
  REQUIRE(c.state() == State::Idle);
  REQUIRE(c.ping() == UV_ENOTCONN);
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(c.state() == State::Connecting);
  REQUIRE(c.connect("127.0.0.1", srv.port()) == UV_EBUSY);
  REQUIRE(loop.run_until([&] { return welcomed; }));
  REQUIRE(connected == 0);
  REQUIRE(c.state() == State::Ready);
  REQUIRE(c.player_id() != 0);
  REQUIRE(token_nonzero(c.token()));
  REQUIRE(c.tick_rate_hz() == 30);
  REQUIRE(c.stats().frames_in == 1);
  REQUIRE(c.stats().frames_out == 1);
  REQUIRE(c.write_queue_bytes() == 0);

  c.close();
  REQUIRE(c.state() == State::Closing);
  REQUIRE(c.ping() == UV_ENOTCONN);
  REQUIRE(loop.run_until([&] { return closed == 1; }));
  REQUIRE(reason == 0);
  REQUIRE(c.state() == State::Closed);
  c.close();  // no-op
  loop.run_for(50);
  REQUIRE(closed == 1);
}

TEST_CASE("client: 100 ping round trips with sane RTTs") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  Loop loop;
  std::vector<uint32_t> rtts, nonces;
  Client c(loop.get(), Options{.name = "pinger"});
  c.callbacks().on_welcome = [&](const proto::Welcome&) { REQUIRE(c.ping() == 0); };
  c.callbacks().on_pong = [&](uint32_t rtt, uint32_t nonce) {
    rtts.push_back(rtt);
    nonces.push_back(nonce);
    if (rtts.size() < 100) REQUIRE(c.ping() == 0);
  };
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return rtts.size() == 100; }, 20s));
  const auto elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  uint64_t sum = 0;
  for (size_t i = 0; i < rtts.size(); ++i) {
    REQUIRE(nonces[i] == i + 1);
    REQUIRE(rtts[i] < 1'000'000);  // loopback: well under a second
    sum += rtts[i];
  }
  // Sequential pings: their RTTs add up to no more than the time it all took.
  REQUIRE(sum <= uint64_t(elapsed_us) + 1000);
  REQUIRE(sum > 0);
  REQUIRE(c.stats().frames_in == 101);
  REQUIRE(c.stats().frames_out == 101);
  REQUIRE(c.stats().errors == 0);
}

TEST_CASE("client: 200 clients on one loop all get Welcome") {
  ServerProcess srv({}, "loadtest.toml");  // one address: the per-address cap lifted
  REQUIRE(srv.wait_ready());
  Loop loop;
  constexpr int kClients = 200;
  int welcomed = 0, closed = 0;
  std::set<uint32_t> player_ids;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    auto c = std::make_unique<Client>(loop.get(), Options{.name = "bot" + std::to_string(i)});
    Client* raw = c.get();
    c->callbacks().on_welcome = [&, raw](const proto::Welcome&) {
      ++welcomed;
      player_ids.insert(raw->player_id());
    };
    c->callbacks().on_closed = [&](int) { ++closed; };
    REQUIRE(c->connect("127.0.0.1", srv.port()) == 0);
    clients.push_back(std::move(c));
  }
  REQUIRE(loop.run_until([&] { return welcomed == kClients; }, 30s));
  REQUIRE(player_ids.size() == size_t(kClients));
  REQUIRE(player_ids.count(0) == 0);
  for (auto& c : clients) {
    REQUIRE(c->state() == State::Ready);
    REQUIRE(token_nonzero(c->token()));
    c->close();
  }
  REQUIRE(loop.run_until([&] { return closed == kClients; }));
}

TEST_CASE("client: a protocol version mismatch surfaces VersionMismatch, then the close") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  Loop loop;
  std::vector<std::string> events;
  Client c(loop.get(), Options{.name = "old", .protocol_version = 99});
  c.callbacks().on_welcome = [&](const proto::Welcome&) { events.push_back("welcome"); };
  c.callbacks().on_error = [&](ErrorCode code, std::string_view text, bool fatal) {
    events.push_back(std::string("error:") + proto::EnumNameErrorCode(code) + (fatal ? ":fatal" : ""));
    CHECK(!text.empty());
  };
  int reason = 99;
  c.callbacks().on_closed = [&](int r) {
    events.push_back("closed");
    reason = r;
  };
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return c.state() == State::Closed; }));
  REQUIRE(events == std::vector<std::string>{"error:VersionMismatch:fatal", "closed"});
  REQUIRE(reason == UV_EOF);  // the server closed after its Error
  REQUIRE(c.player_id() == 0);
  REQUIRE(c.stats().errors == 1);
  REQUIRE(c.stats().errors_for(ErrorCode::VersionMismatch) == 1);
}

TEST_CASE("client: close() and destruction from inside callbacks are safe") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  Loop loop;

  SECTION("close() in on_welcome; sends after it are refused") {
    int closed = 0, reason = 99;
    Client c(loop.get(), Options{.name = "a"});
    c.callbacks().on_welcome = [&](const proto::Welcome&) {
      c.close();
      CHECK(c.ping() == UV_ENOTCONN);
      c.close();  // twice: no-op
    };
    c.callbacks().on_closed = [&](int r) {
      ++closed;
      reason = r;
    };
    REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return closed == 1; }));
    REQUIRE(reason == 0);
    loop.run_for(50);
    REQUIRE(closed == 1);
  }

  SECTION("close() in on_pong stops the rest of the batch") {
    int pongs = 0, closed = 0;
    Client c(loop.get(), Options{.name = "b"});
    c.callbacks().on_welcome = [&](const proto::Welcome&) {
      for (int i = 0; i < 5; ++i) REQUIRE(c.ping() == 0);  // coalesced into one write
    };
    c.callbacks().on_pong = [&](uint32_t, uint32_t) {
      ++pongs;
      c.close();
    };
    c.callbacks().on_closed = [&](int) { ++closed; };
    REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return closed == 1; }));
    REQUIRE(pongs == 1);
  }

  SECTION("close() in on_connected, before any Welcome") {
    bool welcomed = false;
    int closed = 0, reason = 99;
    Client c(loop.get(), Options{.name = "c"});
    c.callbacks().on_connected = [&](int s) {
      REQUIRE(s == 0);
      c.close();
    };
    c.callbacks().on_welcome = [&](const proto::Welcome&) { welcomed = true; };
    c.callbacks().on_closed = [&](int r) {
      ++closed;
      reason = r;
    };
    REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return closed == 1; }));
    REQUIRE(reason == 0);
    REQUIRE_FALSE(welcomed);
  }

  SECTION("the Client destroyed in on_welcome, with frames still in the batch") {
    auto c = std::make_unique<Client>(loop.get(), Options{.name = "d"});
    bool destroyed = false;
    int pongs = 0;
    // A Ping sent before Welcome arrives is answered right after it, often
    // in the same read: the Pong must not be delivered to a dead Client.
    c->callbacks().on_connected = [&](int) { REQUIRE(c->ping() == 0); };
    c->callbacks().on_welcome = [&](const proto::Welcome&) {
      // The reset destroys this very lambda: nothing of it may be used after.
      destroyed = true;
      c.reset();
    };
    c->callbacks().on_pong = [&](uint32_t, uint32_t) { ++pongs; };
    REQUIRE(c->connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return destroyed; }));
    loop.run_for(50);
    REQUIRE(pongs == 0);
  }

  SECTION("the Client destroyed in on_closed, and reconnected from on_closed") {
    auto c = std::make_unique<Client>(loop.get(), Options{.name = "e"});
    int welcomes = 0;
    uint32_t first_id = 0, second_id = 0;
    c->callbacks().on_welcome = [&](const proto::Welcome& w) {
      ++welcomes;
      (welcomes == 1 ? first_id : second_id) = w.player_id();
      c->close();
    };
    c->callbacks().on_closed = [&](int) {
      if (welcomes == 1)
        REQUIRE(c->connect("127.0.0.1", srv.port()) == 0);  // the same Client, a new session
      else
        c.reset();
    };
    REQUIRE(c->connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return c == nullptr; }));
    REQUIRE(welcomes == 2);
    REQUIRE(first_id != 0);
    REQUIRE(second_id != 0);
    REQUIRE(first_id != second_id);
  }

  SECTION("a connected Client destroyed from outside a callback") {
    bool welcomed = false;
    auto c = std::make_unique<Client>(loop.get(), Options{.name = "f"});
    c->callbacks().on_welcome = [&](const proto::Welcome&) { welcomed = true; };
    REQUIRE(c->connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return welcomed; }));
    REQUIRE(c->ping() == 0);  // a write may be outstanding
    c.reset();
    loop.run_for(50);  // libuv releases the socket; ASan checks the rest
  }
}

TEST_CASE("client: SIGTERM gives on_server_shutdown, then on_closed") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  Loop loop;
  std::vector<std::string> events;
  bool welcomed = false;
  int reason = 99;
  Client c(loop.get(), Options{.name = "drain"});
  c.callbacks().on_welcome = [&](const proto::Welcome&) { welcomed = true; };
  c.callbacks().on_server_shutdown = [&](const proto::ServerShutdown& s) {
    events.push_back("shutdown");
    CHECK(s.text() != nullptr);
  };
  c.callbacks().on_closed = [&](int r) {
    events.push_back("closed");
    reason = r;
  };
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return welcomed; }));
  srv.signal(SIGTERM);
  REQUIRE(loop.run_until([&] { return c.state() == State::Closed; }, 20s));
  REQUIRE(events == std::vector<std::string>{"shutdown", "closed"});
  REQUIRE(reason == UV_EOF);
  int status = srv.wait_exit(20s);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("client: every later-issue message is understood by the server") {
  // Today QueueJoin/QueueLeave/QueueStatus/Input get Error(UnexpectedMessage,
  // not fatal); once matchmaking lands they get QueueStatus or a non-fatal
  // Error (NotInMatch, NotInQueue). Either way: one answer each, the frame
  // decodes, and the session stays open.
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  Loop loop;
  int answers = 0, pongs = 0;
  bool fatal_seen = false;
  std::vector<ErrorCode> codes;
  Client c(loop.get(), Options{.name = "later"});
  c.callbacks().on_welcome = [&](const proto::Welcome&) {
    REQUIRE(c.queue_join() == 0);
    REQUIRE(c.queue_status() == 0);
    REQUIRE(c.queue_leave() == 0);
    REQUIRE(client::arena::send_input(c, 10, -10, 1) == 0);
  };
  c.callbacks().on_queue_status = [&](const proto::QueueStatus&) { ++answers; };
  c.callbacks().on_error = [&](ErrorCode code, std::string_view, bool fatal) {
    ++answers;
    codes.push_back(code);
    fatal_seen = fatal_seen || fatal;
  };
  c.callbacks().on_pong = [&](uint32_t, uint32_t) { ++pongs; };
  REQUIRE(c.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return answers == 4; }));
  REQUIRE_FALSE(fatal_seen);
  for (ErrorCode code : codes)
    REQUIRE((code == ErrorCode::UnexpectedMessage || code == ErrorCode::NotInMatch ||
             code == ErrorCode::NotInQueue));
  REQUIRE(c.last_input_seq() == 1);
  REQUIRE(c.ping() == 0);
  REQUIRE(loop.run_until([&] { return pongs == 1; }));
  REQUIRE(c.state() == State::Ready);
}

TEST_CASE("client: resume() on a new connection with the token of the last Welcome") {
  // Today every Resume gets Error(BadToken, fatal); once resume lands, a
  // Welcome with resumed = true and the same player id.
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  Loop loop;
  bool first_closed = false;
  Client first(loop.get(), Options{.name = "first"});
  first.callbacks().on_welcome = [&](const proto::Welcome&) { first.close(); };
  first.callbacks().on_closed = [&](int) { first_closed = true; };
  REQUIRE(first.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(loop.run_until([&] { return first_closed; }));
  REQUIRE(token_nonzero(first.token()));

  bool resumed = false, bad_token = false;
  Client second(loop.get(), Options{.name = "second", .auto_hello = false});
  second.set_token(first.token());
  second.callbacks().on_connected = [&](int s) {
    REQUIRE(s == 0);
    REQUIRE(second.resume() == 0);
  };
  second.callbacks().on_welcome = [&](const proto::Welcome& w) {
    resumed = w.resumed() && w.player_id() == first.player_id();
  };
  second.callbacks().on_error = [&](ErrorCode code, std::string_view, bool fatal) {
    bad_token = code == ErrorCode::BadToken && fatal;
  };
  REQUIRE(second.connect("127.0.0.1", srv.port()) == 0);
  REQUIRE(second.state() == State::Connecting);
  REQUIRE(loop.run_until([&] { return resumed || second.state() == State::Closed; }));
  REQUIRE((resumed || bad_token));
}

TEST_CASE("client: a refused connect reports on_connected and on_closed, a bad address fails at once") {
  Loop loop;
  std::vector<int> events;
  Client c(loop.get(), Options{.name = "nobody"});
  c.callbacks().on_connected = [&](int s) { events.push_back(s); };
  c.callbacks().on_closed = [&](int r) { events.push_back(r); };
  REQUIRE(c.connect("localhost", 1) == UV_EINVAL);  // numeric addresses only
  REQUIRE(c.connect("not an address", 1) == UV_EINVAL);
  REQUIRE(c.state() == State::Idle);
  REQUIRE(c.connect("127.0.0.1", free_port()) == 0);
  REQUIRE(loop.run_until([&] { return c.state() == State::Closed; }));
  REQUIRE(events == std::vector<int>{UV_ECONNREFUSED, UV_ECONNREFUSED});
}

// ---------------------------------------------------------------------------
// Against a scripted fake server.

TEST_CASE("client: snapshots over the wire are rebuilt and acknowledged in Input") {
  FakeServer fs;
  Loop loop;
  struct Seen {
    uint32_t tick;
    Bytes view;
  };
  std::vector<Seen> seen;
  int match_found = 0;
  Client c(loop.get(), Options{.name = "player"});
  c.callbacks().on_match_found = [&](const proto::MatchFound& m) {
    ++match_found;
    CHECK(m.your_slot() == 1);
  };
  c.callbacks().on_snapshot = [&](const client::World& w) {
    seen.push_back({w.tick, w.view});
    const uint8_t in[] = {100, 156, 1};
    REQUIRE(c.send_input(in, sizeof in) == 0);  // acks this world's tick
  };
  REQUIRE(c.connect("127.0.0.1", fs.port()) == 0);
  REQUIRE(loop.run_until([&] { return c.state() == State::Handshaking; }));
  REQUIRE(fs.accept_one());
  auto hello = fs.recv_frames(1);
  REQUIRE(hello.size() == 1);
  REQUIRE(env(hello[0])->msg_type() == proto::Message::Hello);
  REQUIRE(env(hello[0])->msg_as_Hello()->name()->str() == "player");

  // Welcome, sent one byte at a time: the client reassembles split frames.
  {
    auto& b = fs.enc.builder();
    proto::SessionToken tok(1, 2, 3, 4);
    auto frame = fs.enc.finish(proto::CreateWelcome(b, proto::ProtocolVersion::Current, &tok, 42, 3, 20));
    for (size_t i = 0; i < frame.size(); ++i) {
      REQUIRE(fs.send(frame.subspan(i, 1)));
      uv_run(loop.get(), UV_RUN_NOWAIT);
    }
  }
  REQUIRE(loop.run_until([&] { return c.state() == State::Ready; }));
  REQUIRE(c.player_id() == 42);
  REQUIRE(c.worker_index() == 3);
  REQUIRE(c.tick_rate_hz() == 20);
  REQUIRE(c.token() == client::Token{1, 2, 3, 4});

  // One burst: a message only clients send (ignored), MatchFound, then
  // full 10, delta 11/10, delta 12/11 with a removal, delta 14/13 (missing
  // base), delta 15/10 (an older base), full 12 (stale).
  std::vector<uint8_t> burst;
  auto add = [&](std::span<const uint8_t> f) { burst.insert(burst.end(), f.begin(), f.end()); };
  {
    auto& b = fs.enc.builder();
    add(fs.enc.finish(proto::CreatePing(b, 1, 1)));
  }
  {
    auto& b = fs.enc.builder();
    add(fs.enc.finish(proto::CreateMatchFound(b, 7, 1)));
  }
  const Bytes v10 = {0, 10, 20, 100}, v11 = {0, 11, 20, 100}, v12 = {0, 11, 20, 101}, v15 = {0, 10, 25, 100};
  add(snapshot_frame(fs.enc, 7, 10, 0, v10));
  add(snapshot_frame(fs.enc, 7, 11, 10, delta(v10, v11)));
  add(snapshot_frame(fs.enc, 7, 12, 11, delta(v11, v12)));
  add(snapshot_frame(fs.enc, 7, 14, 13, delta(v12, v12)));
  add(snapshot_frame(fs.enc, 7, 15, 10, delta(v10, v15)));
  add(snapshot_frame(fs.enc, 7, 12, 0, Bytes{5}));
  REQUIRE(fs.send(burst));
  REQUIRE(loop.run_until([&] { return c.stats().frames_in == 9; }));

  REQUIRE(match_found == 1);
  REQUIRE(c.stats().unexpected_messages == 1);
  REQUIRE(c.stats().snapshots_full == 1);
  REQUIRE(c.stats().snapshots_delta == 3);
  REQUIRE(c.stats().snapshots_missing_base == 1);
  REQUIRE(c.stats().snapshots_stale == 1);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0].tick == 10);
  CHECK(seen[0].view == v10);
  CHECK(seen[1].tick == 11);
  CHECK(seen[1].view == v11);
  CHECK(seen[2].tick == 12);
  CHECK(seen[2].view == v12);
  CHECK(seen[3].tick == 15);
  CHECK(seen[3].view == v15);  // built on tick 10's view, not tick 12's
  REQUIRE(c.acked_tick() == 15);
  REQUIRE(c.world() != nullptr);
  REQUIRE(c.world()->tick == 15);
  REQUIRE(c.last_input_seq() == 4);

  // The Inputs: seq 1..4, each acknowledging the world it answered.
  auto inputs = fs.recv_frames(4);
  REQUIRE(inputs.size() == 4);
  const uint32_t acks[] = {10, 11, 12, 15};
  for (size_t i = 0; i < 4; ++i) {
    const proto::Input* in = env(inputs[i])->msg_as_Input();
    REQUIRE(in != nullptr);
    CHECK(in->seq() == i + 1);
    CHECK(in->ack_tick() == acks[i]);
    REQUIRE(in->data() != nullptr);
    CHECK(Bytes(in->data()->begin(), in->data()->end()) == Bytes{100, 156, 1});
  }

  // A new match forgets the old worlds: a delta against one is missing.
  burst.clear();
  {
    auto& b = fs.enc.builder();
    add(fs.enc.finish(proto::CreateMatchFound(b, 8, 1)));
  }
  add(snapshot_frame(fs.enc, 8, 16, 15, delta(v15, v15)));
  REQUIRE(fs.send(burst));
  REQUIRE(loop.run_until([&] { return c.stats().frames_in == 11; }));
  REQUIRE(c.acked_tick() == 0);
  REQUIRE(c.stats().snapshots_missing_base == 2);
  REQUIRE(seen.size() == 4);
}

TEST_CASE("client: an undecodable frame from the server closes with kClosedDecodeError") {
  FakeServer fs;
  Loop loop;
  int reason = 99, errors = 0;
  Client c(loop.get(), Options{.name = "x", .max_frame_bytes = 1024});
  c.callbacks().on_error = [&](ErrorCode, std::string_view, bool) { ++errors; };
  c.callbacks().on_closed = [&](int r) { reason = r; };
  REQUIRE(c.connect("127.0.0.1", fs.port()) == 0);
  REQUIRE(loop.run_until([&] { return c.state() == State::Handshaking; }));
  REQUIRE(fs.accept_one());

  SECTION("a length over max_frame_bytes") {
    const uint8_t hdr[] = {0x01, 0x04, 0x00, 0x00};  // 1025
    REQUIRE(fs.send(hdr));
    REQUIRE(loop.run_until([&] { return c.state() == State::Closed; }));
    REQUIRE(c.decode_error() == proto::DecodeError::TooLarge);
  }
  SECTION("garbage") {
    const uint8_t junk[] = {12, 0, 0, 0, 'n', 'o', 't', ' ', 'a', ' ', 'f', 'r', 'a', 'm', 'e', '!'};
    REQUIRE(fs.send(junk));
    REQUIRE(loop.run_until([&] { return c.state() == State::Closed; }));
    REQUIRE(c.decode_error() == proto::DecodeError::WrongIdentifier);
  }
  REQUIRE(reason == client::kClosedDecodeError);
  REQUIRE(errors == 0);  // on_error is for the server's Error messages only
}

TEST_CASE("client: the write queue is capped when the peer does not read") {
  FakeServer fs(4096);  // never accepts, never reads
  Loop loop;
  int reason = 99;
  Client c(loop.get(), Options{.name = "flood", .max_write_queue_bytes = 4096});
  c.callbacks().on_closed = [&](int r) { reason = r; };
  REQUIRE(c.connect("127.0.0.1", fs.port()) == 0);
  REQUIRE(loop.run_until([&] { return c.state() == State::Handshaking; }));
  int r = 0;
  size_t sent = 0;
  for (; sent < 2'000'000 && r == 0; ++sent) {
    r = c.ping();
    if (sent % 1024 == 0) uv_run(loop.get(), UV_RUN_NOWAIT);
  }
  REQUIRE(r == UV_ENOBUFS);
  REQUIRE(c.write_queue_bytes() <= 4096);
  REQUIRE(c.write_queue_bytes() > 4096 - 64);  // full up to about one Ping
  REQUIRE(c.stats().write_queue_full == 1);
  REQUIRE(c.state() == State::Handshaking);  // refused, not closed
  REQUIRE(c.ping() == UV_ENOBUFS);
  c.close();
  REQUIRE(loop.run_until([&] { return c.state() == State::Closed; }));
  REQUIRE(reason == 0);
}
