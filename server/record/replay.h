// skirmish::record::replay: re-simulating a recorded match with its game
// module (skirmish-replay, replay_main.cpp). Pure: the caller reads the
// file and loads the module.
//
// Contract
// - replay() runs init() with the record's params, players and seed, then
//   step() for every recorded tick with exactly the inputs and connected
//   mask the server handed it, checking each recorded state hash (HASH(0)
//   is init's) and, at the end, the recorded MatchEnd (places and scores;
//   for the game's own ends, that the game ended there too).
// - Verdict: Ok; Diverged (the first tick whose state, or the end, differs
//   from the record: `tick` names it); Incomplete (the record stops early:
//   the ring filled, the file cap, a cut file, or a match still running or
//   whose server died; every tick there was verified up to `tick`).
// - A quarantined match (END reason GameError) has the tick the module
//   crashed in recorded after its final tick: replay() says so in `note`
//   (through the callback, before it steps) and steps it, so the crash
//   happens in this process, under a debugger if wanted. A crash that does
//   not happen again is Diverged.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "record/record.h"

namespace skirmish::record {

enum class Verdict { Ok = 0, Diverged = 1, Incomplete = 3 };

struct ReplayResult {
  Verdict verdict = Verdict::Ok;
  std::uint32_t tick = 0;     // Diverged: the tick; else the last tick stepped
  std::uint32_t hashes = 0;   // state hashes checked (HASH(0) included)
  std::string message;        // one line
};

// `note` gets a line to show before a step that is expected to crash.
ReplayResult replay(const Parsed& rec, const skirmish_game_v1_t* game,
                    const std::function<void(const std::string&)>& note);

// "ScoreLimit", ... for the row's end_reason (the wire EndReason + 1).
const char* end_reason_name(std::uint32_t end_reason);

}  // namespace skirmish::record
