#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>

#include <unordered_map>

#include "match/match_store.h"
#include "shm/atomic_field.h"
#include "shm/histogram_field.h"

namespace skirmish::coordinator {

using shm::shared_load;
using shm::shared_store;

Coordinator::Coordinator(const config::Config& cfg, shm::Segment* seg, std::uint32_t index, const module::Game* game)
    : cfg_(cfg), seg_(seg), game_(game), index_(index), recorder_(cfg, seg, game, &stats_), fanout_(seg->worker_slots()) {
  // Seeds differ per start so two runs do not replay the same matches.
  seed_ ^= std::uint32_t(shm::unix_time_ms());
}

void Coordinator::post(std::uint32_t index, const shm::Event& e) {
  const std::uint64_t refused = seg_->post(index_, index, e);
  if (refused == 0) return;  // a refusal is counted in this row by Segment::post (mailbox_full)
  if (refused % 1000 == 1)
    spdlog::warn("mailbox of process {} full: event {} for {:#x} not delivered ({} so far)", index, e.type, e.a,
                 refused);
}

void Coordinator::count_owned() {
  owned_.assign(seg_->worker_slots(), 0);
  seg_->matches().for_each_used([&](shm::Handle, shm::MatchRow& m) {
    const std::uint32_t w = shared_load(m.owner_worker);
    if (w < owned_.size() && shared_load(m.state) != shm::MatchState::Ended) ++owned_[w];
  });
}

int Coordinator::pick_owner() const {
  // Fewest matches to tick, then fewest connections, then lowest index.
  // Up workers only, but while the whole server drains (no worker is Up)
  // a Draining one: it ticks an adopted match to its end or the deadline.
  const auto& owned = owned_;
  bool any_up = false;
  for (std::uint32_t w = 0; w < seg_->worker_slots() && !any_up; ++w)
    any_up = shared_load(seg_->process(w).state) == shm::ProcessState::Up;
  const shm::ProcessState usable = any_up || !draining_ ? shm::ProcessState::Up : shm::ProcessState::Draining;
  int best = -1;
  for (std::uint32_t w = 0; w < seg_->worker_slots(); ++w) {
    const shm::ProcessRow& row = seg_->process(w);
    if (shared_load(row.state) != usable) continue;
    if (best < 0) {
      best = int(w);
      continue;
    }
    const auto b = std::uint32_t(best);
    const std::uint64_t conns = shared_load(row.counters.connections_open);
    const std::uint64_t best_conns = shared_load(seg_->process(b).counters.connections_open);
    if (owned[w] < owned[b] || (owned[w] == owned[b] && conns < best_conns)) best = int(w);
  }
  return best;
}

std::size_t Coordinator::round(std::int64_t now_ms) {
  if (draining_) return 0;  // no match starts during a drain; workers cancel the tickets
  ++stats_.rounds;
  auto players = seg_->players();
  tickets_.clear();
  cands_.clear();
  orphans_.clear();
  seg_->tickets().for_each_used([&](shm::Handle h, shm::TicketRow& t) {
    if (shared_load(t.state) != shm::TicketState::Waiting) return;
    const std::uint32_t pw = t.player;
    const shm::PlayerRow* p = players.get_wire(pw);
    if (p == nullptr) {
      orphans_.push_back(h);  // the player is gone for good (no resume grace)
      return;
    }
    // A player in the resume grace keeps the ticket but is not matched
    // until back: a match would start with an empty seat.
    if (shared_load(p->state) != shm::PlayerState::Connected) return;
    matchmaking::Ticket mt;
    mt.id = std::uint32_t(cands_.size());
    mt.rating = t.rating;
    mt.joined_ms = t.joined_at_ms;
    mt.party_key = std::uint32_t(t.party_key);
    mt.party_size = std::uint8_t(t.party_size);
    mt.mode = std::uint8_t(t.mode);
    tickets_.push_back(mt);
    cands_.push_back({h, pw});
  });
  for (shm::Handle h : orphans_)
    if (seg_->tickets().release(h)) ++stats_.tickets_released;
  if (tickets_.size() < cfg_.match_size) return 0;

  auto matches = matchmaking::form_matches(match::matchmaking_params(cfg_), tickets_, now_ms, &invalid_);
  if (!invalid_.empty()) {
    // Parties that can never be matched as given (members disagree on the
    // size or mode, or too many): cancelled rather than left waiting.
    auto tickets = seg_->tickets();
    auto guard = tickets.lock();
    for (std::size_t i = 0; i < tickets_.size(); ++i) {
      if (tickets_[i].party_key == 0) continue;
      for (std::uint32_t key : invalid_)
        if (key == tickets_[i].party_key) {
          if (shm::TicketRow* t = tickets.get(cands_[i].ticket)) shared_store(t->state, shm::TicketState::Cancelled);
          ++stats_.invalid_parties;
        }
    }
  }
  std::size_t formed = 0;
  count_owned();
  for (const auto& m : matches) formed += form(m, tickets_, cands_, now_ms) ? 1 : 0;
  return formed;
}

bool Coordinator::form(const matchmaking::Match& m, const std::vector<matchmaking::Ticket>& tickets,
                       const std::vector<Candidate>& cands, std::int64_t now_ms) {
  const int owner = pick_owner();
  if (owner < 0) return false;
  const std::uint32_t n = std::uint32_t(m.tickets.size());
  if (n < 2 || n > shm::kMaxMatchPlayers) return false;

  // Seat data, read before any lock is taken.
  std::uint32_t wires[shm::kMaxMatchPlayers] = {};
  std::uint32_t ids[shm::kMaxMatchPlayers] = {};
  float ratings[shm::kMaxMatchPlayers] = {};
  shm::Handle ticket_handles[shm::kMaxMatchPlayers];
  auto players = seg_->players();
  for (std::uint32_t i = 0; i < n; ++i) {
    const Candidate& c = cands[m.tickets[i]];
    wires[i] = c.player_wire;
    ratings[i] = tickets[m.tickets[i]].rating;
    ticket_handles[i] = c.ticket;
    if (const shm::PlayerRow* p = players.get_wire(c.player_wire)) ids[i] = p->player_id;
  }

  // (1) the match row, Forming, with its seats and initial state.
  auto matches = seg_->matches();
  auto h = matches.alloc([&](shm::MatchRow& r) {
    r.state = shm::MatchState::Forming;
    r.owner_worker = std::uint32_t(owner);
    r.seat_count = n;
    r.mode = tickets[m.tickets[0]].mode;
    r.created_at_ms = now_ms;
    for (std::uint32_t i = 0; i < n; ++i) {
      r.players[i] = wires[i];
      r.player_ids[i] = ids[i];
      r.results[i].rating_before = ratings[i];
    }
  });
  if (!h) {
    ++stats_.match_alloc_failed;
    if (stats_.match_alloc_failed % 1000 == 1) spdlog::warn("match table full ({} matches)", matches.capacity());
    return false;
  }
  shm::MatchRow& row = *matches.get(*h);
  const std::uint32_t wire = shm::to_wire(*h);
  {
    auto g = shm::lock_match(row);
    seed_ = seed_ * 1664525u + 1013904223u;
    match::start_locked(row, match::ring_of(*seg_, row, game_->table()), game_->params.view(), std::uint8_t(n),
                        seed_);
    recorder_.start_locked(row);
  }

  // (2) claim the tickets, all or none.
  {
    auto ts = seg_->tickets();
    auto g = ts.lock();
    bool all = true;
    for (std::uint32_t i = 0; i < n && all; ++i) {
      const shm::TicketRow* t = ts.get(ticket_handles[i]);
      all = t != nullptr && t->state == shm::TicketState::Waiting;
    }
    if (all) {
      for (std::uint32_t i = 0; i < n; ++i) {
        shm::TicketRow* t = ts.get(ticket_handles[i]);
        t->match = wire;
        shared_store(t->state, shm::TicketState::Matched);
      }
    } else {
      ++stats_.matches_raced;
    }
    if (!all) {
      // Cancelled meanwhile (QueueLeave): the others wait for the next round.
      matches.release(*h);
      return false;
    }
  }
  complete(*h, ticket_handles, n);
  for (std::uint32_t i = 0; i < n; ++i)
    shm::hist_record(stats_.matchmaking_wait_ms, shm::kWaitBoundsMs,
                     std::uint64_t(std::max<std::int64_t>(0, now_ms - tickets[m.tickets[i]].joined_ms)));
  ++owned_[std::uint32_t(owner)];
  ++stats_.matches_formed;
  SPDLOG_DEBUG("match {:#x}: {} players, owner worker {}, spread {:.0f}", wire, n, owner, m.rating_spread);
  return true;
}

void Coordinator::complete(shm::Handle h, const shm::Handle* tickets, std::uint32_t n_tickets) {
  auto matches = seg_->matches();
  shm::MatchRow* row = matches.get(h);
  if (row == nullptr) return;
  const std::uint32_t wire = shm::to_wire(h);
  const std::uint32_t seats = row->seat_count;

  // (3) the players now sit in the match.
  auto players = seg_->players();
  {
    auto g = players.lock();
    for (std::uint32_t i = 0; i < seats; ++i) {
      shm::PlayerRow* p = players.get_wire(row->players[i]);
      if (p == nullptr) continue;
      shared_store(p->ticket, std::uint32_t(0));
      p->seat = std::uint8_t(i);
      shared_store(p->match, wire);
    }
  }
  // (4) running.
  std::uint32_t owner;
  {
    auto g = shm::lock_match(*row);
    if (matches.get(h) != row) return;
    shared_store(row->state, shm::MatchState::Running);
    owner = row->owner_worker;
  }
  // (5) tell the owner and every worker with a player in it. Where the
  // players are is read after (4): a player resuming between (3) and (4)
  // saw the match Forming and waits for this MatchFound on its new worker;
  // one resuming after it sees Running and takes its seat by itself.
  fanout_.clear();
  {
    auto g = players.lock();
    for (std::uint32_t i = 0; i < seats; ++i)
      if (const shm::PlayerRow* p = players.get_wire(row->players[i]))
        fanout_.insert(shared_load(p->worker));  // kNoWorker (in the resume grace) is refused
  }
  post(owner, shm::make_event(shm::EventType::MatchCreated, std::uint16_t(index_), wire));
  fanout_.for_each(
      [&](std::uint32_t w) { post(w, shm::make_event(shm::EventType::MatchFound, std::uint16_t(index_), wire)); });
  // (6) the tickets are spent.
  auto ts = seg_->tickets();
  for (std::uint32_t i = 0; i < n_tickets; ++i)
    if (ts.release(tickets[i])) ++stats_.tickets_released;
}

void Coordinator::recover() {
  // Matched tickets by the match they name.
  std::unordered_map<std::uint32_t, std::vector<shm::Handle>> by_match;
  seg_->tickets().for_each_used([&](shm::Handle h, shm::TicketRow& t) {
    if (shared_load(t.state) == shm::TicketState::Matched) by_match[t.match].push_back(h);
  });
  auto matches = seg_->matches();
  std::vector<std::pair<shm::Handle, shm::MatchState>> rows;
  matches.for_each_used([&](shm::Handle h, shm::MatchRow& m) { rows.emplace_back(h, shared_load(m.state)); });
  for (auto [h, state] : rows) {
    const std::uint32_t wire = shm::to_wire(h);
    auto it = by_match.find(wire);
    shm::MatchRow* row = matches.get(h);
    if (row == nullptr) continue;
    if (state == shm::MatchState::Forming) {
      if (it != by_match.end() && it->second.size() == row->seat_count) {
        complete(h, it->second.data(), std::uint32_t(it->second.size()));
      } else {
        // Claimed only in part (or not at all): give the tickets back.
        if (it != by_match.end()) {
          auto ts = seg_->tickets();
          auto g = ts.lock();
          for (shm::Handle th : it->second)
            if (shm::TicketRow* t = ts.get(th)) {
              t->match = 0;
              shared_store(t->state, shm::TicketState::Waiting);
            }
        }
        matches.release(h);
      }
      ++stats_.matches_recovered;
    } else if (it != by_match.end()) {
      // Running (or ended) with tickets not yet released: (5) may not have
      // happened. Workers ignore a repeat.
      if (state == shm::MatchState::Running) complete(h, it->second.data(), std::uint32_t(it->second.size()));
      else
        for (shm::Handle th : it->second) seg_->tickets().release(th);
      ++stats_.matches_recovered;
    }
    if (it != by_match.end()) by_match.erase(it);
  }
  // Matched tickets naming no match at all: the player goes back to idle.
  for (auto& [wire, hs] : by_match)
    for (shm::Handle th : hs) seg_->tickets().release(th);
  if (stats_.matches_recovered > 0) spdlog::info("recovered {} half-formed matches", stats_.matches_recovered);
}

std::size_t Coordinator::announce_ended(std::uint32_t dead) {
  // A worker killed between marking its match Ended and posting MatchEnded
  // leaves the match's players on other workers waiting for a MatchEnd that
  // nobody sends (the match is not Running, so nobody adopts it). Say it
  // again for every recently ended match it owned; a worker that already
  // delivered it ignores the repeat. Players in the resume grace get it on
  // resume from the row.
  auto matches = seg_->matches();
  auto players = seg_->players();
  std::size_t told = 0;
  matches.for_each_used([&](shm::Handle h, shm::MatchRow& m) {
    if (shared_load(m.owner_worker) != dead || shared_load(m.state) != shm::MatchState::Ended) return;
    fanout_.clear();
    {
      auto g = players.lock();
      const std::uint32_t seats = std::min(m.seat_count, shm::kMaxMatchPlayers);
      for (std::uint32_t i = 0; i < seats; ++i)
        if (const shm::PlayerRow* p = players.get_wire(m.players[i]); p != nullptr && p->match == shm::to_wire(h))
          fanout_.insert(shared_load(p->worker));
    }
    fanout_.for_each([&](std::uint32_t w) {
      post(w, shm::make_event(shm::EventType::MatchEnded, std::uint16_t(index_), shm::to_wire(h)));
    });
    ++told;
  });
  return told;
}

std::size_t Coordinator::adopt_orphaned_matches() {
  auto matches = seg_->matches();
  std::vector<shm::Handle> orphaned;
  matches.for_each_used([&](shm::Handle h, shm::MatchRow& m) {
    if (shared_load(m.state) != shm::MatchState::Running) return;
    const std::uint32_t w = shared_load(m.owner_worker);
    // Down: dead and not yet respawned. A worker respawned in its place
    // (Starting/Up) takes its own matches back when it starts.
    if (!seg_->is_worker(w) || shared_load(seg_->process(w).state) == shm::ProcessState::Down) orphaned.push_back(h);
  });
  if (orphaned.empty()) return 0;
  count_owned();
  std::size_t adopted = 0;
  for (shm::Handle h : orphaned) {
    const int owner = pick_owner();
    if (owner < 0) break;  // no live worker: the next sweep tries again
    shm::MatchRow* row = matches.get(h);
    if (row == nullptr) continue;
    std::uint32_t was;
    {
      auto g = shm::lock_match(*row);  // a dead owner's lock is recovered here
      if (matches.get(h) != row || row->state != shm::MatchState::Running) continue;
      was = row->owner_worker;
      if (seg_->is_worker(was) && shared_load(seg_->process(was).state) != shm::ProcessState::Down) continue;
      shared_store(row->owner_worker, std::uint32_t(owner));
      row->adoptions += 1;
    }
    ++owned_[std::uint32_t(owner)];
    post(std::uint32_t(owner), shm::make_event(shm::EventType::MatchAdopted, std::uint16_t(index_), shm::to_wire(h)));
    ++adopted;
    spdlog::info("match {:#x}: owner worker {} is down; adopted by worker {}", shm::to_wire(h), was, owner);
  }
  stats_.matches_adopted += adopted;
  return adopted;
}

void Coordinator::sweep(std::int64_t now_ms) {
  adopt_orphaned_matches();
  auto players = seg_->players();
  auto tickets = seg_->tickets();
  auto matches = seg_->matches();

  // Seats past the resume grace: their ticket is cancelled, their row freed.
  // Candidates first without the lock, then re-checked under it (a resume
  // may have won the race).
  std::vector<shm::Handle> expired;
  players.for_each_used([&](shm::Handle h, shm::PlayerRow& row) {
    if (shared_load(row.state) == shm::PlayerState::Disconnected &&
        now_ms - shared_load(row.disconnected_at_ms) >= std::int64_t(cfg_.resume_grace_ms))
      expired.push_back(h);
  });
  for (shm::Handle h : expired) {
    std::uint32_t ticket = 0;
    {
      auto g = players.lock();
      shm::PlayerRow* row = players.get(h);
      if (row == nullptr || row->state != shm::PlayerState::Disconnected) continue;
      ticket = row->ticket;
    }
    if (ticket != 0) {
      auto g = tickets.lock();
      if (shm::TicketRow* t = tickets.get_wire(ticket); t && t->state == shm::TicketState::Waiting)
        shared_store(t->state, shm::TicketState::Cancelled);
    }
    players.release(h);
  }
  if (!expired.empty()) SPDLOG_DEBUG("freed {} seats past the resume grace", expired.size());

  std::vector<shm::Handle> done;
  tickets.for_each_used([&](shm::Handle h, shm::TicketRow& t) {
    if (shared_load(t.state) == shm::TicketState::Cancelled) done.push_back(h);
  });
  for (shm::Handle h : done)
    if (tickets.release(h)) ++stats_.tickets_released;

  done.clear();
  matches.for_each_used([&](shm::Handle h, shm::MatchRow& m) {
    if (shared_load(m.state) == shm::MatchState::Ended && now_ms - shared_load(m.ended_at_ms) >= kEndedLingerMs)
      done.push_back(h);
  });
  for (shm::Handle h : done) {
    if (shm::MatchRow* m = matches.get(h)) recorder_.finish(*m, shm::to_wire(h), now_ms);
    if (matches.release(h)) ++stats_.matches_released;
  }
}

}  // namespace skirmish::coordinator
