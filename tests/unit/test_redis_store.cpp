// Unit tests of server/store/redis_store: the Redis player store against a
// real redis-server (Debian's). Each test case starts its own server, bound
// to 127.0.0.1 on a free port, with its own mkdtemp directory and no
// persistence; it is stopped by its pid and the directory removed when the
// case ends. The child gets PR_SET_PDEATHSIG, so a crashed test leaves no
// server behind. Every loop and every wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/player_store.h"
#include "store/redis_store.h"

using namespace skirmish::store;
using Catch::Matchers::Contains;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// hiredis writes with write(2); the server ignores SIGPIPE, and so must the
// test, or a write to a killed redis-server would end it.
const bool kSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

// A port the kernel had free a moment ago on 127.0.0.1 (0 if none).
uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// A raw hiredis connection: hand edits, DEBUG SLEEP, probes.
class Raw {
 public:
  Raw(uint16_t port, int timeout_ms, const std::string& password = "") {
    const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c_ && !c_->err) redisSetTimeout(c_, tv);
    if (!password.empty()) cmd({"AUTH", password});
  }
  ~Raw() {
    if (c_) redisFree(c_);
  }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  // The reply as text (a status, a string, an error's message, an integer),
  // or "(io error)".
  std::string cmd(std::vector<std::string> args) {
    if (!c_ || c_->err) return "(io error)";
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r) return "(io error)";
    std::string out;
    switch (r->type) {
      case REDIS_REPLY_STATUS:
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_ERROR: out.assign(r->str, r->len); break;
      case REDIS_REPLY_INTEGER: out = std::to_string(r->integer); break;
      case REDIS_REPLY_NIL: out = "(nil)"; break;
      default: out = "(array)"; break;
    }
    freeReplyObject(r);
    return out;
  }

 private:
  redisContext* c_ = nullptr;
};

// One redis-server of our own.
class RedisServer {
 public:
  explicit RedisServer(std::string password = "") : password_(std::move(password)) {
    char tmpl[] = "/tmp/skirmish-redis-XXXXXX";
    if (mkdtemp(tmpl)) dir_ = tmpl;
  }
  ~RedisServer() {
    stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // On `port`, or (0) on a free one. A port taken meanwhile is tried again
  // (another free port, or the same one), up to 5 times. True once it is
  // this server that answers.
  bool start(uint16_t port = 0) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      const uint16_t p = port ? port : free_port();
      if (p && spawn(p)) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // SIGTERM, SIGKILL if it has not gone after 5 s; reaped either way.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    kill_hard();
  }

  void kill_hard() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  uint16_t port() const { return port_; }
  RedisAddress address(uint32_t db = 0, std::string password = "") const {
    RedisAddress a;
    a.port = port_;
    a.db = db;
    a.password = std::move(password);
    return a;
  }
  std::string log() const {
    std::ifstream in(dir_ + "/redis.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  bool spawn(uint16_t port) {
    if (dir_.empty()) return false;
    std::vector<std::string> args = {"/usr/bin/redis-server", "--port", std::to_string(port),
                                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                     "--dir", dir_, "--daemonize", "no", "--logfile",
                                     dir_ + "/redis.log", "--enable-debug-command", "local"};
    if (!password_.empty()) args.insert(args.end(), {"--requirepass", password_});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (devnull >= 0) close(devnull);
    if (pid < 0) return false;
    pid_ = pid;
    port_ = port;
    // Ready when INFO on that port names our pid (not another server's).
    const std::string mine = "process_id:" + std::to_string(pid) + "\r\n";
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) {  // exited: the port was taken, most likely
        pid_ = -1;
        return false;
      }
      Raw r(port, 200, password_);
      if (r.cmd({"INFO", "server"}).find(mine) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    kill_hard();
    return false;
  }

  std::string password_, dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

void start_or_fail(RedisServer& srv, uint16_t port = 0) {
  const bool ok = srv.start(port);
  if (!ok) WARN("redis-server did not start; its log:\n" << srv.log());
  REQUIRE(ok);
}

PlayerRecord make(std::string account, float rating, float rd = 200, float vol = 0.06f,
                  uint32_t matches = 0, int64_t last_seen_ms = 0) {
  PlayerRecord r;
  r.account = std::move(account);
  r.rating = rating;
  r.rd = rd;
  r.volatility = vol;
  r.matches = matches;
  r.last_seen_ms = last_seen_ms;
  return r;
}

// Bit for bit (so -0 and +0 differ).
bool same(const PlayerRecord& a, const PlayerRecord& b) {
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
  };
  return a.account == b.account && bits(a.rating) == bits(b.rating) && bits(a.rd) == bits(b.rd) &&
         bits(a.volatility) == bits(b.volatility) && a.matches == b.matches &&
         a.last_seen_ms == b.last_seen_ms;
}

bool save1(RedisStore& s, const PlayerRecord& r, std::string* err) {
  return s.save(std::span<const PlayerRecord>(&r, 1), err);
}

}  // namespace

TEST_CASE("parse_redis_url accepts host, port and db, and refuses the rest") {
  RedisAddress a;
  a.password = "kept";
  std::string err;
  SECTION("accepted") {
    REQUIRE(parse_redis_url("redis://127.0.0.1", &a, &err));
    CHECK((a.host == "127.0.0.1" && a.port == 6379 && a.db == 0));
    REQUIRE(parse_redis_url("redis://10.1.2.3:6380/3", &a, &err));
    CHECK((a.host == "10.1.2.3" && a.port == 6380 && a.db == 3));
    REQUIRE(parse_redis_url("redis://cache-1.internal/", &a, &err));
    CHECK((a.host == "cache-1.internal" && a.port == 6379 && a.db == 0));
    REQUIRE(parse_redis_url("redis://[::1]:7000/15", &a, &err));
    CHECK((a.host == "::1" && a.port == 7000 && a.db == 15));
    REQUIRE(parse_redis_url("redis://[fe80::1]", &a, &err));
    CHECK((a.host == "fe80::1" && a.port == 6379));
    REQUIRE(parse_redis_url("redis://h:65535/4294967295", &a, &err));
    CHECK((a.port == 65535 && a.db == 4294967295u));
    CHECK(a.password == "kept");
  }
  SECTION("refused, with a reason, *out untouched") {
    const char* bad[][2] = {
        {"", "redis://"},
        {"http://h", "redis://"},
        {"rediss://h", "redis://"},
        {"redis://", "no host"},
        {"redis://:6379", "no host"},
        {"redis://h:", "empty port"},
        {"redis://[::1]:", "empty port"},
        {"redis://h:0", "port"},
        {"redis://h:65536", "port"},
        {"redis://h:12a", "port"},
        {"redis://h:+1", "port"},
        {"redis://h/x", "database number"},
        {"redis://h/1/2", "database number"},
        {"redis://h/-1", "database number"},
        {"redis://h/4294967296", "database number"},
        {"redis://h?db=1", "host"},
        {"redis://ho st", "host"},
        {"redis://::1:6379", "IPv6"},
        {"redis://[::1", "']'"},
        {"redis://[nope]:1", "IPv6"},
        {"redis://[::1]x", "junk"},
    };
    for (const auto& [url, why] : bad) {
      INFO(url);
      err.clear();
      CHECK_FALSE(parse_redis_url(url, &a, &err));
      CHECK_THAT(err, Contains(why));
      CHECK(err.find('\n') == std::string::npos);
    }
    CHECK((a.host == "127.0.0.1" && a.port == 6379 && a.db == 0 && a.password == "kept"));
  }
  SECTION("a password in the URL is refused and not echoed") {
    for (const char* url : {"redis://:topsecret@h", "redis://user:topsecret@h:1/0", "redis://topsecret@h"}) {
      INFO(url);
      CHECK_FALSE(parse_redis_url(url, &a, &err));
      CHECK_THAT(err, Contains("password"));
      CHECK(err.find("topsecret") == std::string::npos);
    }
  }
}

TEST_CASE("records read back bit for bit, as one hash per player") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 2000, "t:");
  CHECK(std::string(store->kind()) == "redis");
  std::vector<PlayerRecord> recs = {
      make("alice", 1500.5f, 350, 0.06f, 3, 1700000000123),
      make("edge-max", FLT_MAX, kMinRd, FLT_MIN, std::numeric_limits<uint32_t>::max(),
           std::numeric_limits<int64_t>::max()),
      make("edge-min", -FLT_MAX, kMaxRd, std::numeric_limits<float>::denorm_min(), 0,
           std::numeric_limits<int64_t>::min()),
      make("neg-zero", -0.0f, std::nextafter(kMinRd, 100.f), std::nextafter(1.f, 2.f), 1, -1),
  };
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> rating(-5000, 5000), rd(kMinRd, kMaxRd), vol(1e-6f, 2);
  for (int i = 0; i < 500; ++i)
    recs.push_back(make("p" + std::to_string(i), rating(rng), rd(rng), vol(rng), rng(), int64_t(rng()) << 20));
  std::string err;
  REQUIRE(store->save(recs, &err));
  for (const PlayerRecord& r : recs) {
    PlayerRecord got;
    INFO(r.account);
    REQUIRE(store->load(r.account, &got, &err) == LoadResult::Found);
    CHECK(same(got, r));
  }
  Raw raw(srv.port(), 2000);
  CHECK(raw.cmd({"HGET", "t:player:alice", "rating"}) == "1500.5");
  CHECK(raw.cmd({"HGET", "t:player:alice", "last_seen_ms"}) == "1700000000123");
  CHECK(raw.cmd({"HLEN", "t:player:alice"}) == "5");
  CHECK(store->ping(&err));
}

TEST_CASE("a missing player is NotFound, an invalid account fails without asking Redis") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 2000, "t:");
  PlayerRecord out = make("untouched", 1234);
  std::string err;
  CHECK(store->load("nobody", &out, &err) == LoadResult::NotFound);
  CHECK(out.account == "untouched");
  for (std::string bad : {std::string(), std::string("a b"), std::string(65, 'x'), std::string("caf\xC3\xA9")}) {
    err.clear();
    CHECK(store->load(bad, &out, &err) == LoadResult::Failed);
    CHECK_THAT(err, Contains("invalid account"));
  }
  CHECK(out.account == "untouched");
}

TEST_CASE("save upserts: the last write wins, also within a batch") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 2000, "t:");
  std::string err;
  REQUIRE(save1(*store, make("alice", 1000, 300, 0.05f, 1, 10), &err));
  REQUIRE(save1(*store, make("alice", 1100, 250, 0.07f, 2, 20), &err));
  PlayerRecord got;
  REQUIRE(store->load("alice", &got, &err) == LoadResult::Found);
  CHECK(same(got, make("alice", 1100, 250, 0.07f, 2, 20)));
  const std::vector<PlayerRecord> batch = {make("alice", 1, 100, 0.1f, 3, 30), make("bob", 2),
                                           make("alice", 4, 110, 0.2f, 4, 40)};
  REQUIRE(store->save(batch, &err));
  REQUIRE(store->load("alice", &got, &err) == LoadResult::Found);
  CHECK(same(got, batch[2]));
  // Other fields a tool added are left alone and ignored.
  Raw raw(srv.port(), 2000);
  CHECK(raw.cmd({"HSET", "t:player:alice", "note", "vip"}) == "1");
  REQUIRE(store->load("alice", &got, &err) == LoadResult::Found);
  CHECK(same(got, batch[2]));
}

TEST_CASE("a batch with one bad record writes nothing") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 2000, "t:");
  std::string err;
  const std::vector<PlayerRecord> batch = {make("good1", 1500), make("bad", 1500, 10), make("good2", 1500)};
  CHECK_FALSE(store->save(batch, &err));
  CHECK_THAT(err, Contains("\"bad\"") && Contains("rd 10") && Contains("nothing written"));
  const std::vector<PlayerRecord> bad_account = {make("ok", 1500), make("a b", 1500)};
  CHECK_FALSE(store->save(bad_account, &err));
  CHECK_THAT(err, Contains("a\\x20b"));
  PlayerRecord got;
  for (const char* a : {"good1", "good2", "ok"}) CHECK(store->load(a, &got, &err) == LoadResult::NotFound);
  CHECK(store->save({}, &err));
}

TEST_CASE("a key that is not a hash refuses the whole batch before anything is written") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 2000, "t:");
  Raw raw(srv.port(), 2000);
  REQUIRE(raw.cmd({"SET", "t:player:carol", "a string"}) == "OK");
  std::string err;
  const std::vector<PlayerRecord> batch = {make("dave", 1500), make("carol", 1500)};
  CHECK_FALSE(store->save(batch, &err));
  CHECK_THAT(err, Contains("\"carol\"") && Contains("not a hash"));
  PlayerRecord got;
  CHECK(store->load("dave", &got, &err) == LoadResult::NotFound);
  CHECK(store->load("carol", &got, &err) == LoadResult::Failed);
  CHECK_THAT(err, Contains("WRONGTYPE"));
  CHECK(save1(*store, make("dave", 1600), &err));  // and the store goes on
}

TEST_CASE("a password: without it or a wrong one Failed, with it works") {
  RedisServer srv("s3cret-pw");
  start_or_fail(srv);
  std::string err;
  PlayerRecord got;
  auto none = RedisStore::create(srv.address(), 2000, "t:");
  CHECK(none->load("alice", &got, &err) == LoadResult::Failed);
  CHECK_THAT(err, Contains("NOAUTH"));
  CHECK_FALSE(save1(*none, make("alice", 1500), &err));
  CHECK_FALSE(none->ping(&err));

  auto wrong = RedisStore::create(srv.address(0, "not-it"), 2000, "t:");
  CHECK(wrong->load("alice", &got, &err) == LoadResult::Failed);
  CHECK_THAT(err, Contains("AUTH"));
  CHECK(err.find("not-it") == std::string::npos);

  auto right = RedisStore::create(srv.address(0, "s3cret-pw"), 2000, "t:");
  REQUIRE(save1(*right, make("alice", 1500), &err));
  CHECK(right->load("alice", &got, &err) == LoadResult::Found);
  CHECK(right->ping(&err));
}

TEST_CASE("the db index and the key prefix isolate stores") {
  RedisServer srv;
  start_or_fail(srv);
  std::string err;
  PlayerRecord got;
  auto db1 = RedisStore::create(srv.address(1), 2000, "t:");
  auto db2 = RedisStore::create(srv.address(2), 2000, "t:");
  auto other_prefix = RedisStore::create(srv.address(1), 2000, "u:");
  REQUIRE(save1(*db1, make("alice", 1500), &err));
  CHECK(db1->load("alice", &got, &err) == LoadResult::Found);
  CHECK(db2->load("alice", &got, &err) == LoadResult::NotFound);
  CHECK(other_prefix->load("alice", &got, &err) == LoadResult::NotFound);
  Raw raw(srv.port(), 2000);
  CHECK(raw.cmd({"EXISTS", "t:player:alice"}) == "0");  // db 0
  CHECK(raw.cmd({"SELECT", "1"}) == "OK");
  CHECK(raw.cmd({"EXISTS", "t:player:alice"}) == "1");

  auto db99 = RedisStore::create(srv.address(99), 2000, "t:");  // Redis has 16
  CHECK(db99->load("alice", &got, &err) == LoadResult::Failed);
  CHECK_THAT(err, Contains("SELECT") && Contains("/99"));
}

TEST_CASE("Redis killed: Failed, no crash, Redis back on the port: the same store works again") {
  RedisServer srv;
  start_or_fail(srv);
  const uint16_t port = srv.port();
  auto store = RedisStore::create(srv.address(), 500, "t:");
  std::string err;
  PlayerRecord got;
  REQUIRE(save1(*store, make("alice", 1500), &err));
  srv.kill_hard();
  for (int i = 0; i < 3; ++i) {  // the lost connection, then refused connects
    err.clear();
    CHECK(store->load("alice", &got, &err) == LoadResult::Failed);
    CHECK_FALSE(err.empty());
    CHECK_FALSE(save1(*store, make("alice", 1600), &err));
    CHECK_FALSE(store->ping(&err));
  }
  start_or_fail(srv, port);
  CHECK(store->ping(&err));
  CHECK(store->load("alice", &got, &err) == LoadResult::NotFound);  // no persistence
  REQUIRE(save1(*store, make("alice", 1700), &err));
  REQUIRE(store->load("alice", &got, &err) == LoadResult::Found);
  CHECK(got.rating == 1700);
}

TEST_CASE("created while Redis is down: connects once it is up") {
  const uint16_t port = free_port();
  REQUIRE(port != 0);
  RedisAddress addr;
  addr.port = port;
  auto store = RedisStore::create(addr, 500, "t:");
  std::string err;
  PlayerRecord got;
  CHECK(store->load("alice", &got, &err) == LoadResult::Failed);
  CHECK_THAT(err, Contains("connect"));
  RedisServer srv;
  start_or_fail(srv, port);
  CHECK(store->load("alice", &got, &err) == LoadResult::NotFound);
}

TEST_CASE("a hash edited by hand: Failed naming the account and the field") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 2000, "t:");
  Raw raw(srv.port(), 2000);
  std::string err;
  const PlayerRecord bob = make("bob", 1500, 100, 0.06f, 1, 5);
  struct Edit {
    const char* field;
    const char* value;
    const char* said;
  };
  const Edit edits[] = {
      {"rating", "abc", "field rating: \"abc\" is not a finite float"},
      {"rating", " 1500", "field rating"},
      {"rating", "inf", "field rating"},
      {"rating", "1e39", "field rating"},  // beyond a float
      {"rd", "500", "rd 500 outside"},
      {"volatility", "0", "volatility 0"},
      {"matches", "-1", "field matches"},
      {"matches", "4294967296", "field matches"},
      {"matches", "1.5", "field matches"},
      {"last_seen_ms", "9223372036854775808", "field last_seen_ms"},
      {"last_seen_ms", "", "field last_seen_ms"},
  };
  for (const Edit& e : edits) {
    INFO(e.field << " = " << e.value);
    REQUIRE(save1(*store, bob, &err));
    REQUIRE(raw.cmd({"HSET", "t:player:bob", e.field, e.value}) == "0");
    PlayerRecord out = make("untouched", 1);
    CHECK(store->load("bob", &out, &err) == LoadResult::Failed);
    CHECK_THAT(err, Contains("\"bob\"") && Contains(e.said));
    CHECK(out.account == "untouched");
  }
  REQUIRE(raw.cmd({"HDEL", "t:player:bob", "volatility"}) == "1");
  PlayerRecord out;
  CHECK(store->load("bob", &out, &err) == LoadResult::Failed);
  CHECK_THAT(err, Contains("\"bob\"") && Contains("field volatility is missing"));
  REQUIRE(save1(*store, bob, &err));  // HSET writes every field again
  CHECK(store->load("bob", &out, &err) == LoadResult::Found);
  CHECK(same(out, bob));
}

TEST_CASE("Redis stuck (DEBUG SLEEP 2) with timeout_ms 300: Failed, not a hang, then works again") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 300, "t:");
  std::string err;
  REQUIRE(save1(*store, make("alice", 1500), &err));  // connected before the sleep
  std::string slept;
  std::thread sleeper([&] {
    Raw r(srv.port(), 5000);
    slept = r.cmd({"DEBUG", "SLEEP", "2"});
  });
  // Until a probe gets no answer in 100 ms: the server is asleep.
  bool asleep = false;
  for (const auto deadline = Clock::now() + 3s; !asleep && Clock::now() < deadline;) {
    Raw probe(srv.port(), 100);
    asleep = probe.cmd({"PING"}) != "PONG";
  }
  PlayerRecord got;
  const LoadResult during = store->load("alice", &got, &err);
  const std::string during_err = err;
  sleeper.join();
  REQUIRE(asleep);
  CHECK(slept == "OK");
  CHECK(during == LoadResult::Failed);
  CHECK_THAT(during_err, Contains("timed out"));
  CHECK(store->load("alice", &got, &err) == LoadResult::Found);
}

TEST_CASE("4 threads share one store, mixing load and save") {
  RedisServer srv;
  start_or_fail(srv);
  auto store = RedisStore::create(srv.address(), 2000, "t:");
  constexpr int kThreads = 4, kRounds = 200;
  std::atomic<int> failures{0}, mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string mine = "thread" + std::to_string(t);
      uint32_t last = 0;  // 0: not saved yet
      std::string err;
      for (int i = 1; i <= kRounds; ++i) {
        if (i % 3 == 1) {
          const std::vector<PlayerRecord> batch = {make(mine, float(i), 100, 0.06f, uint32_t(i)),
                                                   make("shared", float(t), 100, 0.06f, uint32_t(t))};
          if (store->save(batch, &err)) last = uint32_t(i);
          else ++failures;
        } else {
          PlayerRecord got;
          const LoadResult r = store->load(i % 2 ? mine : "shared", &got, &err);
          if (r == LoadResult::Failed) ++failures;
          if (i % 2 && r == LoadResult::Found && got.matches != last) ++mismatches;
          if (i % 2 && (r == LoadResult::NotFound) != (last == 0)) ++mismatches;
          if (!(i % 2) && r == LoadResult::Found && got.matches >= uint32_t(kThreads)) ++mismatches;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(mismatches == 0);
  std::string err;
  PlayerRecord got;
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(store->load("thread" + std::to_string(t), &got, &err) == LoadResult::Found);
    CHECK(got.matches == 199);  // the last i with i % 3 == 1
  }
}
