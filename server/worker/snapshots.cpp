// Snapshots: what each seat may see, full or as a byte delta against the
// view the client acknowledged, for any game.
//
// - The views come from the module (view(state, seat)), computed under the
//   match lock straight from the state ring, so no state is copied: the
//   newest state, and each base a client acknowledged (still among the
//   last kStateRing ticks). The frames are built after the lock.
// - A game with SKIRMISH_GAME_SHARED_VIEW shows every seat the same bytes:
//   one view per tick and one delta per acknowledged base serve every
//   session of the match. Otherwise each seat's view is its own.
// - The delta is protocol/view_delta.h: generic, no game code. A delta no
//   smaller than the full view is not sent (full instead).
// - Scratch buffers are sized once from the module's max_view_bytes at
//   start (Worker::Worker): no allocation per tick.
#include <cstring>

#include "match/match_store.h"
#include "protocol/view_delta.h"
#include "shm/atomic_field.h"
#include "worker/worker.h"

namespace skirmish::worker {

using namespace skirmish::proto;

void Worker::init_view_scratch() {
  const skirmish_game_v1_t* g = game_->table();
  view_cap_ = g->max_view_bytes;
  delta_cap_ = proto::delta_bound(view_cap_);
  cur_views_.assign(size_t(kViewKeys) * view_cap_, 0);
  base_view_.assign(view_cap_, 0);
  deltas_.assign(size_t(kMaxDeltaJobs) * delta_cap_, 0);
}

match::Ring Worker::ring_of(const shm::MatchRow& row) const {
  return match::ring_of(*seg_, row, game_->table());
}

void Worker::send_snapshots(uint32_t wire) {
  auto it = local_.find(wire);
  if (it == local_.end() || it->second.sessions.empty()) return;
  shm::MatchRow* row = seg_->matches().get_wire(wire);
  if (row == nullptr) return;
  std::vector<Session*>& sessions = it->second.sessions;
  const skirmish_game_v1_t* g = game_->table();
  const bool shared = (g->flags & SKIRMISH_GAME_SHARED_VIEW) != 0;

  // Per session: which view key (0 for a shared view, else its seat),
  // which delta job (or none: full), and its last input seq.
  const size_t n = std::min<size_t>(sessions.size(), kMaxSessionsPerMatch);
  uint8_t job_of[kMaxSessionsPerMatch];
  uint32_t last_seq[kMaxSessionsPerMatch] = {};
  struct Job {
    uint32_t key;
    uint32_t base_tick;
    uint32_t len;  // delta bytes; 0 = send full
  };
  Job jobs[kMaxDeltaJobs];
  uint32_t n_jobs = 0;
  uint32_t cur_len[kViewKeys] = {};
  bool cur_have[kViewKeys] = {};
  uint32_t tick = 0;
  {
    auto lock = shm::lock_match(*row);
    if (seg_->matches().get_wire(wire) != row) return;
    const match::Ring ring = ring_of(*row);
    const uint8_t* cur = match::published_locked(*row, ring);
    if (cur == nullptr) return;
    tick = uint32_t(row->tick);
    if (tick == it->second.last_sent_tick) return;  // a repeated wake
    for (size_t k = 0; k < n; ++k) {
      Session* s = sessions[k];
      job_of[k] = kNoJob;
      if (s->state != SessionState::Ready || s->last_sent_tick >= tick) continue;
      const uint32_t seat = s->seat;
      const uint32_t key = shared ? 0 : seat % kViewKeys;
      last_seq[k] = match::applied_seq_locked(*row, uint8_t(seat));
      if (!cur_have[key]) {
        const uint32_t len = g->view(cur, seat, &cur_views_[size_t(key) * view_cap_], view_cap_);
        cur_have[key] = true;
        cur_len[key] = len <= view_cap_ ? len : 0;
        if (len > view_cap_) ++stats_.views_too_long;
      }
      const uint32_t base = s->ack_tick;
      if (base == 0 || base >= tick) continue;
      uint32_t j = 0;
      while (j < n_jobs && !(jobs[j].key == key && jobs[j].base_tick == base)) ++j;
      if (j == n_jobs) {
        if (n_jobs == kMaxDeltaJobs) continue;  // full for this one
        Job job{key, base, 0};
        if (const uint8_t* b = match::tick_locked(*row, ring, base)) {
          const uint32_t blen = g->view(b, seat, base_view_.data(), view_cap_);
          if (blen <= view_cap_) {
            const size_t d = proto::encode_delta(base_view_.data(), blen, &cur_views_[size_t(key) * view_cap_],
                                                 cur_len[key], &deltas_[size_t(j) * delta_cap_], delta_cap_);
            if (d != 0 && d < cur_len[key]) job.len = uint32_t(d);
          }
        }
        jobs[n_jobs++] = job;
      }
      job_of[k] = uint8_t(j);
    }
  }
  it->second.last_sent_tick = tick;

  // Index-based: a send may close a session, which stays in the vector
  // (state Closed, sends refused) until its close callback runs.
  for (size_t k = 0; k < n && k < sessions.size(); ++k) {
    Session* s = sessions[k];
    if (s->state != SessionState::Ready || s->last_sent_tick >= tick) continue;
    const uint32_t key = shared ? 0 : s->seat % kViewKeys;
    if (!cur_have[key]) continue;
    auto& b = enc_.builder();
    uint32_t base_tick = 0;
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> view;
    if (job_of[k] != kNoJob && jobs[job_of[k]].len != 0) {
      base_tick = jobs[job_of[k]].base_tick;
      view = b.CreateVector(&deltas_[size_t(job_of[k]) * delta_cap_], jobs[job_of[k]].len);
    } else {
      view = b.CreateVector(&cur_views_[size_t(key) * view_cap_], cur_len[key]);
    }
    auto m = CreateSnapshot(b, wire, tick, base_tick, last_seq[k], view);
    auto frame = enc_.finish(m);
    if (base_tick == 0) {
      ++stats_.snapshots_full;
      stats_.snapshot_bytes_full += frame.size();
    } else {
      ++stats_.snapshots_delta;
      stats_.snapshot_bytes_delta += frame.size();
    }
    if (s->first_sent_tick == 0) s->first_sent_tick = tick;
    s->last_sent_tick = tick;
    send(s, frame);
  }
}

}  // namespace skirmish::worker
