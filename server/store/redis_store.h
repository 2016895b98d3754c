// skirmish::store::RedisStore: the PlayerStore in Redis, one hash per player.
//
// Contract
//   - Each player is the hash "<key_prefix>player:<account>" with the fields
//     rating, rd, volatility, matches and last_seen_ms, all as decimal text:
//     floats with 9 significant digits (the %.9g format, written and read
//     without the C locale's help), so that they read back bit for bit, and
//     integers in full. Other tools may read the hashes; other fields in
//     them are ignored.
//   - create() does not connect, so a fleet starts even while Redis is down.
//     The first call connects. A call that fails for any reason other than
//     an unusable stored record (connection refused or lost, a timeout, an
//     error or unexpected reply) frees the connection, and the next call
//     connects again: a restarted Redis is picked up without restarting the
//     server, and a connection in an unknown state is never reused.
//   - After each connect the store sends AUTH with the password (if one is
//     set) and SELECT db, before anything else. A wrong or missing password,
//     or a db out of Redis's range, fails the call that connected.
//   - Every call is bounded: connecting, and waiting for each reply, take at
//     most timeout_ms (at least 1 ms) each, so a call takes at most a few
//     timeouts (connect, AUTH and SELECT, then its commands). Resolving a host
//     name (getaddrinfo) is not bounded by it: give an address where that
//     matters.
//   - save() is all or nothing. It WATCHes the batch's keys and checks that
//     each is a hash or absent; a key of another type (only a hand edit makes
//     one) refuses the whole batch before anything is written. It then sends
//     every HSET in one MULTI/EXEC, so no other client sees half a batch. If
//     another client changed a watched key in between, Redis discards the
//     transaction and the save starts again, at most kSaveAttempts times.
//   - load() applies check_record to what it reads, and also refuses a field
//     that is missing or not exactly a number of its type; *err names the
//     account and the field.
//   - One connection per store, guarded by a std::mutex: calls from several
//     threads run one at a time, and a MULTI never interleaves with another
//     thread's commands.
//   - Every reply's type is checked before it is used and every reply is
//     freed; a reply of an unexpected shape fails the call, never the process.
//   - The process must ignore SIGPIPE (the server does): hiredis writes with
//     write(2), which raises it on a connection Redis has closed.
//   - A password is never written into an error line; errors are one line
//     starting with "redis://host:port/db: ".
//   - Durability is Redis's own (its appendonly and save settings).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/player_store.h"

struct redisContext;
struct redisReply;

namespace skirmish::store {

struct RedisAddress {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string password;  // empty: no AUTH
};

// "redis://host[:port][/db]": host an IPv4 literal, an IPv6 literal in
// brackets ("[::1]") or a name; port 1..65535, default 6379; db default 0.
// Sets host, port and db of *out (password untouched) and returns true.
// Otherwise false, *out untouched and *err says why in one line. A password
// or user in the URL ("redis://:pw@host") is refused, without echoing it:
// passwords come from an environment variable or a file, and the caller
// puts it in .password.
bool parse_redis_url(std::string_view url, RedisAddress* out, std::string* err);

class RedisStore final : public PlayerStore {
 public:
  static constexpr int kSaveAttempts = 3;

  // Does not connect (see the contract). key_prefix, e.g. "skirmish:", gives
  // the hash key "skirmish:player:<account>".
  static std::unique_ptr<RedisStore> create(const RedisAddress& addr, uint32_t timeout_ms,
                                            std::string key_prefix);
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  LoadResult load(std::string_view account, PlayerRecord* out, std::string* err) override;
  bool save(std::span<const PlayerRecord> records, std::string* err) override;
  const char* kind() const override { return "redis"; }
  // PING, for health checks: connects if needed. false and *err if no PONG.
  bool ping(std::string* err);
  const std::string& name() const { return name_; }  // "redis://host:port/db"

 private:
  struct ReplyFree {
    void operator()(redisReply* r) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyFree>;
  using Command = std::vector<std::string>;

  RedisStore(const RedisAddress& addr, uint32_t timeout_ms, std::string key_prefix);

  std::string key(std::string_view account) const;
  // The calls below need mu_ held.
  bool connect(const char* what, std::string* err);
  // Sends every command at once, then reads one reply for each into *replies.
  // On an I/O error or a timeout: the connection is dropped, false and *err.
  bool roundtrip(std::span<const Command> cmds, std::vector<Reply>* replies, const char* what,
                 std::string* err);
  // Drops the connection; false and *err = "NAME: what: msg".
  bool fail(const char* what, const std::string& msg, std::string* err);
  int failed(const char* what, const std::string& msg, std::string* err);  // fail(), then -1
  // 1: written, 0: a watched key changed (try again), -1: failed (*err set).
  int save_once(std::span<const PlayerRecord> records, std::string* err);
  LoadResult parse(std::string_view account, const redisReply& r, PlayerRecord* out,
                   std::string* err) const;
  void drop();

  const RedisAddress addr_;
  const uint32_t timeout_ms_;
  const std::string key_prefix_;
  const std::string name_;
  std::mutex mu_;                  // held by every call: guards ctx_
  redisContext* ctx_ = nullptr;    // nullptr: not connected
};

}  // namespace skirmish::store
