// Connection limits enforced by the master before it hands a socket on: the
// per-address cap (counted across workers, freed when a connection closes or
// its worker dies) and the descriptor limit (ulimit -n 64: refuse what it
// cannot hold, stay up, accept again once clients leave).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>

#include <regex>

#include "tests/support/bots.h"
#include "tests/support/test_client.h"

using namespace skirmish;
using namespace skirmish::test;

namespace {

const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

enum class Outcome { Welcome, Refused, Other };

// Connects, says Hello, and reports what came back first. A refusal is an
// Error frame with `code` followed by a close.
Outcome handshake(TestClient& c, uint16_t port, const char* source, ErrorCode* code = nullptr) {
  if (!c.connect(port, "127.0.0.1", source)) return Outcome::Other;
  c.send_hello("limits");
  auto m = c.recv(5s);
  if (!m) return Outcome::Other;
  const auto* e = TestClient::envelope(*m);
  if (e->msg_type() == proto::Message::Welcome) return Outcome::Welcome;
  if (e->msg_type() != proto::Message::Error) return Outcome::Other;
  if (code != nullptr) *code = e->msg_as_Error()->code();
  return e->msg_as_Error()->fatal() && c.wait_closed(5s) ? Outcome::Refused : Outcome::Other;
}

// The first sample of `family` whose labels include `label` (k="v"); -1 if none.
double metric(uint16_t admin_port, const std::string& family, const std::string& label) {
  const std::string text = http_get(admin_port, "/metrics");
  for (size_t at = text.find("\n" + family + "{"); at != std::string::npos; at = text.find("\n" + family + "{", at + 1)) {
    const size_t end = text.find('}', at);
    if (end == std::string::npos) break;
    if (text.substr(at, end - at).find(label) != std::string::npos) return std::stod(text.substr(end + 2));
  }
  return -1;
}

}  // namespace

TEST_CASE("the per-address cap refuses the next connection from that address and frees a slot on close") {
  GameConfig cfg(std::map<std::string, std::string>{{"max_connections_per_ip", "8"}});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());

  std::vector<std::unique_ptr<TestClient>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<TestClient>());
    REQUIRE(handshake(*held.back(), srv.port(), "127.0.0.1") == Outcome::Welcome);
  }
  // The ninth from the same address: Error(TooManyConnections) and a close.
  TestClient ninth;
  ErrorCode code = ErrorCode::None;
  REQUIRE(handshake(ninth, srv.port(), "127.0.0.1", &code) == Outcome::Refused);
  REQUIRE(code == ErrorCode::TooManyConnections);
  // Another address is not affected.
  TestClient other;
  REQUIRE(handshake(other, srv.port(), "127.0.0.2") == Outcome::Welcome);
  REQUIRE(metric(srv.admin_port(), "skirmish_connections_refused_total", "reason=\"per_address\"") >= 1);

  // Two leave: their worker reports the closes, two more get in.
  held[0]->close();
  held[1]->close();
  for (int i = 0; i < 2; ++i) {
    auto c = std::make_unique<TestClient>();
    REQUIRE(wait_until([&] { return handshake(*c, srv.port(), "127.0.0.1") == Outcome::Welcome; }, 10s));
    held[size_t(i)] = std::move(c);
  }
  TestClient over;
  REQUIRE(handshake(over, srv.port(), "127.0.0.1") == Outcome::Refused);

  // Connect-and-reset, 200 times from a third address: a peer gone before
  // its worker looks at it still counts down when its socket closes.
  for (int i = 0; i < 200; ++i) {
    TestClient r;
    if (!r.connect(srv.port(), "127.0.0.1", "127.0.0.3")) continue;
    linger lg{1, 0};
    setsockopt(r.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }  // close() with linger 0: a reset
  std::vector<std::unique_ptr<TestClient>> third;
  for (int i = 0; i < 8; ++i) {
    auto c = std::make_unique<TestClient>();
    REQUIRE(wait_until([&] { return handshake(*c, srv.port(), "127.0.0.3") == Outcome::Welcome; }, 10s));
    third.push_back(std::move(c));
  }

  // A worker killed with its connections: it reports nothing, the master
  // drops its share at once. Once every old connection is gone, eight new
  // ones fit again.
  const pid_t w0 = child_titled(srv.pid(), "skirmish: worker 0");
  REQUIRE(w0 != 0);
  REQUIRE(kill(w0, SIGKILL) == 0);
  REQUIRE(srv.wait_log("worker 0 (pid " + std::to_string(w0) + ") killed by signal 9"));
  held.clear();
  for (int i = 0; i < 8; ++i) {
    auto c = std::make_unique<TestClient>();
    REQUIRE(wait_until([&] { return handshake(*c, srv.port(), "127.0.0.1") == Outcome::Welcome; }, 10s));
    held.push_back(std::move(c));
  }
  REQUIRE(handshake(over, srv.port(), "127.0.0.1") == Outcome::Refused);
}

TEST_CASE("with ulimit -n 64 the server refuses what it cannot hold, stays up, and accepts again after") {
  ServerProcess srv({"--workers", "2"}, "loadtest.toml", 64);  // one address for all: per-address cap lifted
  REQUIRE(srv.wait_ready());
  constexpr int kClients = 120;
  std::vector<std::unique_ptr<TestClient>> clients;
  int welcomed = 0, refused = 0, other = 0;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    ErrorCode code = ErrorCode::None;
    switch (handshake(*clients.back(), srv.port(), nullptr, &code)) {
      case Outcome::Welcome: ++welcomed; break;
      case Outcome::Refused:
        ++refused;
        REQUIRE(code == ErrorCode::ServerFull);
        break;
      case Outcome::Other: ++other; break;
    }
  }
  WARN("ulimit -n 64, 2 workers: " << welcomed << " of " << kClients << " clients held, " << refused
                                   << " refused with ServerFull");
  REQUIRE(welcomed >= 10);  // each worker holds what its descriptors allow
  REQUIRE(refused > 0);
  REQUIRE(other == 0);      // every connection was answered: Welcome or Error
  REQUIRE(srv.running());
  // Healthy: awaited, since on a loaded machine the coordinator (which
  // /healthz requires) may still be starting when the clients are done.
  REQUIRE(wait_until([&] { return http_get(srv.admin_port(), "/healthz").rfind("HTTP/1.1 200", 0) == 0; }, 10s));
  REQUIRE(srv.log().find("killed by signal") == std::string::npos);

  // Everyone leaves; as many as before fit again.
  clients.clear();
  for (int i = 0; i < welcomed; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    REQUIRE(wait_until([&] { return handshake(*clients.back(), srv.port(), nullptr) == Outcome::Welcome; }, 10s));
  }
  REQUIRE(srv.running());
}
