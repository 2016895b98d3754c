// chaos_bots.cpp: skirmish-bench-chaos's bots (chaos_bench.h).
//
// Each bot is a skirmish::client::Client with automatic resume: it queues on
// Welcome, answers every Snapshot with the module's bot_input for its seat
// (at most one Input each), queues again after MatchEnd, and records what it
// saw of drops, resumes, tickets and snapshot continuity for the report. A
// sweep once a second probes bots that wait too long and counts bots stuck
// in a silent match.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "bench/chaos_bench.h"

namespace bench_chaos {

using namespace skirmish;
using client::Client;

// ---------------------------------------------------------------- bots

MatchInfo& Bench::match_info(uint32_t id) { return matches_[id]; }

void Bench::make_bot(uint32_t i) {
  auto bp = std::make_unique<Bot>();
  Bot* b = bp.get();
  b->index = i;
  b->rng = 0x9E3779B97F4A7C15ull * (uint64_t(i) + 1) | 1;
  client::Options opt;
  opt.name = "chaos" + std::to_string(i);
  opt.reconnect.enabled = true;
  b->c = std::make_unique<Client>(&loop_, opt);
  auto& cb = b->c->callbacks();
  cb.on_welcome = [this, b](const proto::Welcome& w) { on_welcome(*b, w); };
  cb.on_match_found = [this, b](const proto::MatchFound& m) { on_match_found(*b, m); };
  cb.on_snapshot = [this, b](const client::World& w) { on_snapshot(*b, w); };
  cb.on_match_end = [this, b](const proto::MatchEnd& m) { on_match_end(*b, m); };
  cb.on_queue_status = [this, b](const proto::QueueStatus& s) { on_queue_status(*b, s); };
  cb.on_reconnecting = [this, b](uint32_t attempt, uint32_t, int) {
    if (attempt != 1) return;
    ++drops_;
    b->reconnecting = true;
    b->dropped_ms = hr_ms();
    b->probe = false;
    b->queued_at_drop = b->queued && !b->in_match;
    b->acked_at_drop = b->queue_acked;
    b->queue_age_at_drop_ms = b->queued ? b->dropped_ms - b->queued_ms : 0;
    b->match_at_drop = b->in_match ? b->match : 0;
    if (b->in_match) {
      ++drops_in_match_;
      if (!b->dropped_in_match) ++match_info(b->match).dropped_bots;
      b->dropped_in_match = true;
    }
  };
  cb.on_error = [this](proto::ErrorCode code, std::string_view text, bool) {
    const size_t ci = size_t(code);
    if (ci < errors_.size()) {
      ++errors_[ci];
      if (!error_text_.count(int(ci))) error_text_[int(ci)] = std::string(text.substr(0, 120));
    } else {
      ++errors_unknown_;
    }
  };
  cb.on_closed = [b](int reason) {
    b->closed = true;
    b->closed_reason = reason;
    b->reconnecting = false;
  };
  bots_.push_back(std::move(bp));
}

void Bench::queue(Bot& b) {
  if (finishing_) return;
  b.probe = false;  // a QueueJoin supersedes an open question: its answer is stale
  if (b.c->queue_join() == 0) {
    b.queued = true;
    b.queue_acked = false;
    b.queued_ms = hr_ms();
  }
}

void Bench::probe_queue(Bot& b) {
  if (b.c->queue_status() == 0) {
    b.probe = true;
    b.probe_ms = hr_ms();
  }
}

void Bench::on_welcome(Bot& b, const proto::Welcome& w) {
  if (!w.resumed()) {
    b.welcomed = true;
    b.player_id = w.player_id();
    queue(b);
    return;
  }
  const double drop_s = (b.dropped_ms - t0_ms_) / 1000.0;
  if (b.reconnecting) resume_ms_.push_back(hr_ms() - b.dropped_ms);
  b.reconnecting = false;
  if (b.end_due != 0) b.end_due_ms = hr_ms();  // dropped again before it came: due after this Welcome
  if (b.in_match && w.match_id() != b.match) {
    // The match ended while the bot was away: its MatchEnd must follow this
    // Welcome (judged when the next message, or none within 2 s, comes).
    ++ended_at_resume_;
    MissedEnd me{b.match, t_s(), drop_s, EndSeen::NoSegment, 0};
    std::string seen = "segment not open";
    if (seg_) {
      const shm::MatchRow* row = seg_->matches().get_wire(b.match);
      if (row == nullptr) {
        me.kind = EndSeen::RowGone;
        seen = "its row is gone";
      } else if (shm::shared_load(row->state) != shm::MatchState::Ended) {
        me.kind = EndSeen::StillRunning;
        seen = fmt("its row is still %s at tick %llu",
                   shm::shared_load(row->state) == shm::MatchState::Running ? "Running" : "Forming",
                   (unsigned long long)shm::shared_load(row->tick));
      } else {
        const double ended = double(shm::shared_load(row->ended_at_ms));
        me.ended_before_resume_ms = hr_ms() - ended;
        const double drop_start = std::min(b.dropped_ms, last_kill_hr_ms_ > 0 ? last_kill_hr_ms_ : b.dropped_ms);
        me.kind = ended < drop_start ? EndSeen::EndedBeforeDrop : EndSeen::EndedDuringDrop;
        match_info(b.match).seen_ended_in_segment = true;
        seen = fmt("the server ended it %.0f ms before the resume, %.0f ms %s the kill", me.ended_before_resume_ms,
                   std::abs(ended - drop_start), me.kind == EndSeen::EndedBeforeDrop ? "BEFORE" : "after");
      }
    }
    missed_ends_.push_back(me);
    b.end_due = b.match;
    b.end_due_ms = hr_ms();
    b.end_due_seen = missed_ends_.size() - 1;
    b.end_due_note = fmt("player %u dropped at t=%.2f s in match %#x; resumed Welcome names match %#x: %s",
                         b.player_id, drop_s, b.match, w.match_id(), seen.c_str());
    leave_match(b);
  }
  // In a match: MatchFound follows. Otherwise it may still hold a ticket
  // (the ticket waits out the grace) or be between matches: ask.
  if (w.match_id() == 0) probe_queue(b);
}

void Bench::end_overdue(Bot& b, const char* why) {
  ++missed_match_end_on_resume_;
  anomaly(b.end_due_note + "; no MatchEnd followed (" + why + ")");
  b.end_due = 0;
}

void Bench::on_match_found(Bot& b, const proto::MatchFound& m) {
  if (b.end_due != 0) end_overdue(b, "a MatchFound came first");
  const uint32_t id = m.match_id();
  if (b.in_match && id == b.match) {
    ++reseated_;  // resumed into the same match: not a new one
    b.slot = m.your_slot();
    return;
  }
  if (b.in_match) leave_match(b);  // a new match before the old one's MatchEnd
  b.queued = false;
  b.probe = false;
  b.in_match = true;
  b.match = id;
  b.slot = m.your_slot();
  b.match_found_ms = hr_ms();
  b.dropped_in_match = false;
  b.snaps = 0;
  b.last_tick = 0;
  b.last_snap_ms = 0;
  b.max_tick_gap = 0;
  b.max_pause_ms = 0;
  b.max_pause_at_s = 0;
  MatchInfo& mi = match_info(id);
  if (mi.found_ms < 0) {
    mi.found_ms = t_s();
    if (const auto* ps = m.players()) {
      mi.seats = ps->size();
      for (const auto* p : *ps) mi.player_ids.push_back(p->player_id());
    }
  }
}

void Bench::on_snapshot(Bot& b, const client::World& w) {
  ++snapshots_;
  if (b.end_due != 0) end_overdue(b, "a Snapshot came first");
  if (!b.in_match || w.match_id != b.match) {
    ++stray_snapshots_;
    return;
  }
  const double now = hr_ms();
  if (b.snaps > 0) {
    if (w.tick > b.last_tick + 1) b.max_tick_gap = std::max(b.max_tick_gap, w.tick - b.last_tick - 1);
    if (now - b.last_snap_ms > b.max_pause_ms) {
      b.max_pause_ms = now - b.last_snap_ms;
      b.max_pause_at_s = (now - t0_ms_) / 1000.0;
    }
  }
  ++b.snaps;
  b.last_tick = w.tick;
  b.last_snap_ms = now;
  steer(b, w);
}

// Folds the bot's view of its current match into the match.
void Bench::leave_match(Bot& b) {
  if (!b.in_match) return;
  MatchInfo& mi = match_info(b.match);
  if (!b.dropped_in_match && b.snaps >= 2) {
    ++mi.observers;
    mi.max_tick_gap = std::max(mi.max_tick_gap, b.max_tick_gap);
    if (b.max_pause_ms > mi.max_pause_ms) {
      mi.max_pause_ms = b.max_pause_ms;
      mi.max_pause_at_s = b.max_pause_at_s;
    }
  }
  b.in_match = false;
}

void Bench::on_match_end(Bot& b, const proto::MatchEnd& m) {
  const uint32_t id = m.match_id();
  auto it = matches_.find(id);
  if (it == matches_.end()) ++match_end_unknown_;
  MatchInfo& mi = match_info(id);
  if (!mi.ended) {
    mi.ended = true;
    mi.ended_ms = t_s();
    mi.reason = m.reason();
    mi.results = m.results() ? m.results()->size() : 0;
  }
  if (std::find(mi.ended_ids.begin(), mi.ended_ids.end(), b.player_id) == mi.ended_ids.end())
    mi.ended_ids.push_back(b.player_id);
  if (b.end_due == id) {
    ++end_after_resume_;
    missed_ends_[b.end_due_seen].end_followed = true;
    b.end_due = 0;
  }
  if (b.in_match && b.match == id) leave_match(b);
  queue(b);
}

void Bench::on_queue_status(Bot& b, const proto::QueueStatus& s) {
  if (b.end_due != 0) end_overdue(b, "a QueueStatus came first");
  if (!b.probe) {  // the unasked one after QueueJoin
    if (b.queued && s.state() == proto::QueueState::Searching) b.queue_acked = true;
    return;
  }
  b.probe = false;
  if (s.state() == proto::QueueState::Idle && !b.in_match) {
    if (b.queued) {  // it had queued and holds no ticket now
      ++tickets_lost_;
      if (b.acked_at_drop) ++tickets_lost_acked_;
      // A QueueJoin the server never acknowledged died with the killed
      // worker unread (one it had read would have left a ticket row that
      // survives the kill and answers Searching): the client queues again,
      // as PROTOCOL.md says. Only an acknowledged ticket lost is a fault.
      if (b.acked_at_drop)
        anomaly(fmt("player %u: queue probe says Idle although it queued %.0f ms before its last drop (QueueJoin %s); "
                  "queued at drop %d, match at drop %#x",
                  b.player_id, b.queue_age_at_drop_ms, b.acked_at_drop ? "acknowledged" : "not acknowledged",
                  int(b.queued_at_drop), b.match_at_drop));
    }
    queue(b);
  } else if (s.state() == proto::QueueState::Searching) {
    b.queued = true;
    b.queued_ms = hr_ms();  // still waiting: give it another round
  }
}

// The module's own bot decides (the arena's steers to the nearest coin and
// tags whoever is close; battleship's fires on its turn only).
void Bench::steer(Bot& b, const client::World& w) {
  const skirmish_game_v1_t* t = o_.table;
  if (t == nullptr || t->bot_input == nullptr) return;
  uint8_t in[SKIRMISH_MAX_INPUT_BYTES];
  const uint32_t cap = b.c->max_input_bytes() > 0 ? std::min<uint32_t>(sizeof in, b.c->max_input_bytes()) : sizeof in;
  const uint32_t n = t->bot_input(w.data(), w.size(), b.slot, &b.rng, in, cap);
  if (b.rng == 0) b.rng = 1;
  if (n == 0 || n > cap) {
    ++bot_idle_;
    return;
  }
  if (b.c->send_input(in, n) == 0)
    ++inputs_sent_;
  else
    ++inputs_refused_;
}

// Once a second: bots that wait far longer than matchmaking allows ask
// for their queue state (a ticket lost in a kill shows as Idle), and bots
// seated in a match that sends nothing for 5 s are counted as stuck.
void Bench::sweep() {
  const double now = hr_ms();
  const double queue_patience_ms = 2000 /* max_wait_ms */ + 8000;
  for (auto& bp : bots_) {
    Bot& b = *bp;
    if (b.closed || b.reconnecting || b.c->state() != client::State::Ready) continue;
    if (b.end_due != 0 && now - b.end_due_ms > 2000) end_overdue(b, "none within 2 s");
    if (b.probe) {
      if (now - b.probe_ms > 5000) b.probe = false;  // unanswered: ask again later
      continue;
    }
    if (b.in_match) {
      const double since = b.snaps > 0 ? b.last_snap_ms : b.match_found_ms;
      if (now - since > 5000) {
        ++stuck_in_match_;
        anomaly(fmt("player %u: seated in match %#x, no snapshot for %.0f ms", b.player_id, b.match, now - since));
        leave_match(b);
        b.queued = false;
        ++queue_probes_;
        probe_queue(b);
      }
    } else if (b.queued && now - b.queued_ms > queue_patience_ms) {
      ++queue_probes_;
      probe_queue(b);
    }
  }
}


}  // namespace bench_chaos
