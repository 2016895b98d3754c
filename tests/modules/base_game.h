// base_game.h: a tiny valid game that the deliberately broken modules of
// tests/modules/ each break in one way (test_module_load.cpp, the
// containment tests). Not a game anyone plays: every seat adds its input
// byte (0..9) to its score; the match ends after `ticks` ticks (param,
// default 100). One translation unit per module includes it, changes what
// it breaks, and exports the table with BASE_EXPORT_TABLE.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "skirmish/game.h"

namespace base {

struct State {
  std::uint32_t tick;
  std::uint32_t limit;       // ticks until the end
  std::uint32_t players;
  std::uint32_t crash_after; // crash_step: the tick whose step crashes (0: never)
  std::uint64_t null_addr;   // always 0, read at run time so the crash is a real SIGSEGV
  std::uint64_t spin_us;     // slow_step: how long each step spins
  std::int32_t score[SKIRMISH_MAX_SEATS];
};

inline std::int64_t param(const skirmish_params* p, const char* key, std::int64_t def) {
  for (std::uint32_t i = 0; p != nullptr && i < p->count; ++i)
    if (p->items[i].key != nullptr && std::string_view(p->items[i].key) == key) return p->items[i].i;
  return def;
}

inline int check_params(const skirmish_params* p, std::uint32_t, char* err, std::uint32_t cap) {
  for (std::uint32_t i = 0; p != nullptr && i < p->count; ++i) {
    const std::string_view k = p->items[i].key != nullptr ? p->items[i].key : "";
    if (k != "ticks" && k != "crash_after" && k != "spin_us") {
      std::snprintf(err, cap, "unknown key %s (allowed: ticks, crash_after, spin_us)", p->items[i].key);
      return 1;
    }
  }
  return 0;
}

inline void init(void* state, const skirmish_params* p, std::uint32_t players, std::uint64_t) {
  State s{};
  s.limit = std::uint32_t(param(p, "ticks", 100));
  s.players = players;
  s.crash_after = std::uint32_t(param(p, "crash_after", 10));
  s.spin_us = std::uint64_t(param(p, "spin_us", 5000));
  std::memcpy(state, &s, sizeof s);
}

inline void step(void* state, const skirmish_inputs* in, std::uint32_t) {
  State s;
  std::memcpy(&s, state, sizeof s);
  ++s.tick;
  for (std::uint32_t i = 0; i < in->count; ++i)
    if (in->items[i].seat < s.players && in->items[i].len == 1) s.score[in->items[i].seat] += in->items[i].bytes[0];
  std::memcpy(state, &s, sizeof s);
}

inline std::uint32_t check_input(const std::uint8_t* b, std::uint32_t len) {
  if (len != 1) return SKIRMISH_INPUT_MALFORMED;
  return b[0] <= 9 ? SKIRMISH_INPUT_OK : SKIRMISH_INPUT_OUT_OF_RANGE;
}

inline std::uint32_t view(const void* state, std::uint32_t, std::uint8_t* out, std::uint32_t cap) {
  if (cap < sizeof(State)) return 0;
  std::memcpy(out, state, sizeof(State));
  return sizeof(State);
}

inline void outcome(const void* state, skirmish_outcome* out) {
  State s;
  std::memcpy(&s, state, sizeof s);
  *out = skirmish_outcome{};
  out->end = s.tick >= s.limit ? SKIRMISH_END_TIME_LIMIT : SKIRMISH_RUNNING;
  for (std::uint32_t i = 0; i < s.players && i < SKIRMISH_MAX_SEATS; ++i) {
    out->seats[i].score = s.score[i];
    out->seats[i].place = 1;
    for (std::uint32_t j = 0; j < s.players && j < SKIRMISH_MAX_SEATS; ++j)
      if (s.score[j] > s.score[i]) ++out->seats[i].place;
  }
}

// The valid table; a module copies it and breaks one field.
inline skirmish_game_v1_t table(const char* name) {
  skirmish_game_v1_t t{};
  t.abi_version = SKIRMISH_GAME_ABI_VERSION;
  t.table_bytes = sizeof(skirmish_game_v1_t);
  t.name = name;
  t.version = "0.0.1";
  t.state_bytes = sizeof(State);
  t.max_input_bytes = 1;
  t.max_view_bytes = sizeof(State);
  t.flags = SKIRMISH_GAME_SHARED_VIEW;
  t.min_players = 1;
  t.max_players = 4;
  t.min_tick_rate_hz = 1;
  t.max_tick_rate_hz = 240;
  t.check_params = check_params;
  t.init = init;
  t.step = step;
  t.check_input = check_input;
  t.view = view;
  t.outcome = outcome;
  return t;
}

}  // namespace base

// Exports `skirmish_game_v1` returning `expr` (a skirmish_game_v1_t), built once.
#define BASE_EXPORT_TABLE(expr)                                                 \
  extern "C" SKIRMISH_GAME_EXPORT const skirmish_game_v1_t* skirmish_game_v1(void) { \
    static const skirmish_game_v1_t t = (expr);                                 \
    return &t;                                                                  \
  }
