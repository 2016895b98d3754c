// skirmish::store: players and their ratings kept across restarts.
//
// Contract
//   - A PlayerStore maps an account id to one PlayerRecord. It is the only
//     part of a player that survives a restart; everything else lives in
//     shared memory and dies with the server.
//   - Calls block (disk, locks held by other processes). They are made from
//     libuv's threadpool (uv_queue_work), never from an event-loop thread.
//     Every call is bounded in time: waiting for a lock another process holds
//     gives up after the store's busy timeout, and the call fails.
//   - Every method is thread-safe: any number of threads may share one store.
//     Several processes may each open their own store on the same database.
//     A store is never carried across fork(); the child opens its own.
//   - save() is all or nothing: the whole batch is written in one
//     transaction, or nothing is. Between batches, threads and processes the
//     last writer wins per account; nothing is merged. Within a batch, a
//     later record for the same account wins over an earlier one.
//   - Nothing load() would refuse is ever written. save() checks every record
//     first (check_record) and refuses the whole batch if one is bad, naming
//     its account. load() applies the same check to what it reads, so a
//     database edited by hand gives Failed, never an unchecked value.
//   - The store has no clock: last_seen_ms is written as the caller set it.
//   - Errors are one line, naming the database and the reason, for the log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace skirmish::store {

// Account ids: 1..64 bytes, each printable ASCII without space (0x21..0x7E).
inline constexpr size_t kMaxAccountBytes = 64;
// rd is kept in the bounds the rating update clamps it to (matchmaking/rating.h).
inline constexpr float kMinRd = 30;
inline constexpr float kMaxRd = 350;

struct PlayerRecord {
  std::string account;
  float rating = 1500, rd = 350, volatility = 0.06f;
  uint32_t matches = 0;      // matches played, total
  int64_t last_seen_ms = 0;  // unix ms of the last save (set by the caller)
};

enum class LoadResult : uint8_t { Found, NotFound, Failed };

// True if `account` is 1..kMaxAccountBytes bytes, all in 0x21..0x7E.
bool valid_account(std::string_view account);

// The account in double quotes for an error line: bytes outside 0x21..0x7E
// as \xNN, at most kMaxAccountBytes bytes shown, then "...(N bytes)".
std::string quote_account(std::string_view account);

// True if `r` may be stored: a valid account, rating finite, rd finite and in
// [kMinRd, kMaxRd], volatility finite and > 0. Otherwise false and *why (if
// not null) names the account and the value, in one line.
bool check_record(const PlayerRecord& r, std::string* why);

class PlayerStore {
 public:
  virtual ~PlayerStore() = default;
  // Found: *out is the stored record. NotFound: *out untouched. Failed (an
  // invalid account, a database error, a stored record that check_record
  // refuses): *out untouched and *err says why in one line. Thread-safe.
  virtual LoadResult load(std::string_view account, PlayerRecord* out, std::string* err) = 0;
  // Upserts every record in ONE transaction (all or nothing); last writer
  // wins per account. An empty batch succeeds without touching the
  // database. false: nothing was written and *err says why. Thread-safe.
  virtual bool save(std::span<const PlayerRecord> records, std::string* err) = 0;
  virtual const char* kind() const = 0;  // "sqlite"
};

}  // namespace skirmish::store
