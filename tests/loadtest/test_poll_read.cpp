// client::Options::poll_reads and rx_timestamps (client/lib/skirmish_client.h,
// "Reading at the owner's pace"), which skirmish-loadtest reads its bots
// with at the input phase slots: against a scripted server on a plain
// socket, a Client in that mode does not read on readability; poll_read()
// dispatches what arrived, each frame dated by the kernel's receive time of
// its read (between the server's send and the read, not the read), a read of
// two Snapshots is counted as such, and an EOF is seen by poll_read(). A
// Client without the option reads on readability as before and has no
// kernel time. Waits are on conditions (readability, the loop) with
// deadlines; the one fixed delay holds a read back on purpose, to tell the
// arrival from the read.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <span>
#include <vector>

#include "client/lib/skirmish_client.h"
#include "protocol/codec.h"
#include "tests/support/uv_loop.h"

namespace {

namespace client = skirmish::client;
namespace proto = skirmish::proto;
using skirmish::test::Loop;

uint64_t realtime_ns() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_nsec);
}

// Listens on 127.0.0.1, accepts one connection, writes what the test says.
struct Server {
  int lfd = -1, fd = -1;
  uint16_t port = 0;
  proto::FrameEncoder enc{256};
  Server() {
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd, 4);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Server() {
    if (fd >= 0) ::close(fd);
    ::close(lfd);
  }
  bool accept_one() {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    return fd >= 0;
  }
  bool send(std::span<const uint8_t> b) { return ::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == ssize_t(b.size()); }
  std::vector<uint8_t> welcome() {
    proto::SessionToken tok(1, 2, 3, 4);
    auto f = enc.finish(proto::CreateWelcome(enc.builder(), proto::ProtocolVersion::Current, &tok, 42, 0, 30));
    return {f.begin(), f.end()};
  }
};

// The client's socket has bytes to read (the server's are on their way).
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return fd >= 0 && ::poll(&p, 1, 5000) == 1;
}

}  // namespace

TEST_CASE("poll_reads: frames wait for poll_read and carry the kernel's receive time") {
  Server s;
  Loop loop;
  client::Options o;
  o.poll_reads = true;
  o.rx_timestamps = true;
  client::Client c(loop.get(), o);
  uint64_t rx = 0, read_at = 0;
  int closed = 1;
  c.callbacks().on_welcome = [&](const proto::Welcome&) {
    rx = c.rx_realtime_ns();
    read_at = realtime_ns();
  };
  c.callbacks().on_closed = [&](int r) { closed = r; };
  REQUIRE(c.connect("127.0.0.1", s.port) == 0);
  REQUIRE(loop.run_until([&] { return c.state() == client::State::Handshaking; }));
  REQUIRE(s.accept_one());
  REQUIRE(c.rx_timestamps_enabled());
  // The kernel turns RX timestamping on for the whole stack on first use,
  // from a work queue: until then reads come without a time. Pongs until
  // one comes with it: a probe a millisecond for at most 5 s (the work
  // item's delay is the kernel's; there is nothing to wait on).
  int pongs = 0;
  c.callbacks().on_pong = [&](uint32_t, uint32_t) { ++pongs; };
  uint64_t missing = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int i = 0; i < 5000 && std::chrono::steady_clock::now() < until; ++i) {
    missing = c.stats().reads_without_rx_time;
    REQUIRE(s.send(s.enc.finish(proto::CreatePong(s.enc.builder(), 0, 1))));
    REQUIRE(readable(c.fd()));
    REQUIRE(c.poll_read() > 0);
    if (c.stats().reads_without_rx_time == missing) break;
    const timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
  REQUIRE(c.stats().reads_without_rx_time == missing);
  const uint64_t reads0 = c.stats().reads;

  const auto w = s.welcome();
  const uint64_t t0 = realtime_ns();
  REQUIRE(s.send(w));
  const uint64_t t1 = realtime_ns();
  REQUIRE(readable(c.fd()));
  // Held back on purpose: the loop runs 30 ms and must not read it.
  loop.run_for(30);
  REQUIRE(c.state() == client::State::Handshaking);
  REQUIRE(c.poll_read() == int(w.size()));
  REQUIRE(c.state() == client::State::Ready);
  CHECK(rx >= t0);
  CHECK(rx <= t1);
  CHECK(read_at - rx >= 25'000'000ull);  // dated at arrival, not at the read
  CHECK(c.rx_realtime_ns() == 0);        // only during the read's callbacks
  CHECK(c.stats().reads_without_rx_time == missing);
  CHECK(c.poll_read() == 0);  // nothing more: EAGAIN

  // Two Snapshots in one read are counted as such.
  std::vector<uint8_t> burst;
  auto add = [&](std::span<const uint8_t> f) { burst.insert(burst.end(), f.begin(), f.end()); };
  add(s.enc.finish(proto::CreateMatchFound(s.enc.builder(), 7, 1)));
  const std::vector<uint8_t> v = {1, 2, 3};
  add(s.enc.finish(proto::CreateSnapshotDirect(s.enc.builder(), 7, 10, 0, 0, &v)));
  add(s.enc.finish(proto::CreateSnapshotDirect(s.enc.builder(), 7, 11, 0, 0, &v)));
  int snapshots = 0;
  c.callbacks().on_snapshot = [&](const client::World&) { ++snapshots; };
  REQUIRE(s.send(burst));
  REQUIRE(readable(c.fd()));
  REQUIRE(c.poll_read() == int(burst.size()));
  CHECK(snapshots == 2);
  CHECK(c.stats().reads == reads0 + 2);
  CHECK(c.stats().reads_multi_snapshot == 1);

  // The server's close is seen by the next poll_read (a FIN: the server
  // reads the Hello first, else its close is a reset).
  REQUIRE(readable(s.fd));
  uint8_t sink[4096];
  while (::recv(s.fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  ::close(s.fd);
  s.fd = -1;
  REQUIRE(readable(c.fd()));
  CHECK(c.poll_read() == UV_EOF);
  REQUIRE(loop.run_until([&] { return c.state() == client::State::Closed; }));
  CHECK(closed == UV_EOF);
}

TEST_CASE("poll_reads off: the Client reads on readability and has no kernel time") {
  Server s;
  Loop loop;
  client::Client c(loop.get(), client::Options{});
  uint64_t rx = 1;
  c.callbacks().on_welcome = [&](const proto::Welcome&) { rx = c.rx_realtime_ns(); };
  REQUIRE(c.connect("127.0.0.1", s.port) == 0);
  REQUIRE(loop.run_until([&] { return c.state() == client::State::Handshaking; }));
  REQUIRE(s.accept_one());
  CHECK_FALSE(c.rx_timestamps_enabled());
  CHECK(c.poll_read() == 0);
  REQUIRE(s.send(s.welcome()));
  REQUIRE(loop.run_until([&] { return c.state() == client::State::Ready; }));
  CHECK(rx == 0);
  CHECK(c.stats().reads == 1);
}
