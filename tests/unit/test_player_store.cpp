// Unit tests of server/store: the SQLite player store. Each test case works
// in its own fresh directory under /tmp (mkdtemp), removed at the end. The
// concurrency cases use real processes (fork, each opening its own store on
// the same file) and real threads (sharing one store); every loop is bounded.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/player_store.h"
#include "store/sqlite_store.h"

using namespace skirmish::store;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/skirmish-store-XXXXXX";
    if (mkdtemp(tmpl)) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string file(const char* name) const { return path + "/" + name; }
};

PlayerRecord make(std::string account, float rating, float rd, float vol, uint32_t matches,
                  int64_t last_seen_ms) {
  PlayerRecord r;
  r.account = std::move(account);
  r.rating = rating;
  r.rd = rd;
  r.volatility = vol;
  r.matches = matches;
  r.last_seen_ms = last_seen_ms;
  return r;
}

bool same(const PlayerRecord& a, const PlayerRecord& b) {
  return a.account == b.account && a.rating == b.rating && a.rd == b.rd &&
         a.volatility == b.volatility && a.matches == b.matches && a.last_seen_ms == b.last_seen_ms;
}

// Runs SQL on the file with sqlite3 directly (a tool, or a hand, editing it).
void raw_sql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* msg = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  INFO((msg ? msg : ""));
  sqlite3_free(msg);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

std::unique_ptr<SqliteStore> open_ok(const std::string& path, uint32_t busy_ms = 1000) {
  std::string err;
  auto store = SqliteStore::open(path, busy_ms, &err);
  INFO(err);
  REQUIRE(store);
  return store;
}

}  // namespace

TEST_CASE("save then load gives back the exact record") {
  TempDir dir;
  REQUIRE(!dir.path.empty());
  auto store = open_ok(dir.file("players.db"));
  CHECK(std::string(store->kind()) == "sqlite");
  // Values that a float-through-text or float-through-float32 store would bend.
  const std::vector<PlayerRecord> records{
      make("alice", 1712.3456789f, 87.654321f, 0.0599960f, 42, 1700000000123),
      make("b!~", std::nextafter(1500.0f, 2000.0f), 30, 1e-7f, UINT32_MAX, INT64_MIN),
      make(std::string(kMaxAccountBytes, 'z'), -3.4e38f, 350, 3.4e38f, 0, INT64_MAX)};
  std::string err;
  REQUIRE(store->save(records, &err));
  for (const PlayerRecord& want : records) {
    PlayerRecord got;
    REQUIRE(store->load(want.account, &got, &err) == LoadResult::Found);
    CHECK(same(got, want));
  }
  CHECK(store->save({}, &err));  // an empty batch is fine
}

TEST_CASE("load of an unknown account is NotFound and leaves the output alone") {
  TempDir dir;
  auto store = open_ok(dir.file("players.db"));
  PlayerRecord out = make("sentinel", 1, 100, 0.5f, 7, 9);
  std::string err;
  CHECK(store->load("nobody", &out, &err) == LoadResult::NotFound);
  CHECK(same(out, make("sentinel", 1, 100, 0.5f, 7, 9)));
}

TEST_CASE("a second open of the same file sees what the first saved (a restart)") {
  TempDir dir;
  const std::string path = dir.file("players.db");
  const PlayerRecord rec = make("carol", 1623.5f, 120.25f, 0.061f, 12, 1234567);
  std::string err;
  {
    auto first = open_ok(path);
    REQUIRE(first->save(std::span(&rec, 1), &err));
  }
  auto second = open_ok(path);
  PlayerRecord got;
  REQUIRE(second->load("carol", &got, &err) == LoadResult::Found);
  CHECK(same(got, rec));
  // Two stores open at once on one file also see each other's commits.
  auto third = open_ok(path);
  const PlayerRecord dave = make("dave", 1400, 200, 0.06f, 1, 5);
  REQUIRE(third->save(std::span(&dave, 1), &err));
  REQUIRE(second->load("dave", &got, &err) == LoadResult::Found);
  CHECK(same(got, dave));
}

TEST_CASE("save overwrites an existing account, within a batch the last record wins") {
  TempDir dir;
  auto store = open_ok(dir.file("players.db"));
  std::string err;
  const PlayerRecord v1 = make("erin", 1500, 350, 0.06f, 0, 100);
  const PlayerRecord v2 = make("erin", 1550, 300, 0.059f, 1, 200);
  REQUIRE(store->save(std::span(&v1, 1), &err));
  REQUIRE(store->save(std::span(&v2, 1), &err));
  PlayerRecord got;
  REQUIRE(store->load("erin", &got, &err) == LoadResult::Found);
  CHECK(same(got, v2));

  const std::vector<PlayerRecord> batch{make("erin", 1600, 250, 0.058f, 2, 300),
                                        make("erin", 1650, 200, 0.057f, 3, 400)};
  REQUIRE(store->save(batch, &err));
  REQUIRE(store->load("erin", &got, &err) == LoadResult::Found);
  CHECK(same(got, batch[1]));
}

TEST_CASE("a batch with one bad record saves nothing and names the account") {
  TempDir dir;
  auto store = open_ok(dir.file("players.db"));
  const PlayerRecord before = make("frank", 1500, 350, 0.06f, 0, 1);
  std::string err;
  REQUIRE(store->save(std::span(&before, 1), &err));

  struct Bad {
    PlayerRecord record;
    const char* in_err;
  };
  const std::vector<Bad> bads{
      {make("", 1500, 350, 0.06f, 0, 0), "empty account"},
      {make(std::string(kMaxAccountBytes + 1, 'x'), 1500, 350, 0.06f, 0, 0), "longer than 64"},
      {make("has space", 1500, 350, 0.06f, 0, 0), "\"has\\x20space\""},
      {make("tab\there", 1500, 350, 0.06f, 0, 0), "\"tab\\x09here\""},
      {make("caf\xC3\xA9", 1500, 350, 0.06f, 0, 0), "\"caf\\xC3\\xA9\""},
      {make("nan-rating", NAN, 350, 0.06f, 0, 0), "\"nan-rating\""},
      {make("inf-rd", 1500, INFINITY, 0.06f, 0, 0), "\"inf-rd\""},
      {make("low-rd", 1500, 29.9f, 0.06f, 0, 0), "\"low-rd\": rd 29.8"},
      {make("nan-vol", 1500, 350, NAN, 0, 0), "\"nan-vol\""},
      {make("zero-vol", 1500, 350, 0, 0, 0), "\"zero-vol\""},
  };
  for (const Bad& bad : bads) {
    const std::vector<PlayerRecord> batch{make("frank", 1700, 100, 0.05f, 9, 2),
                                          make("grace", 1600, 100, 0.05f, 3, 2), bad.record};
    err.clear();
    CHECK_FALSE(store->save(batch, &err));
    INFO(err);
    CHECK(err.find(bad.in_err) != std::string::npos);
    CHECK(err.find('\n') == std::string::npos);
    PlayerRecord got;
    REQUIRE(store->load("frank", &got, &err) == LoadResult::Found);
    CHECK(same(got, before));
    CHECK(store->load("grace", &got, &err) == LoadResult::NotFound);
  }
}

TEST_CASE("a save against a write lock held elsewhere fails at BEGIN within busy_timeout") {
  TempDir dir;
  const std::string path = dir.file("players.db");
  auto store = open_ok(path, 50);
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  const PlayerRecord rec = make("heidi", 1500, 350, 0.06f, 0, 1);
  std::string err;
  CHECK_FALSE(store->save(std::span(&rec, 1), &err));
  INFO(err);
  CHECK(err == path + ": save: begin: database is locked");
  PlayerRecord got;
  CHECK(store->load("heidi", &got, &err) == LoadResult::NotFound);  // WAL: readers do not wait
  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  CHECK(store->save(std::span(&rec, 1), &err));  // and the store is usable again
}

TEST_CASE("load of an invalid account is Failed") {
  TempDir dir;
  auto store = open_ok(dir.file("players.db"));
  PlayerRecord got;
  for (const std::string& bad :
       {std::string(), std::string(kMaxAccountBytes + 1, 'a'), std::string("a b"),
        std::string("nul\0x", 5), std::string("\x7F")}) {
    std::string err;
    CHECK(store->load(bad, &got, &err) == LoadResult::Failed);
    CHECK(err.find("invalid account") != std::string::npos);
  }
}

TEST_CASE("values edited by hand out of range are Failed, not used") {
  TempDir dir;
  const std::string path = dir.file("players.db");
  auto store = open_ok(path);
  std::string err;
  std::vector<PlayerRecord> recs;
  for (const char* a : {"rd-low", "rd-high", "neg-matches", "big-matches", "text-rating", "inf-rating",
                        "huge-vol", "neg-vol", "real-matches", "ok"})
    recs.push_back(make(a, 1500, 200, 0.06f, 5, 10));
  REQUIRE(store->save(recs, &err));
  raw_sql(path,
          "UPDATE players SET rd = 10 WHERE account = 'rd-low';"
          "UPDATE players SET rd = 351 WHERE account = 'rd-high';"
          "UPDATE players SET matches = -1 WHERE account = 'neg-matches';"
          "UPDATE players SET matches = 4294967296 WHERE account = 'big-matches';"
          "UPDATE players SET rating = 'abc' WHERE account = 'text-rating';"
          "UPDATE players SET rating = 1e999 WHERE account = 'inf-rating';"
          "UPDATE players SET volatility = 1e300 WHERE account = 'huge-vol';"
          "UPDATE players SET volatility = -0.5 WHERE account = 'neg-vol';"
          "UPDATE players SET matches = 2.5 WHERE account = 'real-matches';");
  for (const PlayerRecord& r : recs) {
    PlayerRecord got = make("untouched", 1, 100, 1, 1, 1);
    err.clear();
    const LoadResult res = store->load(r.account, &got, &err);
    INFO(r.account << ": " << err);
    if (r.account == "ok") {
      CHECK(res == LoadResult::Found);
      continue;
    }
    CHECK(res == LoadResult::Failed);
    CHECK(err.find("stored record unusable") != std::string::npos);
    CHECK(err.find(r.account) != std::string::npos);
    CHECK(got.account == "untouched");
  }
}

TEST_CASE("a schema version from the future is refused with its number") {
  TempDir dir;
  const std::string path = dir.file("players.db");
  { open_ok(path); }
  raw_sql(path, "PRAGMA user_version = 2");
  std::string err;
  CHECK(SqliteStore::open(path, 1000, &err) == nullptr);
  CHECK(err == path + ": schema version 2, this build knows 1");
}

TEST_CASE("a file that is not a database is refused") {
  TempDir dir;
  const std::string path = dir.file("players.db");
  {
    std::ofstream f(path);
    for (int i = 0; i < 200; ++i) f << "this is not a database, only some text\n";
  }
  std::string err;
  CHECK(SqliteStore::open(path, 1000, &err) == nullptr);
  INFO(err);
  CHECK(err.rfind(path + ": ", 0) == 0);
  CHECK(err.find("file is not a database") != std::string::npos);
  CHECK(err.find('\n') == std::string::npos);
}

TEST_CASE("a path in a missing directory is refused") {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/players.db");
  std::string err;
  CHECK(SqliteStore::open(path, 1000, &err) == nullptr);
  INFO(err);
  CHECK(err.rfind(path + ": ", 0) == 0);
  CHECK(err.find("unable to open database file") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("no")));
}

// (Root, as in CI, ignores file permissions, so a read-only file cannot
// stand for an unwritable store here; a directory can.)
TEST_CASE("a directory given as the path is refused, naming the path") {
  TempDir dir;
  const std::string path = dir.file("a-directory");
  std::filesystem::create_directory(path);
  std::string err;
  CHECK(SqliteStore::open(path, 1000, &err) == nullptr);
  INFO(err);
  CHECK(err.rfind(path + ": ", 0) == 0);
}

namespace {

constexpr int kChildren = 3;
constexpr int kPerChild = 300;

std::string own_account(int child, int i) {
  return "c" + std::to_string(child) + "-p" + std::to_string(i);
}
PlayerRecord own_record(int child, int i) {
  return make(own_account(child, i), 1000.0f + static_cast<float>(i) + 0.25f * static_cast<float>(child),
              30.0f + static_cast<float>(i % 300), 0.06f, static_cast<uint32_t>(i),
              int64_t{child} * 1000000 + i);
}
PlayerRecord shared_record(int child, int i) {
  return make("shared", 1500, 100, 0.06f, static_cast<uint32_t>(child * 1000 + i), i);
}

// A child: opens its own store on the (maybe not yet existing) file, saves
// its 300 records and 300 shared ones, interleaved, in batches of 1..5.
// Exit code: 0 ok, 1 open failed, 2 a save failed, 3 an exception.
int child_main(const std::string& path, int child) {
  try {
    std::string err;
    auto store = SqliteStore::open(path, 5000, &err);
    if (!store) {
      std::fprintf(stderr, "child %d: %s\n", child, err.c_str());
      return 1;
    }
    std::vector<PlayerRecord> all;
    for (int i = 0; i < kPerChild; ++i) {
      all.push_back(own_record(child, i));
      all.push_back(shared_record(child, i));
    }
    size_t at = 0;
    for (size_t k = 0; at < all.size(); ++k) {
      const size_t n = std::min<size_t>(1 + (k + static_cast<size_t>(child)) % 5, all.size() - at);
      if (!store->save(std::span(all).subspan(at, n), &err)) {
        std::fprintf(stderr, "child %d: %s\n", child, err.c_str());
        return 2;
      }
      at += n;
    }
    return 0;
  } catch (...) {
    return 3;
  }
}

}  // namespace

TEST_CASE("three processes saving at once: every record is there, no save failed") {
  TempDir dir;
  const std::string path = dir.file("players.db");  // created by the children, at once
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(child_main(path, c));
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("child exit status " << status);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto store = open_ok(path);
  std::string err;
  int missing = 0, wrong = 0;
  for (int c = 0; c < kChildren; ++c) {
    for (int i = 0; i < kPerChild; ++i) {
      PlayerRecord got;
      const PlayerRecord want = own_record(c, i);
      if (store->load(want.account, &got, &err) != LoadResult::Found) ++missing;
      else if (!same(got, want)) ++wrong;
    }
  }
  CHECK(missing == 0);
  CHECK(wrong == 0);
  // The last commit to "shared" is some child's last shared record.
  PlayerRecord shared;
  REQUIRE(store->load("shared", &shared, &err) == LoadResult::Found);
  CHECK(shared.matches % 1000 == kPerChild - 1);
  CHECK(shared.matches / 1000 < kChildren);
}

TEST_CASE("four threads on one store, loads and saves mixed") {
  TempDir dir;
  auto store = open_ok(dir.file("players.db"));
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, &failures, t] {
      const std::string mine = "t" + std::to_string(t);
      std::string err;
      for (int i = 0; i < kRounds; ++i) {
        const std::vector<PlayerRecord> batch{
            make(mine, 1500.0f + static_cast<float>(i), 200, 0.06f, static_cast<uint32_t>(i), i),
            make("common", 1500, 200, 0.06f, static_cast<uint32_t>(t * 1000 + i), i)};
        if (!store->save(batch, &err)) ++failures;
        PlayerRecord got;
        // Only this thread writes `mine`: it reads back its own last save.
        if (store->load(mine, &got, &err) != LoadResult::Found || !same(got, batch[0])) ++failures;
        if (store->load("common", &got, &err) != LoadResult::Found) ++failures;
        if (store->load("nobody", &got, &err) != LoadResult::NotFound) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(failures.load() == 0);
  std::string err;
  PlayerRecord common;
  REQUIRE(store->load("common", &common, &err) == LoadResult::Found);
  CHECK(common.matches % 1000 == kRounds - 1);
}
