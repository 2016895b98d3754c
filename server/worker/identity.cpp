// Identity: Hello (a new player, anonymous or with an account from a JWT)
// and Resume (a player coming back to its seat with its session token).
//
// - A JWT (Hello.auth_token) is verified on the loop (auth/jwt.h: CPU only,
//   microseconds for HS256, tens of them for RS256; never on the tick, and
//   the handshake cap and per-address limits bound how many a peer can
//   make us check). A refusal is Error(Unauthorized) and a close.
// - With [store] on and an account, the player's record is read in libuv's
//   threadpool (SQLite may wait for its file lock): the session stays in
//   Handshake, its deadline running, until the read is back; then the row
//   is made with the stored rating and Welcome sent. A session that closed
//   meanwhile is simply not found (loading_ maps session id -> session).
//   A failed read is Error(Unavailable): playing on with a fresh rating
//   would overwrite the stored one at the match's end.
// - When a rated match ends (play.cpp end_match) its owner writes every
//   seat with an account in one transaction, in the threadpool; a failure
//   loses that match's changes only (counted, logged rate-limited).
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <string>

#include "auth/jwt.h"
#include "core/process.h"
#include "match/match_store.h"
#include "shm/atomic_field.h"
#include "store/player_store.h"
#include "store/redis_store.h"
#include "store/sqlite_store.h"
#include "worker/worker.h"

namespace skirmish::worker {

using namespace skirmish::proto;
using shm::shared_load;
using shm::shared_store;

namespace {

constexpr int64_t kStoreLogEveryMs = 10000;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The row's account as a C string (the row's copy is NUL padded, not
// necessarily terminated).
void copy_account(const shm::PlayerRow& p, char (&out)[shm::kAccountBytes + 1]) {
  std::memcpy(out, p.account, shm::kAccountBytes);
  out[shm::kAccountBytes] = '\0';
}

struct LoadJob {
  uv_work_t req;
  Worker* worker;
  store::PlayerStore* store;
  uint64_t session_id;
  std::string account, name;
  store::PlayerRecord rec;
  store::LoadResult result = store::LoadResult::Failed;
  std::string error;
};

struct SaveJob {
  uv_work_t req;
  Worker* worker;
  store::PlayerStore* store;
  std::vector<store::PlayerRecord> records;
  bool ok = false;
  std::string error;
};

}  // namespace

bool Worker::store_on() const { return seg_ != nullptr && (!cfg_.fleet_redis.empty() || !cfg_.store_path.empty()); }

void Worker::open_store() {
  if (!store_on()) return;
  std::string err;
  if (!cfg_.fleet_redis.empty()) {
    // In a fleet the accounts live in Redis, shared by every instance. The
    // store connects lazily and again after any error: Redis down at start
    // or later only refuses accounts until it is back.
    store::RedisAddress addr;
    if (store::parse_redis_url(cfg_.fleet_redis, &addr, &err)) {
      addr.password = cfg_.fleet_redis_password;
      store_ = store::RedisStore::create(addr, cfg_.fleet_redis_timeout_ms, cfg_.fleet_key_prefix);
    }
    if (!store_) spdlog::error("players store: fleet.redis: {}; Hellos with an account are refused", err);
    return;
  }
  store_ = store::SqliteStore::open(cfg_.store_path, cfg_.store_busy_timeout_ms, &err);
  // The master opened it at start (exit 2 if it could not); failing here
  // is the file gone or broken since. Accounts are refused (Unavailable)
  // rather than played unkept.
  if (!store_) spdlog::error("players store: {}; Hellos with an account are refused until a restart", err);
}

bool Worker::on_hello(Session* s, const Hello* m) {
  if (m->protocol_version() != ProtocolVersion::Current) {
    send_error(s, ErrorCode::VersionMismatch, true, "protocol version mismatch: this server speaks 2");
    return false;
  }
  const auto* name = m->name();
  if (name == nullptr || name->size() == 0 || name->size() > 32) {
    send_error(s, ErrorCode::BadRequest, true, "name must be 1..32 bytes");
    return false;
  }
  std::string account;
  if (jwt_ != nullptr) {
    const auto* token = m->auth_token();
    if (token == nullptr || token->size() == 0) {
      if (cfg_.auth_required) {
        ++stats_.auth_refused;
        send_error(s, ErrorCode::Unauthorized, true, "this server requires Hello.auth_token");
        return false;
      }
    } else {
      auth::JwtClaims claims;
      const auth::JwtError e = jwt_->verify(token->string_view(), int64_t(std::time(nullptr)), &claims);
      if (e != auth::JwtError::None) {
        ++stats_.auth_refused;
        SPDLOG_DEBUG("session {} ({}): token refused: {}", s->id, s->peer, auth::to_string(e));
        send_error(s, ErrorCode::Unauthorized, true, std::string("auth_token: ") + auth::to_string(e));
        return false;
      }
      account = std::move(claims.sub);
    }
  }
  // Without auth a token is not looked at: the player is anonymous, and
  // Welcome carries no account to say so.
  if (!account.empty() && store_on()) {
    if (!store_) {
      ++stats_.store_load_failures;
      send_error(s, ErrorCode::Unavailable, true, "players store unavailable; retry later");
      return false;
    }
    start_load(s, std::move(account), std::string(name->string_view()));
    return true;
  }
  return complete_hello(s, name->string_view(), account, nullptr);
}

void Worker::start_load(Session* s, std::string account, std::string name) {
  auto* job = new LoadJob{};
  job->req.data = job;
  job->worker = this;
  job->store = store_.get();
  job->session_id = s->id;
  job->account = std::move(account);
  job->name = std::move(name);
  s->loading = true;
  loading_[s->id] = s;
  const int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* r) {
        auto* j = static_cast<LoadJob*>(r->data);
        j->result = j->store->load(j->account, &j->rec, &j->error);
      },
      [](uv_work_t* r, int status) {
        auto* j = static_cast<LoadJob*>(r->data);
        if (status == UV_ECANCELED) j->result = store::LoadResult::Failed;
        j->worker->finish_load(j->session_id, j->account, j->name, j->result,
                               j->result == store::LoadResult::Found ? &j->rec : nullptr, j->error);
        delete j;
      });
  if (rc != 0) {
    const uint64_t id = s->id;
    delete job;
    finish_load(id, "", "", store::LoadResult::Failed, nullptr, uv_strerror(rc));
  }
}

void Worker::finish_load(uint64_t session_id, const std::string& account, const std::string& name,
                         store::LoadResult result, const store::PlayerRecord* rec, const std::string& error) {
  auto it = loading_.find(session_id);
  if (it == loading_.end()) return;  // closed meanwhile (a handshake timeout, a reset)
  Session* s = it->second;
  loading_.erase(it);
  s->loading = false;
  if (result == store::LoadResult::Failed) {
    ++stats_.store_load_failures;
    if (const int64_t t = core::monotonic_ms(); t - store_logged_ms_ >= kStoreLogEveryMs) {
      store_logged_ms_ = t;
      spdlog::warn("players store: a read failed: {} (refused with Unavailable; this warning at most every {} s)",
                   error, kStoreLogEveryMs / 1000);
    }
    send_error(s, ErrorCode::Unavailable, true, "players store unavailable; retry later");  // and closes
    return;
  }
  ++stats_.store_loads;
  if (s->state != SessionState::Handshake) return;
  if (!complete_hello(s, name, account, rec)) begin_close(s);
}

bool Worker::complete_hello(Session* s, std::string_view name, std::string_view account,
                            const store::PlayerRecord* rec) {
  if (!core::random_bytes(s->token, sizeof s->token)) {
    send_error(s, ErrorCode::Internal, true, "no randomness");
    return false;
  }
  const float rating = rec != nullptr ? rec->rating : float(cfg_.rating_initial);
  if (seg_ != nullptr) {
    // The session's durable half lives in shared memory, so it outlives
    // this process (resume, adoption).
    const uint32_t id = seg_->next_player_id();
    auto h = seg_->players().alloc([&](shm::PlayerRow& row) {
      row.state = shm::PlayerState::Connected;
      row.player_id = id;
      std::memcpy(row.token, s->token, sizeof row.token);
      row.connection_gen = 1;
      row.rating = rating;
      row.rd = rec != nullptr ? rec->rd : 350.f;
      row.volatility = rec != nullptr ? rec->volatility : 0.06f;
      row.matches_played = rec != nullptr ? rec->matches : 0;
      row.worker = index_;
      std::memcpy(row.name, name.data(), std::min<size_t>(name.size(), sizeof row.name));
      std::memcpy(row.account, account.data(), std::min<size_t>(account.size(), sizeof row.account));
    });
    if (!h) {
      send_error(s, ErrorCode::ServerFull, true, "player table full");
      return false;
    }
    s->player_id = id;
    s->player_wire = shm::to_wire(*h);
    // The token's first word names the row (Resume finds it in O(1)); the
    // other 96 bits are the secret.
    s->token[0] = s->player_wire;
    {
      auto players = seg_->players();
      auto g = players.lock();
      players.get(*h)->token[0] = s->token[0];
    }
    by_player_[s->player_wire] = s;
  } else {
    s->player_id = uint32_t(s->id);
  }
  s->state = SessionState::Ready;
  s->decoder.set_max_frame_bytes(cfg_.max_frame_bytes);
  set_list(s, idle_list_, now_ms());

  auto& b = enc_.builder();
  auto version = b.CreateString(SKIRMISH_VERSION);
  auto acct = account.empty() ? 0 : b.CreateString(account.data(), account.size());
  SessionToken tok(s->token[0], s->token[1], s->token[2], s->token[3]);
  auto w = CreateWelcome(b, ProtocolVersion::Current, &tok, s->player_id, index_, uint16_t(cfg_.tick_rate_hz), rating,
                         false, 0, uint32_t(core::monotonic_ms() - start_ms_), 0, version, acct);
  return send(s, enc_.finish(w));
}

void Worker::persist_results(uint32_t n, const uint32_t* wires) {
  if (!store_) return;
  auto* job = new SaveJob{};
  job->req.data = job;
  job->worker = this;
  job->store = store_.get();
  const int64_t now = unix_ms();
  {
    auto players = seg_->players();
    auto g = players.lock();
    for (uint32_t i = 0; i < n; ++i) {
      shm::PlayerRow* p = players.get_wire(wires[i]);
      if (p == nullptr || p->account[0] == '\0') continue;
      p->matches_played += 1;
      char acct[shm::kAccountBytes + 1];
      copy_account(*p, acct);
      job->records.push_back(store::PlayerRecord{acct, p->rating, p->rd, p->volatility, p->matches_played, now});
    }
  }
  if (job->records.empty()) {
    delete job;
    return;
  }
  const int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* r) {
        auto* j = static_cast<SaveJob*>(r->data);
        j->ok = j->store->save(j->records, &j->error);
      },
      [](uv_work_t* r, int status) {
        auto* j = static_cast<SaveJob*>(r->data);
        j->worker->finish_save(status == 0 && j->ok, j->records.size(), j->error);
        delete j;
      });
  if (rc != 0) {
    finish_save(false, job->records.size(), uv_strerror(rc));
    delete job;
  }
}

void Worker::finish_save(bool ok, size_t records, const std::string& error) {
  if (ok) {
    ++stats_.store_saves;
    return;
  }
  ++stats_.store_save_failures;
  if (const int64_t t = core::monotonic_ms(); t - store_logged_ms_ >= kStoreLogEveryMs) {
    store_logged_ms_ = t;
    spdlog::warn("players store: a match's {} ratings were not kept: {} (this warning at most every {} s)", records,
                 error, kStoreLogEveryMs / 1000);
  }
}

// Constant time over all four words: how much of a token matched must not
// show in the answer time.
static bool same_token(const uint32_t* a, const uint32_t* b) {
  uint32_t diff = 0;
  for (int i = 0; i < 4; ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

bool Worker::worker_alive(uint32_t index) const {
  const shm::ProcessRow& row = seg_->process(index);
  if (shm::shared_load(row.state) == shm::ProcessState::Down) return false;
  return shm::process_running(shm::shared_load(row.pid));
}

bool Worker::on_resume(Session* s, const Resume* m) {
  if (m->protocol_version() != ProtocolVersion::Current) {
    send_error(s, ErrorCode::VersionMismatch, true, "protocol version mismatch: this server speaks 2");
    return false;
  }
  const SessionToken* t = m->token();
  if (seg_ == nullptr || t == nullptr) {
    send_error(s, ErrorCode::BadToken, true, "unknown, expired or already attached session token");
    return false;
  }
  const uint32_t want[4] = {t->w0(), t->w1(), t->w2(), t->w3()};
  auto players = seg_->players();
  uint32_t match_wire = 0;
  float rating = 0;
  char account[shm::kAccountBytes + 1] = {};
  bool ok = false;
  // A token still attached to a session of a worker that has died (killed
  // a moment ago: the master has not marked it down yet) is free: the
  // session it names is gone. The liveness check reads /proc, so it runs
  // outside the table lock and the row is checked again under it.
  uint32_t dead_worker = shm::kNoWorker;
  {
    auto g = players.lock();
    const shm::PlayerRow* p = players.get_wire(want[0]);
    if (p != nullptr && same_token(p->token, want) && p->state == shm::PlayerState::Connected && p->worker != index_ &&
        p->worker < seg_->worker_slots())
      dead_worker = p->worker;
  }
  if (dead_worker != shm::kNoWorker && !worker_alive(dead_worker)) {
    ++stats_.resumes_from_dead_worker;
  } else {
    dead_worker = shm::kNoWorker;
  }
  {
    auto g = players.lock();
    shm::PlayerRow* p = players.get_wire(want[0]);
    const bool orphan = dead_worker != shm::kNoWorker && p != nullptr && p->state == shm::PlayerState::Connected &&
                        p->worker == dead_worker;
    if (p != nullptr && same_token(p->token, want) && (p->state == shm::PlayerState::Disconnected || orphan)) {
      p->worker = index_;
      p->connection_gen += 1;
      shared_store(p->disconnected_at_ms, int64_t(0));
      shared_store(p->state, shm::PlayerState::Connected);
      s->player_id = p->player_id;
      match_wire = shared_load(p->match);
      rating = p->rating;
      copy_account(*p, account);
      ok = true;
    }
  }
  if (!ok) {
    ++stats_.resume_failures;
    send_error(s, ErrorCode::BadToken, true, "unknown, expired or already attached session token");
    return false;
  }
  ++stats_.resumes;
  std::memcpy(s->token, want, sizeof s->token);
  s->player_wire = want[0];
  by_player_[s->player_wire] = s;
  s->state = SessionState::Ready;
  s->decoder.set_max_frame_bytes(cfg_.max_frame_bytes);
  set_list(s, idle_list_, now_ms());

  // Back in its match: the seat and the newest input seq it holds (a client
  // that lost its own count continues above it).
  uint32_t n = 0;
  uint32_t wires[shm::kMaxMatchPlayers];
  uint32_t ids[shm::kMaxMatchPlayers];
  float ratings[shm::kMaxMatchPlayers];
  uint32_t seat = shm::kMaxMatchPlayers;
  uint32_t last_seq = 0;
  if (match_wire != 0 && read_seats(seg_->matches(), match_wire, n, wires, ids, ratings)) {
    for (uint32_t i = 0; i < n; ++i)
      if (wires[i] == s->player_wire) seat = i;
    if (shm::MatchRow* row = seg_->matches().get_wire(match_wire); row != nullptr && seat < n) {
      auto g = shm::lock_match(*row);
      last_seq = row->inputs[seat].last_seq;
    }
  }
  // A match that ended while the player was away: its MatchEnd follows the
  // Welcome (the row lingers after the end for this).
  const shm::MatchState ms = match_state(match_wire);
  const bool ended = match_wire != 0 && seat == shm::kMaxMatchPlayers && ms == shm::MatchState::Ended;
  // Forming with the player seated: the coordinator is between seating and
  // Running (or will finish it after a restart); its MatchFound, sent to
  // the worker the player's row names once Running, reaches this one. Only
  // a match that is gone is cleared.
  if (match_wire != 0 && seat == shm::kMaxMatchPlayers && !ended && !match_forming(match_wire))
    clear_stale_match(p_row(s), match_wire);
  auto& b = enc_.builder();
  auto version = b.CreateString(SKIRMISH_VERSION);
  auto acct = account[0] != '\0' ? b.CreateString(account) : 0;
  SessionToken tok(want[0], want[1], want[2], want[3]);
  auto w = CreateWelcome(b, ProtocolVersion::Current, &tok, s->player_id, index_, uint16_t(cfg_.tick_rate_hz), rating,
                         true, seat < n ? match_wire : 0, uint32_t(core::monotonic_ms() - start_ms_), last_seq,
                         version, acct);
  if (!send(s, enc_.finish(w))) return false;
  if (ended) deliver_match_end(s, match_wire, build_match_end(match_wire));
  // MatchFound again (the client resets its worlds), then a full Snapshot
  // at the next tick.
  if (seat < n) seat_session(s, match_wire, seat, n, wires, ids, ratings);
  return s->state == SessionState::Ready;
}

}  // namespace skirmish::worker
