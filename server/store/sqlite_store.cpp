// The PlayerStore in SQLite; the contract is in sqlite_store.h.
#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <utility>

namespace skirmish::store {

namespace {

constexpr const char* kCreateSchema =
    "CREATE TABLE players(account TEXT PRIMARY KEY, rating REAL NOT NULL,"
    " rd REAL NOT NULL, volatility REAL NOT NULL, matches INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL) WITHOUT ROWID";
constexpr const char* kLoad =
    "SELECT rating, rd, volatility, matches, last_seen_ms FROM players WHERE account = ?1";
constexpr const char* kUpsert =
    "INSERT INTO players(account, rating, rd, volatility, matches, last_seen_ms)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(account) DO UPDATE SET"
    " rating = excluded.rating, rd = excluded.rd, volatility = excluded.volatility,"
    " matches = excluded.matches, last_seen_ms = excluded.last_seen_ms";

bool set_err(std::string* err, std::string msg) {
  if (err) *err = std::move(msg);
  return false;
}

// A stored REAL as a float: NaN if it is not a number or not finite as a float.
float column_float(sqlite3_stmt* s, int col) {
  const int type = sqlite3_column_type(s, col);
  if (type != SQLITE_FLOAT && type != SQLITE_INTEGER) return NAN;
  const double v = sqlite3_column_double(s, col);
  if (!std::isfinite(v)) return NAN;
  const auto f = static_cast<float>(v);
  return std::isfinite(f) ? f : NAN;
}

}  // namespace

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& path, uint32_t busy_timeout_ms,
                                               std::string* err) {
  if (sqlite3_threadsafe() == 0) {
    set_err(err, path + ": this SQLite library is built without thread support");
    return nullptr;
  }
  std::unique_ptr<SqliteStore> s(new SqliteStore(path));
  // Not shared with anyone yet: no lock. On failure the destructor (when s
  // goes) closes whatever was opened.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &s->db_, flags, nullptr) != SQLITE_OK) {
    if (s->db_) {
      s->fail("open", err);
    } else {
      set_err(err, path + ": open: out of memory");
    }
    return nullptr;
  }
  // READWRITE silently falls back to read-only on a write-protected file.
  if (sqlite3_db_readonly(s->db_, "main") == 1) {
    set_err(err, path + ": open: the file is read-only");
    return nullptr;
  }
  sqlite3_extended_result_codes(s->db_, 1);
  // First, so that every statement below (the WAL switch and the schema
  // creation take locks) waits at most busy_timeout_ms for other processes.
  sqlite3_busy_timeout(s->db_, busy_timeout_ms > INT_MAX ? INT_MAX : static_cast<int>(busy_timeout_ms));

  if (!s->set_wal(busy_timeout_ms, err)) return nullptr;
  if (!s->exec("PRAGMA synchronous = NORMAL", "synchronous", err)) return nullptr;
  if (!s->create_or_check_schema(err)) return nullptr;
  if (!s->prepare(kLoad, &s->load_, err) || !s->prepare(kUpsert, &s->upsert_, err) ||
      !s->prepare("BEGIN IMMEDIATE", &s->begin_, err) || !s->prepare("COMMIT", &s->commit_, err) ||
      !s->prepare("ROLLBACK", &s->rollback_, err))
    return nullptr;
  return s;
}

SqliteStore::~SqliteStore() {
  for (sqlite3_stmt* stmt : {load_, upsert_, begin_, commit_, rollback_}) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);  // harmless on nullptr; closes at once, nothing is left unfinalized
}

LoadResult SqliteStore::load(std::string_view account, PlayerRecord* out, std::string* err) {
  if (!valid_account(account)) {
    set_err(err, path_ + ": load: invalid account " + quote_account(account));
    return LoadResult::Failed;
  }
  std::lock_guard lock(mu_);
  LoadResult result = LoadResult::Failed;
  if (sqlite3_bind_text(load_, 1, account.data(), static_cast<int>(account.size()), SQLITE_STATIC) !=
      SQLITE_OK) {
    fail("load", err);
  } else {
    const int rc = sqlite3_step(load_);
    if (rc == SQLITE_ROW) {
      result = read_row(account, out, err);
    } else if (rc == SQLITE_DONE) {
      result = LoadResult::NotFound;
    } else {
      fail("load", err);
    }
  }
  sqlite3_reset(load_);  // ends the read transaction
  sqlite3_clear_bindings(load_);
  return result;
}

LoadResult SqliteStore::read_row(std::string_view account, PlayerRecord* out, std::string* err) {
  PlayerRecord r;
  r.account = std::string(account);
  r.rating = column_float(load_, 0);
  r.rd = column_float(load_, 1);
  r.volatility = column_float(load_, 2);
  if (sqlite3_column_type(load_, 3) != SQLITE_INTEGER || sqlite3_column_type(load_, 4) != SQLITE_INTEGER) {
    set_err(err, path_ + ": load: stored record unusable: account " + quote_account(account) +
                     ": matches or last_seen_ms is not an integer");
    return LoadResult::Failed;
  }
  const int64_t matches = sqlite3_column_int64(load_, 3);
  if (matches < 0 || matches > UINT32_MAX) {
    set_err(err, path_ + ": load: stored record unusable: account " + quote_account(account) +
                     ": matches " + std::to_string(matches) + " outside [0, 4294967295]");
    return LoadResult::Failed;
  }
  r.matches = static_cast<uint32_t>(matches);
  r.last_seen_ms = sqlite3_column_int64(load_, 4);
  std::string why;
  if (!check_record(r, &why)) {
    set_err(err, path_ + ": load: stored record unusable: " + why);
    return LoadResult::Failed;
  }
  *out = std::move(r);
  return LoadResult::Found;
}

bool SqliteStore::save(std::span<const PlayerRecord> records, std::string* err) {
  std::string why;
  for (const PlayerRecord& r : records)
    if (!check_record(r, &why)) return set_err(err, path_ + ": save refused, nothing written: " + why);
  if (records.empty()) return true;

  std::lock_guard lock(mu_);
  if (!run(begin_, "save: begin", err)) {
    rollback();
    return false;
  }
  for (const PlayerRecord& r : records) {
    if (!upsert(r, err)) {
      rollback();
      return false;
    }
  }
  if (!run(commit_, "save: commit", err)) {
    rollback();
    return false;
  }
  return true;
}

bool SqliteStore::upsert(const PlayerRecord& r, std::string* err) {
  bool ok = sqlite3_bind_text(upsert_, 1, r.account.data(), static_cast<int>(r.account.size()),
                              SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_double(upsert_, 2, r.rating) == SQLITE_OK &&
            sqlite3_bind_double(upsert_, 3, r.rd) == SQLITE_OK &&
            sqlite3_bind_double(upsert_, 4, r.volatility) == SQLITE_OK &&
            sqlite3_bind_int64(upsert_, 5, r.matches) == SQLITE_OK &&
            sqlite3_bind_int64(upsert_, 6, r.last_seen_ms) == SQLITE_OK;
  if (ok) ok = sqlite3_step(upsert_) == SQLITE_DONE;
  if (!ok) set_err(err, path_ + ": save: account " + quote_account(r.account) + ": " + sqlite3_errmsg(db_));
  sqlite3_reset(upsert_);
  sqlite3_clear_bindings(upsert_);
  return ok;
}

// Some errors (SQLITE_FULL, SQLITE_IOERR, ...) have rolled back already.
void SqliteStore::rollback() {
  if (sqlite3_get_autocommit(db_)) return;
  sqlite3_step(rollback_);
  sqlite3_reset(rollback_);
}

bool SqliteStore::run(sqlite3_stmt* stmt, const char* what, std::string* err) {
  const bool ok = sqlite3_step(stmt) == SQLITE_DONE;
  if (!ok) fail(what, err);  // before the reset, which may change the message
  sqlite3_reset(stmt);
  return ok;
}

// Switching a database to WAL needs an exclusive lock, and while another
// connection holds its shared lock SQLite answers SQLITE_BUSY at once,
// without the busy handler (waiting there could deadlock two connections
// both upgrading). Processes opening a new file at the same time hit this,
// so: try again, 1..16 ms apart, until busy_timeout_ms has passed. Once the
// file is in WAL mode (it stays so), the pragma only reads and never waits.
bool SqliteStore::set_wal(uint32_t busy_timeout_ms, std::string* err) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  std::string mode;
  for (int attempt = 0;; ++attempt) {
    if (query_text("PRAGMA journal_mode = WAL", "journal_mode", &mode, err)) break;
    if ((sqlite3_extended_errcode(db_) & 0xff) != SQLITE_BUSY ||
        std::chrono::steady_clock::now() >= deadline)
      return false;
    sqlite3_sleep(1 << std::min(attempt, 4));
  }
  if (mode == "wal") return true;
  return set_err(err, path_ + ": journal_mode: cannot use WAL (the database stays in " + mode + " mode)");
}

bool SqliteStore::create_or_check_schema(std::string* err) {
  // IMMEDIATE: two processes opening a new file at once cannot both see
  // version 0 and both create the table.
  if (!exec("BEGIN IMMEDIATE", "schema: begin", err)) return false;
  int64_t version = 0;
  bool ok = query_int("PRAGMA user_version", "schema: user_version", &version, err);
  if (ok && version == 0) {
    ok = exec(kCreateSchema, "schema: create", err) &&
         exec("PRAGMA user_version = 1", "schema: user_version", err);
  } else if (ok && version != kSchemaVersion) {
    ok = set_err(err, path_ + ": schema version " + std::to_string(version) + ", this build knows " +
                          std::to_string(kSchemaVersion));
  }
  if (ok) ok = exec("COMMIT", "schema: commit", err);
  if (!ok && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return ok;
}

bool SqliteStore::exec(const char* sql, const char* what, std::string* err) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK) return true;
  return fail(what, err);
}

bool SqliteStore::query_int(const char* sql, const char* what, int64_t* out, std::string* err) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) return fail(what, err);
  const bool ok = sqlite3_step(stmt) == SQLITE_ROW;
  if (ok) *out = sqlite3_column_int64(stmt, 0);
  else fail(what, err);
  sqlite3_finalize(stmt);
  return ok;
}

bool SqliteStore::query_text(const char* sql, const char* what, std::string* out, std::string* err) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) return fail(what, err);
  const bool ok = sqlite3_step(stmt) == SQLITE_ROW;
  if (ok) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    *out = text ? reinterpret_cast<const char*>(text) : "";
  } else {
    fail(what, err);
  }
  sqlite3_finalize(stmt);
  return ok;
}

bool SqliteStore::prepare(const char* sql, sqlite3_stmt** stmt, std::string* err) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr) == SQLITE_OK) return true;
  return fail("prepare", err);
}

bool SqliteStore::fail(const char* what, std::string* err) const {
  return set_err(err, path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

}  // namespace skirmish::store
