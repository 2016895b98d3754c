// The PlayerStore in Redis; the contract is in redis_store.h.
#include "store/redis_store.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

namespace skirmish::store {

namespace {

constexpr const char* kFields[] = {"rating", "rd", "volatility", "matches", "last_seen_ms"};
constexpr size_t kFieldCount = std::size(kFields);

bool set_err(std::string* err, std::string msg) {
  if (err) *err = std::move(msg);
  return false;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// A number in decimal: digits only, no sign, at most `max`.
bool parse_uint(std::string_view s, uint64_t max, uint64_t* out) {
  if (!all_digits(s) || s.size() > 20) return false;
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

// What Redis said, for an error line: at most 200 bytes, control bytes as '?'.
std::string reply_text(const redisReply& r) {
  switch (r.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: {
      std::string s(r.str ? r.str : "", r.str ? std::min<size_t>(r.len, 200) : 0);
      for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
      return s;
    }
    case REDIS_REPLY_INTEGER: return "integer " + std::to_string(r.integer);
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_ARRAY: return "array of " + std::to_string(r.elements);
    default: return "reply of type " + std::to_string(r.type);
  }
}

bool is_status(const redisReply& r, std::string_view text) {
  return r.type == REDIS_REPLY_STATUS && r.str && std::string_view(r.str, r.len) == text;
}

// The %.9g format (enough digits for any float to read back exactly),
// locale-independent.
std::string format_float(float v) {
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 9);
  return std::string(buf, res.ptr);
}

bool parse_float(std::string_view s, float* out) {
  double d = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(d)) return false;
  const auto f = static_cast<float>(d);
  if (!std::isfinite(f)) return false;
  *out = f;
  return true;
}

bool parse_int64(std::string_view s, int64_t* out) {
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return false;
  *out = v;
  return true;
}

std::string address_name(const RedisAddress& a) {
  const bool v6 = a.host.find(':') != std::string::npos;
  return "redis://" + (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port) + "/" +
         std::to_string(a.db);
}

bool valid_host_name(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool parse_redis_url(std::string_view url, RedisAddress* out, std::string* err) {
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return set_err(err, "redis URL " + quote_account(url) + ": does not start with redis://");
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (authority.find('@') != std::string_view::npos)
    return set_err(err,
                   "redis URL: a user or password in the URL is refused (not shown here); give the "
                   "password in an environment variable or a file");
  const std::string shown = "redis URL " + quote_account(url) + ": ";

  std::string_view host, port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return set_err(err, shown + "'[' without ']'");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') return set_err(err, shown + "junk after ']'");
    if (after == ":") return set_err(err, shown + "empty port after ':'");
    if (!after.empty()) port = after.substr(1);
    in6_addr a6;
    if (!inet_pton(AF_INET6, std::string(host).c_str(), &a6))
      return set_err(err, shown + "not an IPv6 address between [ and ]");
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string_view::npos)
        return set_err(err, shown + "more than one ':' (an IPv6 address goes in [ ])");
      if (port.empty()) return set_err(err, shown + "empty port after ':'");
    }
    if (host.empty()) return set_err(err, shown + "no host");
    if (!valid_host_name(host)) return set_err(err, shown + "host is not an address or a name");
  }
  uint64_t port_num = 6379, db = 0;
  if (!port.empty() && (!parse_uint(port, 65535, &port_num) || port_num == 0))
    return set_err(err, shown + "port is not a number in 1..65535");
  if (!path.empty() && !parse_uint(path, std::numeric_limits<uint32_t>::max(), &db))
    return set_err(err, shown + "the path is not a database number (redis://host:port/db)");
  out->host = std::string(host);
  out->port = static_cast<uint16_t>(port_num);
  out->db = static_cast<uint32_t>(db);
  return true;
}

void RedisStore::ReplyFree::operator()(redisReply* r) const { freeReplyObject(r); }

std::unique_ptr<RedisStore> RedisStore::create(const RedisAddress& addr, uint32_t timeout_ms,
                                               std::string key_prefix) {
  return std::unique_ptr<RedisStore>(new RedisStore(addr, timeout_ms, std::move(key_prefix)));
}

RedisStore::RedisStore(const RedisAddress& addr, uint32_t timeout_ms, std::string key_prefix)
    : addr_(addr),
      timeout_ms_(timeout_ms == 0 ? 1 : timeout_ms),
      key_prefix_(std::move(key_prefix)),
      name_(address_name(addr)) {}

RedisStore::~RedisStore() { drop(); }

std::string RedisStore::key(std::string_view account) const {
  return key_prefix_ + "player:" + std::string(account);
}

void RedisStore::drop() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

bool RedisStore::fail(const char* what, const std::string& msg, std::string* err) {
  drop();
  return set_err(err, name_ + ": " + what + ": " + msg);
}

bool RedisStore::connect(const char* what, std::string* err) {
  if (ctx_) return true;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_ms_ / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout_ms_ % 1000) * 1000);
  ctx_ = redisConnectWithTimeout(addr_.host.c_str(), addr_.port, tv);
  if (!ctx_) return fail(what, "connect: out of memory", err);
  if (ctx_->err) return fail(what, std::string("connect: ") + ctx_->errstr, err);
  if (redisSetTimeout(ctx_, tv) != REDIS_OK) return fail(what, "connect: cannot set the timeout", err);

  std::vector<Command> cmds;
  if (!addr_.password.empty()) cmds.push_back({"AUTH", addr_.password});
  cmds.push_back({"SELECT", std::to_string(addr_.db)});
  std::vector<Reply> replies;
  if (!roundtrip(cmds, &replies, what, err)) return false;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!is_status(*replies[i], "OK"))
      return fail(what, cmds[i][0] + ": " + reply_text(*replies[i]), err);  // never the password
  }
  return true;
}

bool RedisStore::roundtrip(std::span<const Command> cmds, std::vector<Reply>* replies,
                           const char* what, std::string* err) {
  replies->clear();
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const Command& cmd : cmds) {
    argv.clear();
    lens.clear();
    for (const std::string& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK)
      return fail(what, std::string("send: ") + ctx_->errstr, err);
  }
  for (size_t i = 0; i < cmds.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(ctx_, &r) != REDIS_OK || !r) {
      if (r) freeReplyObject(r);
      std::string msg = ctx_->err ? ctx_->errstr : "no reply";
      if (msg == std::strerror(EAGAIN)) msg = "timed out after " + std::to_string(timeout_ms_) + " ms";
      return fail(what, msg, err);
    }
    replies->emplace_back(static_cast<redisReply*>(r));
  }
  return true;
}

bool RedisStore::ping(std::string* err) {
  std::lock_guard lock(mu_);
  if (!connect("ping", err)) return false;
  const Command cmd{"PING"};
  std::vector<Reply> replies;
  if (!roundtrip(std::span(&cmd, 1), &replies, "ping", err)) return false;
  if (!is_status(*replies[0], "PONG")) return fail("ping", reply_text(*replies[0]), err);
  return true;
}

LoadResult RedisStore::load(std::string_view account, PlayerRecord* out, std::string* err) {
  if (!valid_account(account)) {
    set_err(err, name_ + ": load: invalid account " + quote_account(account));
    return LoadResult::Failed;
  }
  std::lock_guard lock(mu_);
  if (!connect("load", err)) return LoadResult::Failed;
  const Command cmd{"HGETALL", key(account)};
  std::vector<Reply> replies;
  if (!roundtrip(std::span(&cmd, 1), &replies, "load", err)) return LoadResult::Failed;
  const redisReply& r = *replies[0];
  if (r.type != REDIS_REPLY_ARRAY || r.elements % 2 != 0) {
    fail("load", "HGETALL " + quote_account(account) + ": " + reply_text(r), err);
    return LoadResult::Failed;
  }
  if (r.elements == 0) return LoadResult::NotFound;  // Redis keeps no empty hash
  return parse(account, r, out, err);
}

// The connection is fine here: an unusable record fails the call but keeps it.
LoadResult RedisStore::parse(std::string_view account, const redisReply& r, PlayerRecord* out,
                             std::string* err) const {
  const std::string head = name_ + ": load: stored record unusable: account " + quote_account(account);
  std::string_view values[kFieldCount];
  bool seen[kFieldCount] = {};
  for (size_t i = 0; i + 1 < r.elements; i += 2) {
    const redisReply* f = r.element[i];
    const redisReply* v = r.element[i + 1];
    if (!f || !v || f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || !f->str || !v->str) {
      set_err(err, head + ": HGETALL gave something other than field/value strings");
      return LoadResult::Failed;
    }
    const std::string_view name(f->str, f->len);
    for (size_t k = 0; k < kFieldCount; ++k) {
      if (name == kFields[k]) {
        values[k] = std::string_view(v->str, v->len);
        seen[k] = true;
      }
    }
  }
  for (size_t k = 0; k < kFieldCount; ++k) {
    if (!seen[k]) {
      set_err(err, head + ": field " + kFields[k] + " is missing");
      return LoadResult::Failed;
    }
  }
  PlayerRecord rec;
  rec.account = std::string(account);
  uint64_t matches = 0;
  int bad = -1;  // the first field that does not parse
  if (!parse_float(values[0], &rec.rating)) bad = 0;
  else if (!parse_float(values[1], &rec.rd)) bad = 1;
  else if (!parse_float(values[2], &rec.volatility)) bad = 2;
  else if (!parse_uint(values[3], std::numeric_limits<uint32_t>::max(), &matches)) bad = 3;
  else if (!parse_int64(values[4], &rec.last_seen_ms)) bad = 4;
  if (bad >= 0) {
    const char* kind = bad < 3 ? "a finite float" : bad == 3 ? "an integer in [0, 4294967295]" : "a 64-bit integer";
    set_err(err, head + ": field " + kFields[bad] + ": " + quote_account(values[bad]) + " is not " + kind);
    return LoadResult::Failed;
  }
  rec.matches = static_cast<uint32_t>(matches);
  std::string why;
  if (!check_record(rec, &why)) {
    set_err(err, name_ + ": load: stored record unusable: " + why);
    return LoadResult::Failed;
  }
  *out = std::move(rec);
  return LoadResult::Found;
}

bool RedisStore::save(std::span<const PlayerRecord> records, std::string* err) {
  std::string why;
  for (const PlayerRecord& r : records)
    if (!check_record(r, &why)) return set_err(err, name_ + ": save refused, nothing written: " + why);
  if (records.empty()) return true;

  std::lock_guard lock(mu_);
  for (int attempt = 0; attempt < kSaveAttempts; ++attempt) {
    if (!connect("save", err)) return false;
    const int rc = save_once(records, err);
    if (rc != 0) return rc > 0;
  }
  return set_err(err, name_ + ": save: nothing written: the keys kept changing under " +
                          std::to_string(kSaveAttempts) + " attempts (WATCH)");
}

// fail() for save_once: -1.
int RedisStore::failed(const char* what, const std::string& msg, std::string* err) {
  fail(what, msg, err);
  return -1;
}

int RedisStore::save_once(std::span<const PlayerRecord> records, std::string* err) {
  // 1. WATCH every key, and check that each is a hash or absent.
  std::vector<Command> cmds;
  cmds.reserve(records.size() + 2);
  Command watch{"WATCH"};
  for (const PlayerRecord& r : records) watch.push_back(key(r.account));
  cmds.push_back(std::move(watch));
  for (const PlayerRecord& r : records) cmds.push_back({"TYPE", key(r.account)});
  std::vector<Reply> replies;
  if (!roundtrip(cmds, &replies, "save: watch", err)) return -1;
  if (!is_status(*replies[0], "OK")) return failed("save: WATCH", reply_text(*replies[0]), err);
  for (size_t i = 0; i < records.size(); ++i) {
    const redisReply& t = *replies[i + 1];
    if (!is_status(t, "none") && !is_status(t, "hash"))
      return failed("save refused, nothing written",
                    "account " + quote_account(records[i].account) + ": key holds " + reply_text(t) +
                        ", not a hash",
                    err);
  }

  // 2. Every HSET in one MULTI/EXEC; EXEC gives nil if a watched key changed.
  cmds.clear();
  cmds.push_back({"MULTI"});
  for (const PlayerRecord& r : records) {
    cmds.push_back({"HSET", key(r.account), "rating", format_float(r.rating), "rd", format_float(r.rd),
                    "volatility", format_float(r.volatility), "matches", std::to_string(r.matches),
                    "last_seen_ms", std::to_string(r.last_seen_ms)});
  }
  cmds.push_back({"EXEC"});
  if (!roundtrip(cmds, &replies, "save", err)) return -1;
  if (!is_status(*replies[0], "OK")) return failed("save: MULTI", reply_text(*replies[0]), err);
  for (size_t i = 1; i + 1 < replies.size(); ++i) {
    if (!is_status(*replies[i], "QUEUED"))  // EXEC then gives EXECABORT: nothing written
      return failed("save: HSET", reply_text(*replies[i]), err);
  }
  const redisReply& exec = *replies.back();
  if (exec.type == REDIS_REPLY_NIL) return 0;
  if (exec.type != REDIS_REPLY_ARRAY || exec.elements != records.size())
    return failed("save: EXEC", reply_text(exec), err);
  for (size_t i = 0; i < exec.elements; ++i) {
    if (!exec.element[i] || exec.element[i]->type != REDIS_REPLY_INTEGER)
      return failed("save: EXEC (the batch may be partly written)",
                    "account " + quote_account(records[i].account) + ": " +
                        (exec.element[i] ? reply_text(*exec.element[i]) : std::string("no reply")),
                    err);
  }
  return 1;
}

}  // namespace skirmish::store
