// skirmish-hostile's shared types (loadtest/README.md, "skirmish-hostile"):
// the attacks, the options, the per-attack counters and what the run
// leaves for the final table and the JSON report (hostile_report.cpp).
// The attacks themselves are in hostile.cpp (the run), hostile_attacks.cpp
// (what each sends) and hostile_io.cpp (reads, writes, verdicts).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/codec.h"

namespace skirmish::hostile {

enum class Attack : uint8_t {
  Garbage,       // random bytes
  Truncated,     // a header, then fewer body bytes than it announces
  Huge,          // a 4 GiB length header
  Unverifiable,  // "SKRM" and random tables
  WrongState,    // valid messages in the wrong state (kWrongStateNames)
  Flood,         // Pings past the rate limit
  Slowloris,     // a Hello, one byte a second
  ResetStorm,    // connect, then RST
  NoRead,        // plays but never reads
  BadInput,      // in a match, Input.data the game must refuse (kBadInputNames)
};
inline constexpr size_t kAttacks = 10;
inline constexpr const char* kAttackNames[kAttacks] = {"garbage",   "truncated", "huge",
                                                       "unverifiable", "wrongstate", "flood",
                                                       "slowloris", "resetstorm", "noread",
                                                       "badinput"};
// The three wrong-state sequences, taken in turn.
inline constexpr const char* kWrongStateNames[3] = {"input-before-hello", "double-queue-join", "double-hello"};
// The four bad inputs, taken in turn, each answered Error(BadInput) that
// leaves the session open (PROTOCOL.md, Playing): Input.data one byte past
// MatchFound.max_input_bytes; an empty vector; no data field; bytes the
// game's check_input refuses (the arena, games/arena/arena.h: a move of 101
// or an unknown button; another game: random bytes past its length cap).
inline constexpr const char* kBadInputNames[4] = {"oversize", "empty", "no-data", "bad-game-bytes"};
inline constexpr size_t kMaxVariants = 4;
inline constexpr size_t kErrorCodes = size_t(proto::ErrorCode::MAX) + 1;

struct Options {
  uint32_t target_ip = 0;  // host order, in 127.0.0.0/8
  uint16_t port = 0;
  std::string target = "127.0.0.1:7777";
  std::vector<uint32_t> sources;  // host order, in 127.0.0.0/8
  std::string sources_text = "127.0.0.2-127.0.0.11";
  bool enabled[kAttacks] = {};
  std::string attacks_text = "all";
  double duration_s = 20;
  uint32_t slowloris = 500;             // kept open
  double rate = 200;                    // new short-lived connections per second
  uint32_t flood = 4;                   // concurrent flood connections
  uint32_t noread = 20;                 // kept open
  uint32_t badinput = 4;                // kept open (queued or in a match): >= 2 match one another
  uint64_t match_wait_ms = 35000;       // badinput: MatchFound by then (the server's max_wait_ms + slack)
  uint64_t handshake_ms = 5000;         // the server's timeouts.handshake_timeout_ms
  uint64_t grace_ms = 2000;             // slack on every expected Error and close
  uint32_t handshake_frame_bytes = 256; // the server's limits.max_frame_bytes_handshake
  uint64_t per_address_cap = 64;        // the server's limits.max_connections_per_ip (leak check)
  uint64_t seed = 1;
  std::string report;                   // JSON path; empty = none
};

// Every connection ends in exactly one of expected, unexpected, capped,
// connect_failed, unfinished, still_open.
struct Counters {
  uint64_t opened = 0;
  uint64_t expected = 0;        // the server answered as PROTOCOL.md says
  uint64_t unexpected = 0;      // it did not (a reason goes to the samples)
  uint64_t capped = 0;          // Error(TooManyConnections) or Error(ServerFull) at accept
  uint64_t connect_failed = 0;  // refused, timed out, no socket
  uint64_t unfinished = 0;      // the run ended before a verdict
  uint64_t still_open = 0;      // noread: the server never closed it
  uint64_t server_closes = 0;   // closes by the server: EOF or reset read, or a failed write (noread)
  uint64_t close_ms_min = UINT64_MAX, close_ms_max = 0;  // connect start -> server close
  uint64_t variant_expected[kMaxVariants] = {};          // wrongstate, badinput: by variant
  std::array<uint64_t, kErrorCodes> errors{};            // Error frames received, by code
};

struct Sample {
  double t;  // seconds into the run
  Attack attack;
  std::string reason;
};

struct Results {
  std::array<Counters, kAttacks> by_attack{};
  std::vector<Sample> samples;  // the first unexpected outcomes
  std::string first_connect_error;
  uint64_t rate_skipped = 0;    // rate connections dropped because the loop fell behind
  double elapsed_s = 0;

  Counters total() const;
};

std::string ip_text(uint32_t ip_host_order);
// The final table and the lines under it, on stdout.
void print_table(const Options& o, const Results& r);
// The JSON summary at o.report; false (and `error`) when it cannot be written.
bool write_report(const Options& o, const Results& r, int exit_code, std::string& error);

// Runs every enabled attack for o.duration_s (hostile.cpp); the exit code.
int run(const Options& o);

}  // namespace skirmish::hostile
