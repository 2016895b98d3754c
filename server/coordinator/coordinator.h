// The coordinator's work, apart from its loop: matchmaking rounds over the
// tickets in shared memory, match creation, housekeeping, and recovery at
// start. No libuv here; coordinator_process.cpp calls these from its
// eventfd wake and its timer.
//
// Contract
// - Every fact lives in the segment, so a coordinator killed at any point
//   and started again finishes or undoes what its predecessor left:
//   forming a match is, in order, (1) allocate the match row (Forming) with
//   its seats and initial state, (2) under the tickets lock check that every
//   ticket is still Waiting and mark them Matched (match = its id), (3) point
//   the players at the match, (4) mark the match Running, (5) post
//   MatchCreated to the owner and MatchFound to each worker holding a
//   player, (6) release the tickets. recover() redoes (3)-(6) for a match
//   whose tickets are all Matched, and undoes (1)-(2) for one whose are not;
//   workers ignore a repeated MatchCreated / MatchFound. So no ticket is lost
//   and none is matched twice.
// - Ticket states: a worker creates Waiting tickets and marks them Cancelled
//   (QueueLeave, or the player's grace expired); only the coordinator
//   releases ticket rows. A ticket whose player is not connected waits: it
//   is not matched until the player resumes.
// - The owner of a new match is the live worker with the fewest matches to
//   tick, then the fewest connections, then the lowest index.
// - During a drain no match is formed; the coordinator outlives the
//   workers so a match whose owner dies is still adopted (by a Draining
//   worker when none is Up).
#pragma once

#include <cstdint>
#include <vector>

#include "config/config.h"
#include "coordinator/recorder.h"
#include "match/worker_set.h"
#include "matchmaking/matchmaker.h"
#include "shm/segment.h"

namespace skirmish::coordinator {

// What the coordinator counts: its entries of the table in shm/counters.h,
// copied into its process row by publish_stats.
using Stats = shm::Counters;

class Coordinator {
 public:
  Coordinator(const config::Config& cfg, shm::Segment* seg, std::uint32_t index, const module::Game* game);

  void apply_config(const config::Config& cfg) { cfg_ = cfg; }

  // At start: finish or undo what a dead predecessor left half done.
  void recover();
  // One matchmaking round: forms every match the tickets allow now.
  // Returns the number of matches formed.
  std::size_t round(std::int64_t now_ms);
  // Hands every Running match whose owner is down to a live worker
  // (MatchAdopted). Returns how many.
  std::size_t adopt_orphaned_matches();
  // After worker `dead` died: MatchEnded again, to the workers of their
  // players still seated, for the Ended matches it owned. Returns how many.
  std::size_t announce_ended(std::uint32_t dead);
  // Releases cancelled tickets, seats past the resume grace (and their
  // tickets), and ended matches past their linger.
  void sweep(std::int64_t now_ms);

  // Drains the match records into game.record_dir (recorder.h): on the
  // timer, and once more before exiting.
  void record(std::int64_t now_ms) { recorder_.pass(now_ms); }

  const Stats& stats() const { return stats_; }
  // Copies the counters into the coordinator's row (on its heartbeat).
  void publish_stats(shm::ProcessRow& row) const { shm::publish_counters(row.counters, stats_, shm::Keeper::Coordinator); }

  // The server drains (SIGTERM): no more rounds (each worker cancels its
  // sessions' Waiting tickets and tells them Error(ShuttingDown)); sweeps
  // and adoption go on, so a worker that dies during the drain leaves its
  // matches to a surviving (Draining) worker.
  void begin_drain() { draining_ = true; }
  bool draining() const { return draining_; }

  // An ended match's row is kept this long for late readers (the MatchEnd of
  // a worker that was slow to drain its mailbox), then released.
  static constexpr std::int64_t kEndedLingerMs = 10000;

 private:
  struct Candidate {
    shm::Handle ticket;
    std::uint32_t player_wire;
  };

  // Matches each worker ticks now (owned_), then the pick.
  void count_owned();
  int pick_owner() const;
  bool form(const matchmaking::Match& m, const std::vector<matchmaking::Ticket>& tickets,
            const std::vector<Candidate>& cands, std::int64_t now_ms);
  // Steps (3)-(6) for a match whose tickets are Matched.
  void complete(shm::Handle match, const shm::Handle* tickets, std::uint32_t n_tickets);
  void post(std::uint32_t index, const shm::Event& e);

  config::Config cfg_;
  shm::Segment* seg_;
  const module::Game* game_;  // the hosted game: init() of every new match
  std::uint32_t index_;
  std::uint32_t seed_ = 0x9E3779B9u;
  bool draining_ = false;
  Stats stats_{};  // value-initialised: every count 0
  Recorder recorder_;
  // Reused per round.
  std::vector<matchmaking::Ticket> tickets_;
  std::vector<Candidate> cands_;
  std::vector<std::uint32_t> invalid_;
  std::vector<std::uint32_t> owned_;  // by worker index
  std::vector<shm::Handle> orphans_;  // Waiting tickets whose player row is gone
  match::WorkerSet fanout_;  // workers told of a new match (MatchFound); every slot of both banks
};

}  // namespace skirmish::coordinator
