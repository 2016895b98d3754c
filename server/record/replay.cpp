#include "record/replay.h"

#include <cstdlib>
#include <memory>

namespace skirmish::record {

namespace {

// The row's end_reason: proto::EndReason + 1 (protocol/skirmish.fbs). The
// record knows no protocol; these are its numbers.
constexpr std::uint32_t kScoreLimit = 1, kTimeLimit = 2, kCompleted = 5, kGameError = 6;

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

struct Free {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

const char* end_reason_name(std::uint32_t r) {
  static const char* const kNames[] = {"none", "ScoreLimit", "TimeLimit", "Abandoned",
                                       "ShutdownDeadline", "Completed", "GameError"};
  return r < std::size(kNames) ? kNames[r] : "unknown";
}

ReplayResult replay(const Parsed& rec, const skirmish_game_v1_t* game,
                    const std::function<void(const std::string&)>& note) {
  ReplayResult res;
  const auto diverged = [&](std::uint32_t tick, std::string why) {
    res.verdict = Verdict::Diverged;
    res.tick = tick;
    res.message = "diverged at tick " + std::to_string(tick) + ": " + why;
    return res;
  };
  const FileHeader& h = rec.header;
  // 64-byte aligned, as in the segment (game.h promises 16).
  const std::size_t size = (std::size_t(h.state_bytes) + 63) / 64 * 64;
  std::unique_ptr<std::uint8_t, Free> buf(static_cast<std::uint8_t*>(std::aligned_alloc(64, size)));
  std::uint8_t* state = buf.get();
  module::GameParams params(h.params, h.tick_rate_hz);
  game->init(state, params.view(), h.players, h.seed);
  if (rec.has_hash0) {
    ++res.hashes;
    if (const std::uint64_t got = state_hash(state, h.state_bytes); got != rec.hash0)
      return diverged(0, "init() made state hash " + hex(got) + ", the record says " + hex(rec.hash0));
  }
  const bool quarantined = rec.has_end && rec.end.reason == kGameError;
  std::vector<skirmish_input> items;
  skirmish_outcome o{};
  for (const Tick& t : rec.ticks) {
    if (quarantined && t.tick > rec.end.final_tick)
      note("match quarantined (GameError): the module crashed in step() of tick " + std::to_string(t.tick) +
           "; stepping it now (under gdb: gdb --args skirmish-replay FILE)");
    items.clear();
    for (std::uint32_t k = 0; k < t.count; ++k) {
      const Input& in = rec.inputs[t.first + k];
      // What the server hands step() passed these checks (worker/play.cpp);
      // a record with anything else was not written by a server.
      const std::uint8_t* bytes = rec.bytes.data() + in.offset;
      if (in.seat >= h.players || in.len == 0 || in.len > game->max_input_bytes ||
          game->check_input(bytes, in.len) != SKIRMISH_INPUT_OK)
        return diverged(t.tick, "input " + std::to_string(k) + " (seat " + std::to_string(in.seat) + ", " +
                                    std::to_string(in.len) + " bytes) is one the server refuses");
      items.push_back(skirmish_input{in.seat, in.len, 0, in.seq, rec.bytes.data() + in.offset});
    }
    const skirmish_inputs inputs{items.data(), std::uint32_t(items.size()), t.connected};
    game->step(state, &inputs, t.tick);
    res.tick = t.tick;
    if (t.has_hash) {
      ++res.hashes;
      if (const std::uint64_t got = state_hash(state, h.state_bytes); got != t.hash)
        return diverged(t.tick, "state hash " + hex(got) + ", the record says " + hex(t.hash));
    }
    o = skirmish_outcome{};
    game->outcome(state, &o);
    if (o.end != SKIRMISH_RUNNING && &t != &rec.ticks.back())
      return diverged(t.tick, "the game ended here, but the record goes on to tick " +
                                  std::to_string(rec.ticks.back().tick));
  }
  if (quarantined) {
    if (!rec.ticks.empty() && rec.ticks.back().tick > rec.end.final_tick)
      return diverged(rec.ticks.back().tick, "the module did not crash again in this step (quarantined match)");
    res.message = "quarantined match; no crashing tick was recorded (replayed to tick " + std::to_string(res.tick) + ")";
    res.verdict = Verdict::Incomplete;
    return res;
  }
  if (!rec.has_end || rec.lost || rec.capped || rec.truncated) {
    res.verdict = Verdict::Incomplete;
    const char* why = rec.lost        ? "the record ring filled (raise game.record_ring_bytes)"
                      : rec.capped    ? "the file reached game.record_max_bytes"
                      : rec.truncated ? "the file ends inside a record"
                                      : "no MatchEnd: the match was still running, or its server died";
    res.message = std::string("incomplete record: ") + why + "; verified up to tick " + std::to_string(res.tick);
    return res;
  }
  const End& e = rec.end;
  if (e.final_tick != res.tick)
    return diverged(res.tick, "the record ends at tick " + std::to_string(e.final_tick) + " but has ticks to " +
                                  std::to_string(res.tick));
  const std::uint32_t n = h.players;
  for (std::uint32_t i = 0; i < n && i < e.seats.size(); ++i) {
    // The server clamps a place out of 1..n to n (worker/play.cpp).
    const std::uint32_t p = o.seats[i].place >= 1 && o.seats[i].place <= n ? o.seats[i].place : n;
    if (p != e.seats[i].place || o.seats[i].score != e.seats[i].score)
      return diverged(res.tick, "seat " + std::to_string(i) + " ends with place " + std::to_string(p) + ", score " +
                                    std::to_string(o.seats[i].score) + "; MatchEnd said place " +
                                    std::to_string(e.seats[i].place) + ", score " + std::to_string(e.seats[i].score));
  }
  const bool game_end = e.reason == kScoreLimit || e.reason == kTimeLimit || e.reason == kCompleted;
  if (game_end) {
    const std::uint32_t want = o.end == SKIRMISH_END_SCORE_LIMIT  ? kScoreLimit
                               : o.end == SKIRMISH_END_TIME_LIMIT ? kTimeLimit
                               : o.end != SKIRMISH_RUNNING        ? kCompleted
                                                                  : 0;
    if (want != e.reason || o.detail != e.detail)
      return diverged(res.tick, std::string("the game ends ") + end_reason_name(want) + " (detail " +
                                    std::to_string(o.detail) + "); MatchEnd said " + end_reason_name(e.reason) +
                                    " (detail " + std::to_string(e.detail) + ")");
  }
  res.message = "ok: " + h.game_name + " " + h.game_version + ", " + std::to_string(res.tick) + " ticks, " +
                std::to_string(res.hashes) + " state hashes verified, ended " + end_reason_name(e.reason) +
                " at tick " + std::to_string(e.final_tick);
  return res;
}

}  // namespace skirmish::record
