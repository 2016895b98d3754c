// What skirmish-client shows: the view model shared by the App (which fills
// it from the client library's callbacks and the keyboard) and the Screen
// (which draws it with ncurses). No I/O, no libuv, no ncurses here.
//
// Everything in it came from the server through the verified codec, but is
// still untrusted: names may hold any bytes (sanitize_name keeps printable
// ASCII), slots and coordinates may be out of range (the Screen clamps),
// lists may be long (the Screen draws what fits).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/lib/snapshot_history.h"

namespace skirmish::terminal {

inline constexpr size_t kMaxSeats = 16;          // game::kMaxPlayers
inline constexpr size_t kMaxNameColumns = 16;    // names are cut to this on screen

enum class Phase : uint8_t {
  Connecting,    // connect() called, no Welcome yet
  Queued,        // QueueJoin sent, waiting for MatchFound
  InMatch,       // MatchFound received; snapshots drawn, inputs sent
  MatchOver,     // MatchEnd received; results shown, `n` queues again
  Disconnected,  // the connection is over (and automatic resume gave up)
};
const char* to_string(Phase p);

struct Seat {
  bool present = false;
  uint32_t player_id = 0;
  float rating = 0;
  std::string name;  // sanitized
};

struct ResultRow {
  uint8_t slot = 0;
  uint8_t place = 0;
  int32_t score = 0;
  float rating_before = 0;
  float rating_after = 0;
  std::string name;  // from MatchFound, sanitized; "?" when the slot is unknown
};

struct Model {
  // Fixed for the run.
  std::string name;    // our Hello name
  std::string target;  // host:port as given

  Phase phase = Phase::Connecting;
  uint32_t reconnect_attempt = 0;  // > 0 while automatic resume is retrying
  uint16_t worker_index = 0;
  bool have_welcome = false;
  float rating = 0;                // from the last Welcome
  uint64_t queued_at_ms = 0;       // uv_now when QueueJoin was sent
  uint32_t queued_players = 0;     // from the last QueueStatus
  uint32_t matches_played = 0;

  // The current (or last) match, from MatchFound.
  uint32_t match_id = 0;
  uint8_t your_slot = 0;
  int32_t arena_width = 100000;    // always >= 1
  int32_t arena_height = 100000;   // always >= 1
  uint32_t score_limit = 0;
  uint32_t time_limit_ms = 0;
  std::array<Seat, kMaxSeats> seats{};
  // The newest world of that match, or nullptr. Owned by the client library:
  // valid only while drawing (set by the App right before each draw).
  const client::World* world = nullptr;

  // Our controls.
  int8_t move_x = 0;
  int8_t move_y = 0;
  bool tag_pending = false;        // space pressed; goes out with the next Input

  // Round trip of the last Pong, microseconds; -1 before the first one.
  int64_t ping_us = -1;

  // The last MatchEnd (MatchOver), ordered by place then slot.
  std::string end_reason;  // "score limit", "time limit", "abandoned", ...
  std::vector<ResultRow> results;

  std::string last_error;  // the last Error or close reason, sanitized
  std::string notice;      // one line of news ("server shutting down", ...)

  uint64_t now_ms = 0;     // uv_now at the draw
};

// Printable ASCII of `s` (a run of other bytes becomes one '?'), at most
// max_len characters; "?" when nothing is left.
std::string sanitize_name(std::string_view s, size_t max_len = kMaxNameColumns);

// "1:05" from milliseconds.
std::string format_mm_ss(uint32_t ms);

}  // namespace skirmish::terminal
