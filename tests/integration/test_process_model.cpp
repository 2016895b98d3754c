// The process model with real processes: prefork, handoff, supervision,
// shared memory ownership, drain, reload, slow consumers.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include "tests/support/server_process.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "tests/support/test_client.h"

using namespace skirmish;
using namespace skirmish::test;
using namespace skirmish::proto;

namespace {

struct TempConfig {
  std::string path;
  explicit TempConfig(const std::string& text) {
    static int n = 0;
    path = "/tmp/skirmish-pm-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".toml";
    write(text);
  }
  void write(const std::string& text) const { std::ofstream(path) << text; }
  ~TempConfig() { unlink(path.c_str()); }
};

bool shm_exists(const std::string& name) {
  struct stat st;
  return stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

uint16_t welcome_worker(TestClient& c) {
  auto m = c.recv_type(Message::Welcome);
  REQUIRE(m);
  return TestClient::envelope(*m)->msg_as_Welcome()->worker_index();
}

}  // namespace

TEST_CASE("500 clients are spread over 2 workers") {
  ServerProcess srv({"--workers", "2"}, "loadtest.toml");
  REQUIRE(srv.wait_ready());
  std::vector<std::unique_ptr<TestClient>> clients;
  std::map<uint16_t, int> per_worker;
  for (int i = 0; i < 500; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    REQUIRE(clients.back()->connect(srv.port()));
    REQUIRE(clients.back()->send_hello("c" + std::to_string(i)));
  }
  for (auto& c : clients) ++per_worker[welcome_worker(*c)];
  REQUIRE(per_worker.size() == 2);
  for (auto& [w, n] : per_worker) {
    INFO("worker " << w << " got " << n);
    REQUIRE(n >= 200);  // 40%
    REQUIRE(n <= 300);  // 60%
  }
}

TEST_CASE("ps shows the master, the coordinator and each worker by role") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("worker 1 up"));
  REQUIRE(cmdline(srv.pid()).rfind("skirmish: master", 0) == 0);
  REQUIRE(wait_until([&] { return children_of(srv.pid()).size() == 3; }, 5s));
  REQUIRE(child_titled(srv.pid(), "skirmish: coordinator") != 0);
  REQUIRE(child_titled(srv.pid(), "skirmish: worker 0") != 0);
  REQUIRE(child_titled(srv.pid(), "skirmish: worker 1") != 0);
  REQUIRE(read_file("/proc/" + std::to_string(child_titled(srv.pid(), "skirmish: worker 1")) + "/comm") ==
          "sk-worker-1\n");
}

TEST_CASE("a worker killed with -9 is replaced and the new one serves clients") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("worker 0 up"));
  pid_t w0 = 0;
  REQUIRE(wait_until([&] { return (w0 = child_titled(srv.pid(), "skirmish: worker 0")) != 0; }, 5s));
  // A connected client of the dead worker loses its connection.
  TestClient victim;
  bool on_w0 = false;
  for (int i = 0; i < 10 && !on_w0; ++i) {
    REQUIRE(victim.connect(srv.port()));
    REQUIRE(victim.send_hello());
    on_w0 = welcome_worker(victim) == 0;
  }
  REQUIRE(on_w0);

  auto killed_at = std::chrono::steady_clock::now();
  REQUIRE(kill(w0, SIGKILL) == 0);
  pid_t fresh = 0;
  REQUIRE(wait_until(
      [&] {
        fresh = child_titled(srv.pid(), "skirmish: worker 0");
        return fresh != 0 && fresh != w0;
      },
      5s));
  auto replaced_in = std::chrono::steady_clock::now() - killed_at;
  INFO("replaced in " << std::chrono::duration_cast<std::chrono::milliseconds>(replaced_in).count() << " ms");
  REQUIRE(replaced_in < 1s);
  REQUIRE(victim.wait_closed());
  REQUIRE(srv.log().find("worker 0 (pid " + std::to_string(w0) + ") killed by signal 9") != std::string::npos);

  // New clients are served by the new worker too.
  bool served_by_fresh = false;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 20 && !served_by_fresh; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    REQUIRE(clients.back()->connect(srv.port()));
    REQUIRE(clients.back()->send_hello());
    served_by_fresh = welcome_worker(*clients.back()) == 0;
  }
  REQUIRE(served_by_fresh);
}

TEST_CASE("a stale segment from a killed server is replaced at the next start") {
  std::string name;
  {
    ServerProcess first;
    REQUIRE(first.wait_ready());
    name = first.shm_name();
    REQUIRE(shm_exists(name));
    pid_t master = first.pid();
    auto kids = children_of(master);
    REQUIRE(kids.size() == 3);
    first.signal(SIGKILL);
    REQUIRE(first.wait_exit() != -1);
    // Every child follows its master within a second.
    REQUIRE(wait_until(
        [&] {
          for (pid_t k : kids)
            if (kill(k, 0) == 0 && read_file("/proc/" + std::to_string(k) + "/cmdline").size() > 0) return false;
          return true;
        },
        1s));
    REQUIRE(shm_exists(name));  // left behind by the crash
    // ~ServerProcess would remove it: keep it by re-creating the guard below
    // under the same name before this one is destroyed.
    std::string copy = "/dev/shm/" + name + ".keep";
    REQUIRE(link(("/dev/shm/" + name).c_str(), copy.c_str()) == 0);
  }
  REQUIRE(rename(("/dev/shm/" + name + ".keep").c_str(), ("/dev/shm/" + name).c_str()) == 0);
  ServerProcess second({"--shm-name", name});
  REQUIRE(second.wait_ready());
  REQUIRE(second.log().find("replaced a stale shared-memory segment") != std::string::npos);
  TestClient c;
  REQUIRE(c.connect(second.port()));
  REQUIRE(c.send_hello());
  REQUIRE(c.recv_type(Message::Welcome));
  second.signal(SIGTERM);
  REQUIRE(second.wait_exit() == 0);
  REQUIRE_FALSE(shm_exists(name));
}

TEST_CASE("a second server with the same shm name refuses to start") {
  ServerProcess first;
  REQUIRE(first.wait_ready());
  auto r = run_server({"--config", config_path("skirmish.toml"), "--port", "0", "--admin-port", "0", "--shm-name",
                       first.shm_name()});
  REQUIRE(r.exit_code == 1);
  REQUIRE(r.output.find("in use by a running server (pid " + std::to_string(first.pid()) + ")") !=
          std::string::npos);
  // The first one is untouched.
  TestClient c;
  REQUIRE(c.connect(first.port()));
  REQUIRE(c.send_hello());
  REQUIRE(c.recv_type(Message::Welcome));
  REQUIRE(shm_exists(first.shm_name()));
}

TEST_CASE("SIGTERM drains: ServerShutdown to all and every process exits 0 and the segment is gone") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("worker 1 up"));
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    REQUIRE(clients.back()->connect(srv.port()));
    REQUIRE(clients.back()->send_hello());
    REQUIRE(clients.back()->recv_type(Message::Welcome));
  }
  srv.signal(SIGTERM);
  for (auto& c : clients) {
    REQUIRE(c->recv_type(Message::ServerShutdown));
    REQUIRE(c->wait_closed());
  }
  int status = srv.wait_exit(20s);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const std::string& log = srv.log();
  REQUIRE(log.find("coordinator (pid") != std::string::npos);
  std::regex exited(R"((worker \d|coordinator) \(pid \d+\) exited with status 0)");
  REQUIRE(std::distance(std::sregex_iterator(log.begin(), log.end(), exited), std::sregex_iterator()) == 3);
  REQUIRE_FALSE(shm_exists(srv.shm_name()));
}

TEST_CASE("SIGHUP applies a new log level without dropping a connection and keeps the old config if bad") {
  std::string base = read_file(config_path("skirmish.toml"));
  TempConfig cfg(base);
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    REQUIRE(clients.back()->connect(srv.port()));
    REQUIRE(clients.back()->send_hello());
    REQUIRE(clients.back()->recv_type(Message::Welcome));
  }
  std::string debug = std::regex_replace(base, std::regex(R"(log_level\s*=\s*"info")"), R"(log_level = "debug")");
  REQUIRE(debug != base);
  cfg.write(debug);
  srv.signal(SIGHUP);
  REQUIRE(srv.wait_log("SIGHUP: reloaded"));
  // The coordinator and both workers confirm.
  REQUIRE(wait_until([&] { return count_of(srv.log(), "info: config reloaded") == 3; }, 5s));
  // Debug lines now flow: a new session is logged at debug level.
  TestClient late;
  REQUIRE(late.connect(srv.port()));
  REQUIRE(late.send_hello());
  REQUIRE(late.recv_type(Message::Welcome));
  REQUIRE(srv.wait_log("debug: session"));

  // A bad config is refused and the running one kept.
  cfg.write("[limits]\nmax_frame_bytes = 1\n");
  srv.signal(SIGHUP);
  REQUIRE(srv.wait_log("SIGHUP: keeping the running config: config: limits.max_frame_bytes"));

  for (uint32_t i = 0; i < clients.size(); ++i) {
    REQUIRE(clients[i]->send_ping(i));
    auto p = clients[i]->recv_type(Message::Pong);
    REQUIRE(p);
    REQUIRE(TestClient::envelope(*p)->msg_as_Pong()->nonce() == i);
  }
}

TEST_CASE("SIGHUP logs each key that changed: a live one applied, a restart-only one warned and kept") {
  std::string base = read_file(config_path("skirmish.toml"));
  TempConfig cfg(base);
  // --workers and the harness's --port 0 --shm-name differ from the file:
  // flags, not changes, and never reported.
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  std::string changed = std::regex_replace(base, std::regex(R"(idle_timeout_ms\s*=\s*30000)"), "idle_timeout_ms = 1000");
  changed = std::regex_replace(changed, std::regex(R"(match_size\s*=\s*4)"), "match_size = 2");
  REQUIRE(count_of(changed, "idle_timeout_ms = 1000") == 1);
  REQUIRE(count_of(changed, "match_size = 2") == 1);
  cfg.write(changed);
  srv.signal(SIGHUP);
  REQUIRE(srv.wait_log("SIGHUP: reloaded"));
  const std::string log = srv.log();
  CHECK(count_of(log, "info: SIGHUP: timeouts.idle_timeout_ms: 30000 -> 1000 (applied)") == 1);
  CHECK(count_of(log, "warning: SIGHUP: game.match_size: 4 -> 2 in the file: not applied, it needs a restart "
                      "(running with 4)") == 1);
  CHECK(count_of(log, "1 key(s) applied, 1 need a restart") == 1);
  CHECK(count_of(log, "SIGHUP: server.") == 0);
  CHECK(count_of(log, "SIGHUP: reloaded") == 1);

  // The live key took effect: once the coordinator and the worker confirm,
  // a new client that sends nothing is closed after 1 s, not 30 s.
  REQUIRE(wait_until([&] { return count_of(srv.log(), "info: config reloaded") == 2; }, 5s));
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello());
  REQUIRE(c.recv_type(Message::Welcome));
  const auto t0 = std::chrono::steady_clock::now();
  auto e = c.recv_type(Message::Error, 10s);
  REQUIRE(e);
  CHECK(TestClient::envelope(*e)->msg_as_Error()->code() == ErrorCode::IdleTimeout);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  REQUIRE(c.wait_closed());

  // Unchanged since: a second SIGHUP reports nothing, not the same keys again.
  srv.signal(SIGHUP);
  REQUIRE(wait_until([&] { return count_of(srv.log(), "SIGHUP: reloaded") == 2; }, 5s));
  CHECK(count_of(srv.log(), "0 key(s) applied, 0 need a restart") == 1);
  CHECK(count_of(srv.log(), "SIGHUP: game.match_size") == 1);
}

TEST_CASE("a client that never reads is closed at the write-queue cap and memory stays bounded") {
  TempConfig cfg(
      "[limits]\nwrite_queue_bytes = 65536\nmessages_per_second = 100000\nmessage_burst = 1000000\n");
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  REQUIRE(srv.wait_log("worker 0 up"));
  pid_t worker = child_titled(srv.pid(), "skirmish: worker 0");
  REQUIRE(worker != 0);
  long rss_before = rss_kib(worker);

  TestClient reader;  // a well-behaved neighbour
  REQUIRE(reader.connect(srv.port()));
  REQUIRE(reader.send_hello());
  REQUIRE(reader.recv_type(Message::Welcome));

  // The slow one: a tiny receive window, Pings as fast as the socket takes
  // them, and never a read.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(srv.port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  FrameEncoder enc;
  auto hello = enc.finish(CreateHelloDirect(enc.builder(), ProtocolVersion::Current, "slow"));
  REQUIRE(send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) == ssize_t(hello.size()));
  std::vector<uint8_t> pings;
  for (int i = 0; i < 1000; ++i) {
    auto f = enc.finish(CreatePing(enc.builder(), 1, uint32_t(i)));
    pings.insert(pings.end(), f.begin(), f.end());
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  bool cut = false;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (int round = 0; round < 200000 && !cut && std::chrono::steady_clock::now() < deadline; ++round) {
    ssize_t n = send(fd, pings.data(), pings.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) cut = true;
    if (n < 0 && errno == EAGAIN) {
      // Our send buffer is full: the server stopped reading us, either
      // because it closed or because its own buffers are full. Look.
      char probe;
      ssize_t r = recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno == ECONNRESET)) cut = true;
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 10);
    }
  }
  // Whatever is left in our receive buffer ends with the close.
  if (!cut) {
    fcntl(fd, F_SETFL, 0);
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    }
    cut = (n == 0 || errno == ECONNRESET);
  }
  close(fd);
  REQUIRE(cut);
  // The worker counted it as a slow consumer (published on its heartbeat).
  std::string err;
  auto seg = shm::Segment::open_existing(srv.shm_name(), err);
  REQUIRE(seg);
  REQUIRE(wait_until([&] { return shm::shared_load(seg->process(0).counters.slow_consumers) >= 1; }, 5s));
  // The worker did not buffer without bound: its RSS grew by far less than
  // what the slow client asked it to send.
  long rss_after = rss_kib(worker);
  INFO("worker RSS " << rss_before << " KiB -> " << rss_after << " KiB");
  REQUIRE(rss_after - rss_before < 16 * 1024);
  // The neighbour never noticed.
  REQUIRE(reader.send_ping(5));
  REQUIRE(reader.recv_type(Message::Pong));
}

TEST_CASE("past the global connection cap the master answers ServerFull") {
  TempConfig cfg("[limits]\nmax_connections = 5\n");
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<TestClient>());
    REQUIRE(clients.back()->connect(srv.port()));
    REQUIRE(clients.back()->send_hello());
    REQUIRE(clients.back()->recv_type(Message::Welcome));
  }
  TestClient extra;
  REQUIRE(extra.connect(srv.port()));
  auto m = extra.recv();
  REQUIRE(m);
  REQUIRE(TestClient::envelope(*m)->msg_type() == Message::Error);
  REQUIRE(TestClient::envelope(*m)->msg_as_Error()->code() == ErrorCode::ServerFull);
  REQUIRE(extra.wait_closed());
  // One leaves, one more fits.
  clients.pop_back();
  REQUIRE(wait_until(
      [&] {
        TestClient again;
        if (!again.connect(srv.port()) || !again.send_hello()) return false;
        return bool(again.recv_type(Message::Welcome, 1s));
      },
      10s));
}
