// The worker's part in the game: queueing, inputs, ticking the matches it
// owns, and sending snapshots and results to its own clients for every
// match they sit in, wherever that match is ticked.
//
// - Tickets and seats are rows in shared memory (coordinator/coordinator.h
//   says who writes what); this file only keeps process-local indexes over
//   them: by_player_ (player -> session), local_ (match -> sessions here)
//   and owned_ (matches this worker ticks).
// - Ticking: every owned match steps on one worker-wide grid of
//   1/tick_rate_hz, so one timer pass steps them all and posts one batch of
//   MatchTicked events (one eventfd wake per other worker, not one per
//   match). A late pass is caught up, up to one second of ticks; beyond that
//   the backlog is skipped, counted and logged.
// - A worker learns of a new tick from its mailbox (MatchTicked) and sends
//   each of its sessions in that match one Snapshot: full when the client
//   has acknowledged nothing usable, else a delta against the tick it acked.
// - The end: at the score or time limit, or Abandoned (no seat connected
//   and none within its resume grace; no rating change). The row is marked
//   Ended before the workers to tell are read, so a player resuming
//   anywhere meanwhile is either told or sees Ended. A player's row keeps
//   the match until its MatchEnd is in the kernel (on_flushed): a worker
//   killed with it still queued leaves it to be sent again on resume.
// - Fan-out goes through match::WorkerSet, every slot of both banks.
#include <spdlog/spdlog.h>

#include <cstring>

#include "core/process.h"
#include "match/match_store.h"
#include "matchmaking/rating.h"
#include "shm/atomic_field.h"
#include "shm/histogram_field.h"
#include "worker/worker.h"

namespace skirmish::worker {

using namespace skirmish::proto;
using shm::shared_load;
using shm::shared_store;

// Inputs that arrive this soon after MatchEnd crossed it in flight: they
// are dropped and counted, not answered with Error(NotInMatch).
static constexpr int64_t kInputGraceAfterEndMs = 2000;

void Worker::post(uint32_t index, const shm::Event& e) {
  // A refusal is counted in this worker's row by Segment::post (mailbox_full).
  if (const uint64_t refused = seg_->post(index_, index, e); refused % 1000 == 1)
    spdlog::warn("mailbox of process {} full: event {} not delivered ({} so far)", index, e.type, refused);
}

void Worker::on_event(const shm::Event& e) {
  if (seg_ == nullptr) return;
  switch (static_cast<shm::EventType>(e.type)) {
    case shm::EventType::MatchCreated:
    case shm::EventType::MatchAdopted:
      on_match_created(e.a);
      break;
    case shm::EventType::MatchFound:
      on_match_found(e.a);
      break;
    case shm::EventType::MatchTicked:
      send_snapshots(e.a);
      break;
    case shm::EventType::MatchEnded:
      on_match_ended(e.a);
      break;
    default:
      SPDLOG_DEBUG("event {} ignored", e.type);
      break;
  }
}

// ---------------------------------------------------------------- queue

void Worker::on_queue_join(Session* s, const QueueJoin* m) {
  if (leaving_ == Leave::Drain) {
    // No match starts any more. Not fatal: a seated player keeps its match.
    send_error(s, ErrorCode::ShuttingDown, false, "the server is shutting down: queue on another server");
    return;
  }
  if (m->mode() != 0) {
    send_error(s, ErrorCode::BadRequest, false, "unknown mode (0 = the game this server hosts)");
    return;
  }
  const uint32_t key = m->party_key();
  const uint32_t size = key == 0 ? 1 : m->party_size();
  if (size < 1 || size > cfg_.match_size) {
    send_error(s, ErrorCode::BadRequest, false, "party_size must be 1..match_size");
    return;
  }
  auto players = seg_->players();
  auto tickets = seg_->tickets();
  shm::PlayerRow* p = players.get_wire(s->player_wire);
  if (p == nullptr) {
    send_error(s, ErrorCode::Internal, true, "player row lost");
    return;
  }
  if (const uint32_t seated = shared_load(p->match); seated != 0) {
    if (match_state(seated) == shm::MatchState::Running || match_forming(seated)) {  // MatchFound follows
      send_error(s, ErrorCode::UnexpectedMessage, false, "already in a match");
      return;
    }
    clear_stale_match(p, seated);  // ended (its MatchEnd went out) or gone
  }
  if (const shm::TicketRow* t = tickets.get_wire(shared_load(p->ticket));
      t != nullptr && shared_load(t->state) == shm::TicketState::Waiting) {
    send_error(s, ErrorCode::AlreadyInQueue, false, "already in the queue");
    return;
  }
  // Allocated Free (invisible to the coordinator), linked to the player,
  // then made Waiting: the coordinator never matches a ticket whose player
  // does not point at it yet.
  const float rating = p->rating;
  auto h = tickets.alloc([&](shm::TicketRow& t) {
    t.state = shm::TicketState::Free;
    t.player = s->player_wire;
    t.rating = rating;
    t.mode = m->mode();
    t.party_size = size;
    t.worker = index_;
    t.party_key = key;
    t.joined_at_ms = core::monotonic_ms();
  });
  if (!h) {
    send_error(s, ErrorCode::ServerFull, false, "matchmaking queue full");
    return;
  }
  {
    auto g = players.lock();
    shared_store(p->ticket, shm::to_wire(*h));
  }
  // The answer is taken while the ticket is still Free (Searching): once it
  // is Waiting the coordinator may match it at once, and the answer would
  // say Playing before the MatchFound that follows it.
  send_queue_status(s);
  shared_store(tickets.get(*h)->state, shm::TicketState::Waiting);
  ++stats_.tickets_created;
  post(seg_->coordinator_index(), shm::make_event(shm::EventType::TicketChanged, index_, shm::to_wire(*h)));
}

void Worker::on_queue_leave(Session* s) {
  auto players = seg_->players();
  auto tickets = seg_->tickets();
  shm::PlayerRow* p = players.get_wire(s->player_wire);
  const uint32_t ticket = p == nullptr ? 0 : shared_load(p->ticket);
  bool cancelled = false;
  if (ticket != 0) {
    auto g = tickets.lock();
    shm::TicketRow* t = tickets.get_wire(ticket);
    if (t != nullptr && t->state == shm::TicketState::Waiting) {
      shared_store(t->state, shm::TicketState::Cancelled);
      cancelled = true;
    }
  }
  if (!cancelled) {
    // No ticket, or the coordinator matched it first: MatchFound follows.
    send_error(s, ErrorCode::NotInQueue, false, "not in the queue");
    return;
  }
  {
    auto g = players.lock();
    if (p->ticket == ticket) shared_store(p->ticket, uint32_t(0));
  }
  ++stats_.tickets_cancelled;
  post(seg_->coordinator_index(), shm::make_event(shm::EventType::TicketChanged, index_, ticket));
  send_queue_status(s);
}

void Worker::send_queue_status(Session* s) {
  auto tickets = seg_->tickets();
  const shm::PlayerRow* p = seg_->players().get_wire(s->player_wire);
  QueueState state = QueueState::Idle;
  uint32_t waited = 0;
  uint32_t window = 0;
  if (p != nullptr && match_state(shared_load(p->match)) == shm::MatchState::Running) {
    state = QueueState::Playing;
  } else if (p != nullptr) {
    const shm::TicketRow* t = tickets.get_wire(shared_load(p->ticket));
    if (t != nullptr) {
      const auto ts = shared_load(t->state);
      if (ts == shm::TicketState::Waiting || ts == shm::TicketState::Free) {
        state = QueueState::Searching;
        waited = uint32_t(std::max<int64_t>(0, core::monotonic_ms() - t->joined_at_ms));
        window = matchmaking::window_at(match::matchmaking_params(cfg_), waited);
      } else if (ts == shm::TicketState::Matched) {
        state = QueueState::Matched;
      }
    }
  }
  auto& b = enc_.builder();
  auto m = CreateQueueStatus(b, state, waited, window, tickets.size());
  send(s, enc_.finish(m));
}

// ---------------------------------------------------------------- inputs

void Worker::on_input(Session* s, const Input* m) {
  ++stats_.inputs;
  if (s->match_wire == 0) {
    if (s->match_ended_ms != 0 && now_ms() - s->match_ended_ms < kInputGraceAfterEndMs) {
      // Sent before the client saw MatchEnd: no fault of the client's.
      ++stats_.inputs_dropped;
      return;
    }
    ++stats_.inputs_rejected;
    send_error(s, ErrorCode::NotInMatch, false, "not in a running match");
    return;
  }
  // The game's bytes are untrusted: the length is the server's bound, the
  // content the module's check_input. Refused inputs never reach step().
  const flatbuffers::Vector<uint8_t>* data = m->data();
  const uint32_t len = data == nullptr ? 0 : data->size();
  if (len == 0 || len > game_->table()->max_input_bytes) {
    ++stats_.inputs_rejected;
    send_error(s, ErrorCode::BadInput, false, "Input.data must be 1..MatchFound.max_input_bytes bytes");
    return;
  }
  if (const uint32_t verdict = game_->table()->check_input(data->data(), len); verdict != SKIRMISH_INPUT_OK) {
    ++stats_.inputs_rejected;
    send_error(s, ErrorCode::BadInput, false,
               verdict == SKIRMISH_INPUT_MALFORMED ? "Input.data malformed for this game"
                                                   : "Input.data holds a value this game does not allow");
    return;
  }
  // An ack names a tick sent on this connection since MatchFound; anything
  // else is ignored. After a resume the client may still hold (and ack)
  // worlds from the dropped connection: a delta against one of those would
  // name a base the server never sent here (PROTOCOL.md, Playing).
  const uint32_t ack = m->ack_tick();
  if (ack > s->ack_tick && s->first_sent_tick != 0 && ack >= s->first_sent_tick && ack <= s->last_sent_tick)
    s->ack_tick = ack;
  shm::MatchRow* row = seg_->matches().get_wire(s->match_wire);
  if (row == nullptr) return;
  match::QueueResult r;
  {
    auto g = shm::lock_match(*row);
    if (seg_->matches().get_wire(s->match_wire) != row || row->state != shm::MatchState::Running) return;
    r = match::queue_input_locked(*row, s->seat, m->seq(), data->data(), len, cfg_.max_inputs_queued);
  }
  if (r != match::QueueResult::Queued) ++stats_.inputs_dropped;
}

// ---------------------------------------------------------------- matches

void Worker::take_owned_matches() {
  if (seg_ == nullptr) return;
  seg_->matches().for_each_used([&](shm::Handle h, shm::MatchRow& m) {
    if (shared_load(m.owner_worker) == index_ && shared_load(m.state) == shm::MatchState::Running)
      on_match_created(shm::to_wire(h));
  });
}

void Worker::on_match_created(uint32_t wire) {
  for (const Owned& o : owned_)
    if (o.wire == wire) return;  // a repeat (coordinator recovery)
  Owned o{wire, 0, {}};
  shm::MatchRow* row = seg_->matches().get_wire(wire);
  if (row == nullptr) return;
  {
    auto g = shm::lock_match(*row);
    if (seg_->matches().get_wire(wire) != row) return;
    o.n = std::min(row->seat_count, shm::kMaxMatchPlayers);
    std::memcpy(o.players, row->players, o.n * sizeof o.players[0]);
  }
  owned_.push_back(o);
  if (next_tick_us_ == 0) {
    // Idle until now: the grid starts one interval from here.
    next_tick_us_ = uv_hrtime() / 1000 + 1'000'000 / cfg_.tick_rate_hz;
    arm_tick(1000 / cfg_.tick_rate_hz);
  }
}

bool read_seats(shm::SlotTable<shm::MatchRow> matches, uint32_t wire, uint32_t& n, uint32_t* wires,
                       uint32_t* ids, float* ratings) {
  shm::MatchRow* row = matches.get_wire(wire);
  if (row == nullptr) return false;
  auto g = shm::lock_match(*row);
  if (matches.get_wire(wire) != row || row->state != shm::MatchState::Running) return false;
  n = std::min(row->seat_count, shm::kMaxMatchPlayers);
  for (uint32_t i = 0; i < n; ++i) {
    wires[i] = row->players[i];
    ids[i] = row->player_ids[i];
    ratings[i] = row->results[i].rating_before;
  }
  return true;
}

void Worker::on_match_found(uint32_t wire) {
  uint32_t n = 0;
  uint32_t wires[shm::kMaxMatchPlayers];
  uint32_t ids[shm::kMaxMatchPlayers];
  float ratings[shm::kMaxMatchPlayers];
  if (!read_seats(seg_->matches(), wire, n, wires, ids, ratings)) return;
  for (uint32_t seat = 0; seat < n; ++seat) {
    auto it = by_player_.find(wires[seat]);
    if (it == by_player_.end()) continue;
    Session* s = it->second;
    if (s->match_wire == wire || s->state != SessionState::Ready) continue;  // a repeat
    if (leaving_ == Leave::HandOver) {
      // A new match is the new generation's: the seat waits in the
      // player's row and MatchFound comes again on resume there.
      send_on(s);
      continue;
    }
    seat_session(s, wire, seat, n, wires, ids, ratings);
  }
}

void Worker::seat_session(Session* s, uint32_t wire, uint32_t seat, uint32_t n, const uint32_t* wires,
                          const uint32_t* ids, const float* ratings) {
  s->match_wire = wire;
  s->seat = uint8_t(seat);
  s->ack_tick = 0;  // the next snapshot is full
  s->last_sent_tick = 0;
  s->first_sent_tick = 0;
  local_[wire].sessions.push_back(s);

  auto players = seg_->players();
  auto& b = enc_.builder();
  flatbuffers::Offset<PlayerInfo> infos[shm::kMaxMatchPlayers];
  for (uint32_t i = 0; i < n; ++i) {
    const shm::PlayerRow* p = players.get_wire(wires[i]);
    size_t len = p == nullptr ? 0 : strnlen(p->name, sizeof p->name);
    auto name = b.CreateString(p == nullptr ? "" : p->name, len);
    infos[i] = CreatePlayerInfo(b, ids[i], uint8_t(i), uint8_t(i), ratings[i], name);
  }
  auto list = b.CreateVector(infos, n);
  // The rules of the match (the module's public params), so a client knows
  // the game without a copy of the server's config.
  const skirmish_game_v1_t* g = game_->table();
  flatbuffers::Offset<GameParam> params[64];
  const size_t n_params = std::min<size_t>(game_->public_params.size(), 64);
  for (size_t i = 0; i < n_params; ++i) {
    const skirmish_param& p = game_->public_params[i];
    const ParamType type = p.type == SKIRMISH_PARAM_FLOAT  ? ParamType::Float
                           : p.type == SKIRMISH_PARAM_BOOL ? ParamType::Bool
                           : p.type == SKIRMISH_PARAM_STRING ? ParamType::String
                                                             : ParamType::Int;
    params[i] = CreateGameParam(b, b.CreateString(p.key), type, b.CreateString(module::param_text(p)));
  }
  auto m = CreateMatchFound(b, wire, uint8_t(seat), list, uint16_t(cfg_.tick_rate_hz), b.CreateString(g->name),
                            b.CreateString(g->version), b.CreateVector(params, n_params),
                            uint16_t(g->max_input_bytes));
  send(s, enc_.finish(m));
}

void Worker::tick() {
  const uint64_t interval = 1'000'000 / cfg_.tick_rate_hz;
  uint64_t now = uv_hrtime() / 1000;
  uint32_t passes = 0;
  while (!owned_.empty() && now >= next_tick_us_ && passes < cfg_.tick_rate_hz) {
    const uint64_t drift = now - next_tick_us_;
    if (drift > interval) ++stats_.ticks_late;
    shm::hist_record(stats_.tick_drift_us, shm::kHistBoundsUs, drift);
    step_owned();
    next_tick_us_ += interval;
    ++passes;
    const uint64_t after = uv_hrtime() / 1000;
    shm::hist_record(stats_.tick_pass_us, shm::kHistBoundsUs, after - now);
    now = after;
  }
  if (owned_.empty()) {
    next_tick_us_ = 0;  // idle: on_match_created restarts the grid
    return;
  }
  if (now >= next_tick_us_) {
    // More than a second behind (a stall, a SIGSTOP): catching up would
    // only burst. Skip the backlog, loudly.
    const uint64_t behind = (now - next_tick_us_) / interval + 1;
    stats_.ticks_skipped += behind;
    next_tick_us_ += behind * interval;
    spdlog::warn("tick loop {} passes behind: skipped ({} skipped so far)", behind, stats_.ticks_skipped);
  }
  const uint64_t delay_ms = (next_tick_us_ - now + 999) / 1000;
  arm_tick(delay_ms);
}

void Worker::step_owned() {
  auto matches = seg_->matches();
  auto players = seg_->players();
  const int64_t now = core::monotonic_ms();  // the clock of disconnected_at_ms
  for (size_t i = 0; i < owned_.size();) {
    const Owned& own = owned_[i];
    const uint32_t wire = own.wire;
    // Where its players are: who gets MatchTicked, who stands still, and
    // whether anyone can still come back. A seat whose row is gone (freed
    // after the grace, or reused) or whose grace has run out cannot: a
    // match with no such seat left is abandoned now rather than ticked to
    // its time limit for nobody.
    fanout_.clear();
    uint32_t connected = 0;
    bool can_return = false;
    for (uint32_t k = 0; k < own.n; ++k) {
      const shm::PlayerRow* p = players.get_wire(own.players[k]);
      if (p == nullptr) continue;
      const shm::PlayerState st = shared_load(p->state);
      if (st == shm::PlayerState::Connected) {
        connected |= 1u << k;
        can_return = true;
        if (const uint32_t w = shared_load(p->worker); w != index_) fanout_.insert(w);
      } else if (st == shm::PlayerState::Disconnected && leaving_ != Leave::Drain &&
                 now - shared_load(p->disconnected_at_ms) < int64_t(cfg_.resume_grace_ms)) {
        // (In a drain nothing listens: a dropped player cannot come back.)
        can_return = true;
      }
    }
    shm::MatchRow* row = matches.get_wire(wire);
    match::StepOutcome o{0, false, false};
    bool quarantine = false;
    bool crashed = false;
    uint64_t step_us = 0;
    uint32_t crashes = 0;
    if (row != nullptr) {
      auto g = shm::lock_match(*row);
      if (matches.get_wire(wire) == row && row->state == shm::MatchState::Running && row->owner_worker == index_) {
        if (shared_load(row->stepping) != 0) {
          // A step() that never returned: the module crashed the process
          // that ran it (this worker's previous life, or the owner this one
          // took the match over from). Once is stepped again; twice on the
          // same match is the module's fault, not bad luck: quarantine.
          shared_store(row->stepping, uint32_t(0));
          crashes = ++row->step_crashes;
          crashed = true;
        }
        if (row->step_crashes >= 2) {
          quarantine = true;
          o = {uint32_t(row->tick), false, true};
        } else if (can_return) {
          const uint64_t t0 = uv_hrtime();
          o = match::step_locked(*row, ring_of(*row), connected);
          step_us = (uv_hrtime() - t0) / 1000;
        } else {
          o = {uint32_t(row->tick), false, true};  // abandoned: ended below, not stepped
        }
        row->last_tick_ms = core::monotonic_ms();
      }
    }
    if (crashed) {
      ++stats_.step_crashes;
      spdlog::error("match {:#x}: game {} crashed in step() after tick {} ({} time{}){}", wire, game_->table()->name,
                    o.tick, crashes, crashes == 1 ? "" : "s",
                    quarantine ? ": quarantined, ended with GameError" : ": stepping it again");
    }
    if (o.record_lost) {
      ++stats_.records_lost;
      if (const int64_t t = core::monotonic_ms(); t - record_lost_logged_ms_ >= 10000) {
        record_lost_logged_ms_ = t;
        spdlog::warn("match {:#x}: its record ring filled at tick {}: recorded up to there only (game.record_ring_bytes "
                     "= {}; {} so far)", wire, o.tick, cfg_.record_ring_bytes, stats_.records_lost);
      }
    }
    if (step_us > cfg_.step_budget_us) {
      ++stats_.steps_over_budget;
      if (const int64_t t = core::monotonic_ms(); t - budget_logged_ms_ >= 10000) {
        budget_logged_ms_ = t;
        spdlog::warn("match {:#x}: a step() of game {} took {} us (budget game.step_budget_us = {}; {} over so far)",
                     wire, game_->table()->name, step_us, cfg_.step_budget_us, stats_.steps_over_budget);
      }
    }
    if (o.ok && (quarantine || !can_return)) {
      if (quarantine) ++stats_.matches_quarantined;
      end_match(wire, quarantine ? kEndGameError : kEndAbandoned);
      owned_[i] = owned_.back();
      owned_.pop_back();
      continue;
    }
    if (!o.ok) {
      // Gone, ended, or handed to another worker: no longer ours.
      owned_[i] = owned_.back();
      owned_.pop_back();
      continue;
    }
    ++stats_.ticks;
    fanout_.for_each([&](uint32_t w) { post(w, shm::make_event(shm::EventType::MatchTicked, index_, wire, o.tick)); });
    send_snapshots(wire);
    if (o.ended) {
      end_match(wire);
      owned_[i] = owned_.back();
      owned_.pop_back();
      continue;
    }
    ++i;
  }
}

void Worker::end_owned_for_shutdown() {
  // end_match leaves owned_ alone; it is emptied after.
  for (const Owned& o : owned_) end_match(o.wire, kEndShutdownDeadline);
  owned_.clear();
}

void Worker::end_match(uint32_t wire, uint32_t forced_reason) {
  auto matches = seg_->matches();
  auto players = seg_->players();
  shm::MatchRow* row = matches.get_wire(wire);
  if (row == nullptr) return;
  skirmish_outcome fin{};
  uint32_t n = 0;
  uint32_t wires[shm::kMaxMatchPlayers];
  float before[shm::kMaxMatchPlayers];
  {
    auto g = shm::lock_match(*row);
    if (matches.get_wire(wire) != row || !match::outcome_locked(*row, ring_of(*row), fin)) return;
    // Cut short only while still running and ours (not adopted meanwhile).
    if (forced_reason != 0 && (row->state != shm::MatchState::Running || row->owner_worker != index_)) return;
    n = std::min(row->seat_count, shm::kMaxMatchPlayers);
    for (uint32_t i = 0; i < n; ++i) {
      wires[i] = row->players[i];
      before[i] = row->results[i].rating_before;
    }
  }
  // Places come from the module; a place out of 1..n (a buggy module) is
  // clamped so the ratings math only ever sees valid ranks.
  uint8_t places[shm::kMaxMatchPlayers] = {};
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t p = fin.seats[i].place;
    places[i] = uint8_t(p >= 1 && p <= n ? p : n);
  }
  const uint32_t game_reason = fin.end == SKIRMISH_END_SCORE_LIMIT  ? end_code(EndReason::ScoreLimit)
                               : fin.end == SKIRMISH_END_TIME_LIMIT ? end_code(EndReason::TimeLimit)
                                                                    : end_code(EndReason::Completed);

  // Ratings: read, update (outside any lock), write back; one lock at a time.
  // An abandoned match (everyone left for good) is no result: no rating
  // moves, and its MatchEnd shows after == before.
  // Nor is a match the server cut short (its places say who led).
  const bool rated = forced_reason == 0;
  matchmaking::Rating r[shm::kMaxMatchPlayers];
  {
    auto g = players.lock();
    for (uint32_t i = 0; i < n; ++i)
      if (const shm::PlayerRow* p = players.get_wire(wires[i])) r[i] = {p->rating, p->rd, p->volatility};
      else r[i].r = before[i];
  }
  std::vector<matchmaking::Rating> after;
  if (rated) after = matchmaking::update_ffa(std::span(r, n), std::span(places, n));
  else after.assign(r, r + n);
  {
    auto g = players.lock();
    for (uint32_t i = 0; i < n && i < after.size(); ++i) {
      shm::PlayerRow* p = players.get_wire(wires[i]);
      if (p == nullptr) continue;
      p->rating = after[i].r;
      p->rd = after[i].rd;
      p->volatility = after[i].vol;
      // p->match stays until its worker has delivered MatchEnd (on_flushed),
      // so a player reconnecting meanwhile still gets it.
    }
  }
  if (rated) persist_results(n, wires);
  {
    auto g = shm::lock_match(*row);
    if (matches.get_wire(wire) != row) return;
    for (uint32_t i = 0; i < n; ++i) {
      shm::SeatResult& res = row->results[i];
      res.place = places[i];
      res.score = fin.seats[i].score;
      res.rating_before = r[i].r;
      res.rating_after = i < after.size() ? after[i].r : r[i].r;
    }
    row->end_reason = forced_reason != 0 ? forced_reason : game_reason;
    row->end_detail = forced_reason != 0 ? 0 : fin.detail;
    shared_store(row->ended_at_ms, core::monotonic_ms());
    shared_store(row->state, shm::MatchState::Ended);
  }
  // Who to tell, read only now that the row says Ended: a player resuming
  // on another worker either set its worker before this read (and is told)
  // or sees the match Ended (on_resume sends the MatchEnd itself). Read
  // before the store, a resume in between was seated in a match whose end
  // nobody announced to it.
  fanout_.clear();
  {
    auto g = players.lock();
    for (uint32_t i = 0; i < n; ++i)
      if (const shm::PlayerRow* p = players.get_wire(wires[i]))
        if (const uint32_t w = shared_load(p->worker); w != index_) fanout_.insert(w);
  }
  ++stats_.matches_ended;
  if (forced_reason == kEndShutdownDeadline) ++stats_.matches_ended_at_deadline;
  fanout_.for_each([&](uint32_t w) { post(w, shm::make_event(shm::EventType::MatchEnded, index_, wire)); });
  on_match_ended(wire);
}

std::span<const uint8_t> Worker::build_match_end(uint32_t wire) {
  shm::MatchRow* row = seg_->matches().get_wire(wire);
  uint32_t n = 0;
  shm::SeatResult res[shm::kMaxMatchPlayers];
  uint32_t ids[shm::kMaxMatchPlayers];
  uint32_t reason = 0;
  uint32_t detail = 0;
  uint32_t final_tick = 0;
  if (row != nullptr) {
    auto g = shm::lock_match(*row);
    if (seg_->matches().get_wire(wire) == row && row->state == shm::MatchState::Ended) {
      n = std::min(row->seat_count, shm::kMaxMatchPlayers);
      std::memcpy(res, row->results, sizeof res[0] * n);
      std::memcpy(ids, row->player_ids, sizeof ids[0] * n);
      reason = row->end_reason;
      detail = row->end_detail;
      final_tick = uint32_t(row->tick);
    }
  }
  auto& b = enc_.builder();
  flatbuffers::Offset<PlayerResult> list[shm::kMaxMatchPlayers];
  for (uint32_t i = 0; i < n; ++i)
    list[i] = CreatePlayerResult(b, ids[i], uint8_t(i), res[i].place, res[i].score, res[i].rating_before,
                                 res[i].rating_after);
  // end_reason is the wire's EndReason + 1 (0: none, which a row read as
  // Ended never holds; Abandoned is the safe reading of anything else).
  const auto wire_reason = reason >= 1 && reason - 1 <= uint32_t(EndReason::MAX) ? EndReason(reason - 1)
                                                                                 : EndReason::Abandoned;
  auto m = CreateMatchEnd(b, wire, wire_reason, final_tick, b.CreateVector(list, n), detail);
  return enc_.finish(m);
}

void Worker::deliver_match_end(Session* s, uint32_t wire, std::span<const uint8_t> frame) {
  s->match_wire = 0;
  s->ack_tick = 0;
  s->match_ended_ms = now_ms();
  if (!send(s, frame)) return;  // closed: the row keeps the match for a resume
  // The player's row keeps the match until the frame is in the kernel
  // (on_flushed): a worker killed with the MatchEnd still in its write
  // queue, at the end of a long tick pass, would otherwise lose it for good.
  s->end_unflushed_wire = wire;
  // Leaving (a drain or a hand-over): its match is done, so is its time here.
  if (leaving_ != Leave::No && s->state == SessionState::Ready) send_on(s);
}

void Worker::on_flushed(Session* s) {
  const uint32_t wire = s->end_unflushed_wire;
  if (wire == 0 || seg_ == nullptr) return;
  s->end_unflushed_wire = 0;
  // Delivered: the player is free to queue again (its row may name a newer
  // match by now: only this one is cleared).
  auto players = seg_->players();
  auto g = players.lock();
  if (shm::PlayerRow* p = players.get_wire(s->player_wire); p != nullptr && p->match == wire)
    shared_store(p->match, uint32_t(0));
}

void Worker::on_match_ended(uint32_t wire) {
  auto it = local_.find(wire);
  if (it == local_.end()) return;
  // send() never touches enc_, so one frame serves every session.
  const auto frame = build_match_end(wire);
  std::vector<Session*> sessions = std::move(it->second.sessions);
  local_.erase(it);
  for (Session* s : sessions)
    if (s->match_wire == wire && s->state == SessionState::Ready) deliver_match_end(s, wire, frame);
}

shm::MatchState Worker::match_state(uint32_t wire) const {
  shm::MatchRow* row = wire == 0 ? nullptr : seg_->matches().get_wire(wire);
  return row == nullptr ? shm::MatchState::Forming : shared_load(row->state);
}

bool Worker::match_forming(uint32_t wire) const {
  shm::MatchRow* row = wire == 0 ? nullptr : seg_->matches().get_wire(wire);
  return row != nullptr && shared_load(row->state) == shm::MatchState::Forming;
}

void Worker::clear_stale_match(shm::PlayerRow* p, uint32_t wire) {
  if (p == nullptr) return;
  auto players = seg_->players();
  auto g = players.lock();
  if (p->match == wire) shared_store(p->match, uint32_t(0));
}

shm::PlayerRow* Worker::p_row(const Session* s) const { return seg_->players().get_wire(s->player_wire); }

void Worker::forget(Session* s) {
  if (s->loading) loading_.erase(s->id);
  if (s->match_wire == 0) return;
  auto it = local_.find(s->match_wire);
  if (it == local_.end()) return;
  auto& v = it->second.sessions;
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] == s) {
      v[i] = v.back();
      v.pop_back();
      break;
    }
  if (v.empty()) local_.erase(it);
}

}  // namespace skirmish::worker
