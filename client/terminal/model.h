// What skirmish-client shows: the view model shared by the App (which fills
// it from the client library's callbacks and the keyboard) and the Screen
// (which draws it with ncurses) and the game's renderer (game_ui.h). No
// I/O, no libuv, no ncurses here, and nothing of any one game: the game is
// named by MatchFound.game, its rules are the params, its world is the
// seat's view bytes that only the game's renderer decodes.
//
// Everything in it came from the server through the verified codec, but is
// still untrusted: names and params may hold any bytes (sanitize_name keeps
// printable ASCII), slots may be out of range (kMaxSeats), lists may be
// long (the Screen draws what fits), param values may not parse
// (param_int falls back).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/lib/snapshot_history.h"

namespace skirmish::terminal {

inline constexpr size_t kMaxSeats = 16;          // seats shown; MatchFound slots >= this are ignored
inline constexpr size_t kMaxNameColumns = 16;    // names are cut to this on screen
inline constexpr size_t kMaxParams = 32;         // MatchFound.params kept
inline constexpr size_t kMaxParamChars = 48;     // a param's key or value is cut to this

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

// One of MatchFound.params, as text (sanitized).
struct Param {
  std::string key;
  std::string value;
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
  uint16_t tick_rate_hz = 0;       // 0 when the server did not say
  uint16_t max_input_bytes = 0;
  std::string game;                // MatchFound.game, sanitized ("?" when absent)
  std::string game_version;        // sanitized, may be empty
  std::vector<Param> params;       // at most kMaxParams
  // Empty when this client has a renderer for `game`; else why it cannot
  // play it (the match is shown as a message, no input is sent).
  std::string unsupported;
  std::array<Seat, kMaxSeats> seats{};
  // The newest world of that match, or nullptr. Owned by the client library:
  // valid only while drawing (set by the App right before each draw).
  const client::World* world = nullptr;

  // Round trip of the last Pong, microseconds; -1 before the first one.
  int64_t ping_us = -1;

  // The last MatchEnd (MatchOver), ordered by place then slot.
  std::string end_reason;  // "score limit reached", "time is up", "abandoned", ...
  std::string end_detail;  // the game's words for MatchEnd.detail, may be empty
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

// The param `key` of the match, or nullptr.
const Param* find_param(const Model& m, std::string_view key);
// The param `key` as a decimal integer in [lo, hi]; `fallback` when it is
// absent, not an integer, or out of range.
int64_t param_int(const Model& m, std::string_view key, int64_t fallback, int64_t lo, int64_t hi);

}  // namespace skirmish::terminal
