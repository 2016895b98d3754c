// The server binary end to end: start-up, handshake, refusals, shutdown.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/server_process.h"
#include "tests/support/test_client.h"

using namespace skirmish;
using namespace skirmish::test;
using namespace skirmish::proto;

namespace {

// Writes a config file for one test and removes it afterwards.
struct TempConfig {
  std::string path;
  explicit TempConfig(const std::string& text) {
    path = "/tmp/skirmish-test-" + std::to_string(getpid()) + "-" + std::to_string(counter()++) + ".toml";
    std::ofstream(path) << text;
  }
  ~TempConfig() { unlink(path.c_str()); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};


ErrorCode error_code(const std::optional<std::vector<uint8_t>>& m) {
  REQUIRE(m);
  auto* e = TestClient::envelope(*m);
  REQUIRE(e->msg_type() == Message::Error);
  return e->msg_as_Error()->code();
}

}  // namespace

TEST_CASE("the server starts on port 0 and says where it listens") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.port() != 0);
  REQUIRE(srv.admin_port() != 0);
  REQUIRE(srv.port() != srv.admin_port());
  // Every line names its process role.
  REQUIRE(srv.log().find("master[") != std::string::npos);
  // Healthy once the coordinator and a worker report Up.
  REQUIRE(wait_until([&] { return http_get(srv.admin_port(), "/healthz").rfind("HTTP/1.1 200", 0) == 0; }, 10s));
  REQUIRE(http_get(srv.admin_port(), "/readyz").rfind("HTTP/1.1 200", 0) == 0);
  REQUIRE(http_get(srv.admin_port(), "/nope").rfind("HTTP/1.1 404", 0) == 0);
}

TEST_CASE("Hello gets Welcome with a token and Ping gets Pong") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello("ann"));
  auto m = c.recv();
  REQUIRE(m);
  auto* w = TestClient::envelope(*m)->msg_as_Welcome();
  REQUIRE(w != nullptr);
  REQUIRE(w->protocol_version() == ProtocolVersion::Current);
  REQUIRE(w->token() != nullptr);
  REQUIRE((w->token()->w0() | w->token()->w1() | w->token()->w2() | w->token()->w3()) != 0);
  REQUIRE(w->player_id() != 0);
  REQUIRE(w->tick_rate_hz() == 30);

  REQUIRE(c.send_ping(4242));
  auto p = c.recv_type(Message::Pong);
  REQUIRE(p);
  REQUIRE(TestClient::envelope(*p)->msg_as_Pong()->nonce() == 4242);

  // Two sessions never share a token.
  TestClient d;
  REQUIRE(d.connect(srv.port()));
  REQUIRE(d.send_hello("bob"));
  auto m2 = d.recv();
  REQUIRE(m2);
  auto* w2 = TestClient::envelope(*m2)->msg_as_Welcome();
  REQUIRE(w2);
  REQUIRE(std::memcmp(w->token(), w2->token(), sizeof(SessionToken)) != 0);
  REQUIRE(w2->player_id() != w->player_id());
}

TEST_CASE("a protocol version mismatch gets Error and a close") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello("old", static_cast<ProtocolVersion>(99)));
  REQUIRE(error_code(c.recv()) == ErrorCode::VersionMismatch);
  REQUIRE(c.wait_closed());
}

TEST_CASE("garbage gets Error and a close while other clients are unaffected") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  TestClient good;
  REQUIRE(good.connect(srv.port()));
  REQUIRE(good.send_hello("good"));
  REQUIRE(good.recv_type(Message::Welcome));

  TestClient bad;
  REQUIRE(bad.connect(srv.port()));
  const uint8_t junk[] = {16, 0, 0, 0, 'n', 'o', 't', ' ', 'a', ' ', 'f', 'l', 'a', 't', 'b', 'u', 'f', 'f', '!', '!'};
  REQUIRE(bad.send_raw(junk));
  ErrorCode code = error_code(bad.recv());
  REQUIRE((code == ErrorCode::WrongIdentifier || code == ErrorCode::Unverifiable));
  REQUIRE(bad.wait_closed());

  REQUIRE(good.send_ping(7));
  auto p = good.recv_type(Message::Pong);
  REQUIRE(p);
  REQUIRE(TestClient::envelope(*p)->msg_as_Pong()->nonce() == 7);
}

TEST_CASE("the handshake frame cap is smaller than the one after it") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  // 1000 bytes of name: over the 256-byte cap before Welcome.
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello(std::string(1000, 'x')));
  REQUIRE(error_code(c.recv()) == ErrorCode::FrameTooLarge);
  REQUIRE(c.wait_closed());

  // After Welcome a 1000-byte frame is fine (a Ping padded by a long
  // Hello-shaped body would be refused as unexpected, so pad a Ping).
  TestClient d;
  REQUIRE(d.connect(srv.port()));
  REQUIRE(d.send_hello("d"));
  REQUIRE(d.recv_type(Message::Welcome));
  auto& b = d.enc.builder();
  auto pad = b.CreateString(std::string(1000, 'p'));  // unreferenced: pads the body
  (void)pad;
  REQUIRE(d.send_frame(d.enc.finish(CreatePing(b, 1, 99))));
  auto p = d.recv_type(Message::Pong);
  REQUIRE(p);
  REQUIRE(TestClient::envelope(*p)->msg_as_Pong()->nonce() == 99);
  // And past the 4 KiB cap it is refused.
  auto& b2 = d.enc.builder();
  b2.CreateString(std::string(5000, 'p'));
  REQUIRE(d.send_frame(d.enc.finish(CreatePing(b2, 1, 100))));
  REQUIRE(error_code(d.recv_type(Message::Error)) == ErrorCode::FrameTooLarge);
  REQUIRE(d.wait_closed());
}

TEST_CASE("a message before Hello is refused") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  auto& b = c.enc.builder();
  const std::vector<uint8_t> move = {10, 10, 0};
  REQUIRE(c.send_frame(c.enc.finish(CreateInputDirect(b, 1, 1, 0, &move))));
  REQUIRE(error_code(c.recv()) == ErrorCode::UnexpectedMessage);
  REQUIRE(c.wait_closed());
}

TEST_CASE("the handshake deadline is for the whole handshake and not inactivity") {
  TempConfig cfg("[timeouts]\nhandshake_timeout_ms = 400\n");
  ServerProcess srv({}, cfg.path);
  REQUIRE(srv.wait_ready());
  // Slowloris: a byte every 100 ms keeps an inactivity timer happy forever.
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  FrameEncoder enc;
  auto& b = enc.builder();
  auto frame = enc.finish(CreateHelloDirect(b, ProtocolVersion::Current, "slow"));
  std::optional<std::vector<uint8_t>> got;
  for (size_t i = 0; i < frame.size() - 1 && !got; ++i) {
    if (!c.send_raw(frame.subspan(i, 1))) break;
    got = c.recv(std::chrono::milliseconds(100));
  }
  REQUIRE(error_code(got) == ErrorCode::HandshakeTimeout);
  REQUIRE(c.wait_closed());
}

TEST_CASE("an idle client is closed after the idle deadline") {
  TempConfig cfg("[timeouts]\nidle_timeout_ms = 1000\n");
  ServerProcess srv({}, cfg.path);
  REQUIRE(srv.wait_ready());
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello());
  REQUIRE(c.recv_type(Message::Welcome));
  REQUIRE(error_code(c.recv(std::chrono::seconds(10))) == ErrorCode::IdleTimeout);
  REQUIRE(c.wait_closed());
}

TEST_CASE("a message flood is rate limited") {
  TempConfig cfg("[limits]\nmessages_per_second = 10\nmessage_burst = 20\n");
  ServerProcess srv({}, cfg.path);
  REQUIRE(srv.wait_ready());
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello());
  REQUIRE(c.recv_type(Message::Welcome));
  for (uint32_t i = 0; i < 200; ++i)
    if (!c.send_ping(i)) break;
  REQUIRE(error_code(c.recv_type(Message::Error)) == ErrorCode::RateLimited);
  REQUIRE(c.wait_closed());
}

TEST_CASE("a bad config exits 2 with one line naming the key before binding") {
  TempConfig cfg("[limits]\nmax_frame_bytes = 10\n");
  auto r = run_server({"--config", cfg.path, "--port", "0", "--admin-port", "0"});
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.output.find("limits.max_frame_bytes") != std::string::npos);
  REQUIRE(r.output.find("listening") == std::string::npos);
  REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') == 1);

  TempConfig unknown("[game]\ntickrate = 30\n");
  r = run_server({"--config", unknown.path});
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.output.find("game.tickrate") != std::string::npos);

  r = run_server({"--config", config_path("skirmish.toml"), "--port", "70000"});
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.output.find("--port") != std::string::npos);

  r = run_server({"--version"});
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.output.find("skirmish-server") != std::string::npos);
}

TEST_CASE("a port in use is a clear start-up failure") {
  ServerProcess first;
  REQUIRE(first.wait_ready());
  auto r = run_server({"--config", config_path("skirmish.toml"), "--port", std::to_string(first.port()),
                       "--admin-port", "0", "--shm-name", first.shm_name() + "-b"});
  REQUIRE(r.exit_code == 1);
  REQUIRE(r.output.find("cannot listen") != std::string::npos);
}

TEST_CASE("SIGTERM sends ServerShutdown to every client and exits 0") {
  ServerProcess srv;
  REQUIRE(srv.wait_ready());
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    REQUIRE(clients.back()->connect(srv.port()));
    REQUIRE(clients.back()->send_hello("c" + std::to_string(i)));
    REQUIRE(clients.back()->recv_type(Message::Welcome));
  }
  srv.signal(SIGTERM);
  for (auto& c : clients) {
    auto m = c->recv_type(Message::ServerShutdown);
    REQUIRE(m);
    REQUIRE(c->wait_closed());
  }
  int status = srv.wait_exit();
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("/metrics is Prometheus text exposition and /status is JSON") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(wait_until([&] { return http_get(srv.admin_port(), "/healthz").rfind("HTTP/1.1 200", 0) == 0; }, 10s));
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello("metrics"));
  REQUIRE(c.recv_type(Message::Welcome));

  const std::string resp = http_get(srv.admin_port(), "/metrics");
  REQUIRE(resp.rfind("HTTP/1.1 200", 0) == 0);
  REQUIRE(resp.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  const std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
  // Every sample belongs to a family declared with HELP and TYPE before it;
  // names are valid, counters end in _total, values parse.
  const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf))");
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::map<std::string, double> values;
  std::istringstream in(body);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    INFO(line);
    if (std::regex_match(line, m, help)) {
      REQUIRE(helped.insert(m[1]).second);
    } else if (std::regex_match(line, m, type)) {
      REQUIRE(helped.count(m[1]) == 1);
      REQUIRE(types.emplace(m[1], m[2]).second);
      if (m[2] == "counter") REQUIRE(std::string(m[1]).ends_with("_total"));
    } else {
      REQUIRE(std::regex_match(line, m, sample));
      // A histogram's samples are NAME_bucket / _sum / _count.
      std::string family = m[1];
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        if (!types.count(family) && family.ends_with(suffix)) family.resize(family.size() - std::strlen(suffix));
      REQUIRE(types.count(family) == 1);
      values[std::string(m[1]) + std::string(m[2])] = std::stod(m[4]);
      ++samples;
    }
  }
  REQUIRE(samples > 50);
  // Counters carry the labels of the process that keeps them (the master's slot follows the coordinator's).
  double accepted = 0;
  for (auto& [key, value] : values)
    if (key.starts_with("skirmish_connections_accepted_total{role=\"master\",")) accepted += value;
  REQUIRE(accepted >= 1);
  // The coordinator's index follows both banks of worker slots.
  int coordinators_up = 0;
  for (auto& [key, value] : values)
    if (key.starts_with("skirmish_process_up{role=\"coordinator\"")) coordinators_up += int(value);
  REQUIRE(coordinators_up == 1);
  REQUIRE(values["skirmish_process_up{role=\"worker\",index=\"0\"}"] == 1);
  REQUIRE(values["skirmish_table_capacity{table=\"players\"}"] > 0);
  REQUIRE(types["skirmish_matchmaking_wait_seconds"] == "histogram");
  REQUIRE(types["skirmish_tick_drift_seconds"] == "histogram");
  int wait_inf = 0;
  for (auto& [key, value] : values)
    wait_inf += key.starts_with("skirmish_matchmaking_wait_seconds_bucket{role=\"coordinator\",") &&
                key.ends_with(",le=\"+Inf\"}");
  REQUIRE(wait_inf == 1);
  // Debian's promtool, where installed, agrees.
  if (access("/usr/bin/promtool", X_OK) == 0) {
    const std::string path = "/tmp/skirmish-metrics-" + std::to_string(getpid()) + ".txt";
    std::ofstream(path) << body;
    const int rc = std::system(("/usr/bin/promtool check metrics < " + path + " > /dev/null 2>&1").c_str());
    unlink(path.c_str());
    REQUIRE(rc == 0);
  } else {
    WARN("promtool not installed: checked with the test's own exposition-format parser only");
  }

  const std::string status = http_get(srv.admin_port(), "/status");
  REQUIRE(status.rfind("HTTP/1.1 200", 0) == 0);
  const std::string json = status.substr(status.find("\r\n\r\n") + 4);
  REQUIRE(json.find("\"processes\"") != std::string::npos);
  REQUIRE(json.find("\"version\": \"" SKIRMISH_VERSION "\"") != std::string::npos);
  REQUIRE(json.find("\"accepting\": true") != std::string::npos);
}
