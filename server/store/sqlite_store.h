// skirmish::store::SqliteStore: the PlayerStore in a local SQLite database.
//
// Contract
//   - One file, shared by every worker process: each process (and, if it
//     likes, each thread) opens its own store on it. The database is in WAL
//     mode, so readers never wait for the writer and a writer waits only for
//     another writer; synchronous=NORMAL, so a commit survives a crash of the
//     process but the last commits may be lost if the machine loses power
//     (ratings of the last matches, acceptable for a game).
//   - Every wait for a lock is bounded by busy_timeout_ms (0: do not wait),
//     the switch to WAL at open included: SQLite does not wait for that one
//     itself, so open() retries it until busy_timeout_ms has passed.
//     A save takes the write lock at BEGIN IMMEDIATE, so a busy database is
//     detected there, before anything is written, never halfway through.
//   - A save is one transaction: any failure rolls it back, nothing of the
//     batch is kept. Records are checked (check_record) before BEGIN.
//   - One connection per store, guarded by a std::mutex: calls from several
//     threads run one at a time. The connection is opened with
//     SQLITE_OPEN_NOMUTEX because the mutex already serializes it, and
//     because a save is several statements that must not interleave with
//     another thread's, which SQLite's own per-call mutex would not prevent.
//   - Statements are prepared once at open and reused (reset after each use,
//     so no read transaction is left open between calls).
//   - open() refuses, with nullptr and a one-line *err naming the path: a
//     file that cannot be opened or created (missing directory, not a
//     database, read-only), a database that cannot be put in WAL mode, and
//     a schema this build does not know (PRAGMA user_version other than 0,
//     which gets schema 1, or 1). Creating the schema is one IMMEDIATE
//     transaction, so processes opening a new file at once create it once.
//   - The destructor finalizes the statements and closes the connection
//     (sqlite3_close_v2); no transaction is ever open between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "store/player_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace skirmish::store {

class SqliteStore final : public PlayerStore {
 public:
  static constexpr int64_t kSchemaVersion = 1;

  // Opens (creating the file and its schema if missing) with
  // journal_mode=WAL, synchronous=NORMAL and busy_timeout_ms. nullptr and
  // *err on failure (see the contract above).
  static std::unique_ptr<SqliteStore> open(const std::string& path, uint32_t busy_timeout_ms,
                                           std::string* err);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  LoadResult load(std::string_view account, PlayerRecord* out, std::string* err) override;
  bool save(std::span<const PlayerRecord> records, std::string* err) override;
  const char* kind() const override { return "sqlite"; }
  const std::string& path() const { return path_; }

 private:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}

  bool exec(const char* sql, const char* what, std::string* err);
  bool query_int(const char* sql, const char* what, int64_t* out, std::string* err);
  bool query_text(const char* sql, const char* what, std::string* out, std::string* err);
  bool set_wal(uint32_t busy_timeout_ms, std::string* err);
  bool create_or_check_schema(std::string* err);
  bool prepare(const char* sql, sqlite3_stmt** stmt, std::string* err);
  bool run(sqlite3_stmt* stmt, const char* what, std::string* err);
  bool upsert(const PlayerRecord& r, std::string* err);
  LoadResult read_row(std::string_view account, PlayerRecord* out, std::string* err);
  void rollback();
  bool fail(const char* what, std::string* err) const;  // "PATH: what: SQLite's message"

  const std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* load_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  std::mutex mu_;  // held by load() and save(): guards db_ and the statements
};

}  // namespace skirmish::store
