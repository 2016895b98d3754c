// Identity and kept ratings end to end ([auth], [store]): the real
// skirmish-server over real sockets, with HS256 tokens signed here (OpenSSL)
// and a real SQLite file in a directory of the test's own.
//
// - [auth] required: a Hello without a token, a forged, an expired or a
//   wrong-audience one gets Error(Unauthorized) and a close; a good one
//   gets Welcome naming its account.
// - Ratings kept: four accounts play a match; the store holds their new
//   ratings; after a restart (a new server on the same file) each Welcome
//   and MatchFound carries the rating the last MatchEnd gave.
// - The store broken under a running server (its table dropped): a Hello
//   with an account gets Error(Unavailable), nothing crashes, anonymous
//   players still play.
// - [fleet] redis: two instances on one real redis-server share accounts:
//   the ratings a match gave at one are the ratings Welcome says at the
//   other; with Redis killed a Hello with an account gets Unavailable and
//   anonymous players still play; when it is back, accounts work again.
// - A bad key source or store path stops the start: exit 2, one line.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "auth/base64url.h"
#include "store/sqlite_store.h"
#include "tests/support/bots.h"
#include "tests/support/redis_server.h"
#include "tests/support/server_process.h"
#include "tests/support/test_client.h"
#include "tests/support/uv_loop.h"

using namespace skirmish;
using namespace skirmish::test;
using proto::Message;

namespace {

const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

const std::string kSecret = "an-hs256-secret-of-more-than-32-bytes-for-tests";

std::string b64(const std::string& s) { return auth::base64url_encode(s); }

// An HS256 JWT for `sub`, expiring `exp_in_s` from now.
std::string token(const std::string& sub, long exp_in_s = 600, const std::string& aud = "skirmish",
                  const std::string& secret = kSecret) {
  const std::string head = b64(R"({"alg":"HS256","typ":"JWT"})");
  const std::string body = b64(R"({"iss":"studio","aud":")" + aud + R"(","sub":")" + sub + R"(","exp":)" +
                               std::to_string(long(std::time(nullptr)) + exp_in_s) + "}");
  const std::string input = head + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), int(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &len);
  return input + "." + b64(std::string(reinterpret_cast<char*>(mac), len));
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/skirmish-identity-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() {
    for (const char* f : {"/players.db", "/players.db-wal", "/players.db-shm", "/secret"})
      unlink((path + f).c_str());
    rmdir(path.c_str());
  }
};

// GameConfig (loadtest.toml, short matches) with [auth] and [store] added.
struct IdentityConfig {
  GameConfig game;
  // `redis`: a [fleet] redis URL; then the store is Redis, not the file.
  IdentityConfig(const TempDir& dir, bool required = true, const std::string& redis = "")
      : game({{"max_frame_bytes_handshake", "4096"}, {"resume_grace_ms", "2000"}}) {
    std::ofstream(dir.path + "/secret") << kSecret << "\n";
    std::ofstream(game.path, std::ios::app)
        << "\n[auth]\nrequired = " << (required ? "true" : "false") << "\nissuer = \"studio\"\n"
        << "audience = \"skirmish\"\nhs256_secret_file = \"" << dir.path << "/secret\"\n"
        << "\n[store]\npath = \"" << dir.path << "/players.db\"\n";
    if (!redis.empty()) std::ofstream(game.path, std::ios::app) << "\n[fleet]\nredis = \"" << redis << "\"\n";
  }
  const std::string& path() const { return game.path; }
};

proto::ErrorCode error_code(const std::optional<std::vector<uint8_t>>& body) {
  REQUIRE(body.has_value());
  const auto* e = TestClient::envelope(*body)->msg_as_Error();
  REQUIRE(e != nullptr);
  return e->code();
}

}  // namespace

TEST_CASE("[auth] required: no token, a forged, expired or wrong-audience one are refused, a good one is an account") {
  TempDir dir;
  IdentityConfig cfg(dir);
  ServerProcess srv({"--workers", "2"}, cfg.path());
  REQUIRE(srv.wait_ready());
  const std::string good = token("acct-1");
  std::string forged = good;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  for (const std::string& bad : {std::string(), forged, token("acct-1", -3600), token("acct-1", 600, "other"),
                                 token("acct-1", 600, "skirmish", "another-secret-of-more-than-32-bytes!!"),
                                 std::string("not.a.jwt"), token("has space")}) {
    INFO("token " << bad);
    TestClient c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send_hello("p", proto::ProtocolVersion::Current, bad));
    REQUIRE(error_code(c.recv_type(Message::Error)) == proto::ErrorCode::Unauthorized);
    REQUIRE(c.wait_closed());
  }
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello("p", proto::ProtocolVersion::Current, good));
  auto w = c.recv_type(Message::Welcome);
  REQUIRE(w.has_value());
  const auto* welcome = TestClient::envelope(*w)->msg_as_Welcome();
  REQUIRE(welcome->account() != nullptr);
  CHECK(welcome->account()->str() == "acct-1");
  CHECK(welcome->rating() == 1500.0f);
  // Counted: the seven refusals above, summed over the workers (each
  // publishes its count on its heartbeat, so the sum is awaited).
  const auto refused = [&] {
    const std::string text = http_get(srv.admin_port(), "/metrics");
    const std::regex sample("\nskirmish_auth_refused_total\\{[^}]*\\} ([0-9]+)");
    long sum = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), sample); it != std::sregex_iterator(); ++it)
      sum += std::stol((*it)[1]);
    return sum;
  };
  REQUIRE(wait_until([&] { return refused() == 7; }, 10s));
}

TEST_CASE("[store] ratings of accounts survive a restart, anonymous players are not kept") {
  TempDir dir;
  IdentityConfig cfg(dir, /*required=*/false);
  std::map<uint32_t, float> after;  // player id -> rating after the match
  std::map<std::string, float> by_account;
  {
    ServerProcess srv({"--workers", "2"}, cfg.path());
    REQUIRE(srv.wait_ready());
    Loop loop;
    Round r;
    for (int i = 0; i < 3; ++i)
      r.bots.push_back(std::make_unique<Bot>(loop.get(), "k" + std::to_string(i), false, token("acct-" + std::to_string(i))));
    r.bots.push_back(std::make_unique<Bot>(loop.get(), "anon"));  // no token: anonymous, allowed here
    for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", srv.port()) == 0);
    REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 60s));
    for (const Result& res : r.bots[0]->results) after[res.player_id] = res.after;
    for (auto& b : r.bots) {
      REQUIRE(b->errors.empty());
      if (b->account.empty()) continue;
      by_account[b->account] = after.at(b->c->player_id());
    }
    REQUIRE(by_account.size() == 3);
    REQUIRE(r.bots[3]->account.empty());
    // The ratings moved (a rated match), and the store has them: read its
    // file as the next start will.
    std::string err;
    auto st = store::SqliteStore::open(dir.path + "/players.db", 2000, &err);
    INFO(err);
    REQUIRE(st);
    REQUIRE(wait_until([&] {
      for (auto& [acct, rating] : by_account) {
        store::PlayerRecord rec;
        if (st->load(acct, &rec, &err) != store::LoadResult::Found || rec.matches != 1 || rec.rating != rating)
          return false;
      }
      return true;
    }, 10s));
    bool moved = false;
    for (auto& [acct, rating] : by_account) moved |= rating != 1500.0f;
    REQUIRE(moved);
    srv.signal(SIGTERM);
    REQUIRE(srv.wait_exit(40s) == 0);
  }
  ServerProcess again({"--workers", "2"}, cfg.path());
  REQUIRE(again.wait_ready());
  Loop loop;
  Round r;
  for (int i = 0; i < 3; ++i)
    r.bots.push_back(std::make_unique<Bot>(loop.get(), "k" + std::to_string(i), false, token("acct-" + std::to_string(i))));
  r.bots.push_back(std::make_unique<Bot>(loop.get(), "anon"));
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", again.port()) == 0);
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.matches_found >= 1; }); }, 30s));
  for (auto& b : r.bots) {
    INFO(b->account);
    const float want = b->account.empty() ? 1500.0f : by_account.at(b->account);
    CHECK(b->welcome_rating == want);
    REQUIRE(b->found_rating.size() == 1);
    CHECK(b->found_rating[0] == want);
  }
}

TEST_CASE("[store] broken under a running server: accounts get Unavailable, anonymous players play on") {
  TempDir dir;
  IdentityConfig cfg(dir, /*required=*/false);
  ServerProcess srv({"--workers", "1"}, cfg.path());
  REQUIRE(srv.wait_ready());
  {
    TestClient c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send_hello("p", proto::ProtocolVersion::Current, token("acct-x")));
    REQUIRE(c.recv_type(Message::Welcome).has_value());
  }
  // The table gone under the server (an operator's mistake, a restore of
  // the wrong file): the worker's next read fails.
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((dir.path + "/players.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DROP TABLE players", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello("p", proto::ProtocolVersion::Current, token("acct-y")));
  REQUIRE(error_code(c.recv_type(Message::Error)) == proto::ErrorCode::Unavailable);
  REQUIRE(c.wait_closed());
  TestClient anon;
  REQUIRE(anon.connect(srv.port()));
  REQUIRE(anon.send_hello("anon"));
  REQUIRE(anon.recv_type(Message::Welcome).has_value());
  REQUIRE(srv.running());
  REQUIRE(srv.wait_log("players store: a read failed"));
}

TEST_CASE("a key source or store path that does not work stops the start: exit 2, one line naming the key") {
  TempDir dir;
  IdentityConfig cfg(dir);
  std::string text;
  {
    std::ifstream in(cfg.path());
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  int variants = 0;
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const size_t at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    const std::string p = cfg.path() + ".variant-" + std::to_string(variants++) + ".toml";
    std::ofstream(p, std::ios::trunc) << t;
    return p;
  };
  unsetenv("SKIRMISH_TEST_NO_SUCH_SECRET");
  struct Case {
    std::string path, needle;
  };
  const std::vector<Case> cases{
      {with("hs256_secret_file = \"" + dir.path + "/secret\"", "hs256_secret_env = \"SKIRMISH_TEST_NO_SUCH_SECRET\""),
       "auth.hs256_secret_env = \"SKIRMISH_TEST_NO_SUCH_SECRET\": the variable is not set"},
      {with(dir.path + "/secret", dir.path + "/missing"), "auth.hs256_secret_file"},
      {with(dir.path + "/players.db", dir.path + "/no/such/dir/players.db"), "store.path"},
  };
  for (const Case& c : cases) {
    auto r = run_server({"--config", c.path, "--port", "0", "--admin-port", "0"});
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(c.needle) != std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    unlink(c.path.c_str());
  }
}

TEST_CASE("[fleet] two instances on one Redis share accounts' ratings, and survive Redis going away") {
  RedisServer redis;
  REQUIRE(redis.up());
  TempDir dir_a, dir_b;
  IdentityConfig cfg_a(dir_a, /*required=*/false, redis.url(3));
  IdentityConfig cfg_b(dir_b, /*required=*/false, redis.url(3));
  ServerProcess a({"--workers", "2"}, cfg_a.path());
  ServerProcess b({"--workers", "1"}, cfg_b.path());
  REQUIRE(a.wait_ready());
  REQUIRE(b.wait_ready());
  std::map<std::string, float> by_account;
  {
    Loop loop;
    Round r;
    for (int i = 0; i < 4; ++i)
      r.bots.push_back(std::make_unique<Bot>(loop.get(), "f" + std::to_string(i), false, token("fleet-" + std::to_string(i))));
    for (auto& bot : r.bots) REQUIRE(bot->c->connect("127.0.0.1", a.port()) == 0);
    REQUIRE(loop.run_until([&] { return all(r, [](const Bot& x) { return x.match_ends >= 1; }); }, 60s));
    std::map<uint32_t, float> after;
    for (const Result& res : r.bots[0]->results) after[res.player_id] = res.after;
    for (auto& bot : r.bots) by_account[bot->account] = after.at(bot->c->player_id());
  }
  REQUIRE(by_account.size() == 4);
  // At the other instance: each Welcome carries what the match at the
  // first gave (the write is in the first's threadpool: awaited).
  for (auto& [acct, rating] : by_account) {
    INFO(acct);
    const float want = rating;
    REQUIRE(wait_until([&] {
      TestClient c;
      if (!c.connect(b.port()) || !c.send_hello("again", proto::ProtocolVersion::Current, token(acct))) return false;
      auto w = c.recv_type(Message::Welcome);
      return w && TestClient::envelope(*w)->msg_as_Welcome()->rating() == want;
    }, 10s));
  }
  // Redis gone: accounts are refused (Unavailable), anonymous players play.
  redis.stop();
  TestClient acct;
  REQUIRE(acct.connect(b.port()));
  REQUIRE(acct.send_hello("p", proto::ProtocolVersion::Current, token("fleet-0")));
  REQUIRE(error_code(acct.recv_type(Message::Error)) == proto::ErrorCode::Unavailable);
  TestClient anon;
  REQUIRE(anon.connect(b.port()));
  REQUIRE(anon.send_hello("anon"));
  REQUIRE(anon.recv_type(Message::Welcome).has_value());
  REQUIRE(a.running());
  REQUIRE(b.running());
}
