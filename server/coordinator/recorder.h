// The coordinator's recorder: drains every match's record ring
// (record/record.h, in shared memory) into one file per match in
// [game] record_dir, for skirmish-replay.
//
// Contract
// - Files: <record_dir>/<created unix ms>-<game>-m<match wire, hex>.skr.part
//   while the match runs, renamed to .skr once its MatchEnd is in it. The
//   name comes from the segment, so a coordinator started after a kill -9
//   goes on with the same file: it cuts it back to file_bytes (what the
//   dead one had finished writing) and writes the ring from read_pos again.
// - A ring is drained when it is half full, a second after its last drain,
//   and when its match has ended (then the file is finished). The bytes are
//   copied under the match lock; the file is written after it, with the
//   lock released; only then do file_bytes and read_pos move. So a death
//   at any point loses nothing the ring held.
// - Bounds: game.record_max_bytes per file (the record stops there with a
//   CAPPED record, and the match's MatchEnd still follows), counted in
//   records_capped; a write error marks the file failed (logged, counted;
//   the rest of that match is not recorded). Nothing here runs per frame:
//   the coordinator's timer, a few times a second.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "match/match_store.h"
#include "shm/segment.h"

namespace skirmish::coordinator {

class Recorder {
 public:
  Recorder(const config::Config& cfg, shm::Segment* seg, const module::Game* game, shm::Counters* stats);

  bool on() const { return seg_->record_bytes() != 0 && !cfg_.record_dir.empty(); }
  // A new match: its ring emptied, recording on, HASH(0) of its first
  // state. Under the match lock, after match::start_locked.
  void start_locked(shm::MatchRow& row);
  // One pass over the matches (the coordinator's timer).
  void pass(std::int64_t now_ms);
  // An ended match whose row is about to be released: its file finished.
  void finish(shm::MatchRow& row, std::uint32_t wire, std::int64_t now_ms);

 private:
  void drain(shm::MatchRow& row, std::uint32_t wire, std::int64_t now_ms);
  std::string path_of(const shm::RecordRing& h, std::uint32_t wire) const;
  void failed(const std::string& what, std::uint32_t wire);

  config::Config cfg_;
  shm::Segment* seg_;
  const module::Game* game_;
  shm::Counters* stats_;
  std::vector<std::uint8_t> buf_;  // reused per drain
  std::int64_t failed_logged_ms_ = 0;
};

}  // namespace skirmish::coordinator
