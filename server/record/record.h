// skirmish::record: a match's record, for replays ([game] record_dir). The
// format of a record file, the records the owner appends to the match's
// ring in shared memory (shm::RecordRing, tables.h) and the parser
// skirmish-replay reads them back with. Pure: no I/O, no clock, no logging.
//
// Contract
// - A record file is a header (FileHeader, encode_header) and then records,
//   the same bytes the ring held. Every record starts with
//   {u16 len (of the whole record), u8 type, u8 n}; integers are little
//   endian (record.cpp does not build for a big-endian host).
//     TICK   n inputs; u32 tick, u32 connected mask, then per input
//            {u8 seat, u8 len, u32 seq, len bytes}: exactly what step()
//            was handed for `tick`, appended before step() runs, so the
//            tick a module crashed in is recorded.
//     HASH   u32 tick, u64 state_hash() of the state published at `tick`
//            (tick 0 at start, then every hash_every ticks).
//     LOST   u32 tick: the ring filled; nothing from `tick` on is recorded.
//     CAPPED u32 tick: the file reached record_max_bytes after `tick`.
//     END    n seats; u32 final tick, u32 end_reason (the row's: the wire
//            EndReason + 1), u32 detail, then per seat {u8 place, 3 pad,
//            i32 score}: what MatchEnd said.
// - A worker can die after appending TICK(t) and before publishing t; its
//   adopter steps t again and appends TICK(t) again (maybe with more
//   inputs). So in a file the last TICK of a tick wins: it voids every
//   record after the previous TICK(t) (parse() applies this).
// - Sizes: the largest record is kMaxRecordBytes (16 seats x 8 inputs of
//   56 bytes), far below a ring's smallest size (shm::kMinRecordBytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "module/module.h"
#include "shm/tables.h"
#include "skirmish/game.h"

namespace skirmish::record {

enum class Type : std::uint8_t { Tick = 1, Hash = 2, Lost = 3, Capped = 4, End = 5 };

inline constexpr char kMagic[8] = {'S', 'K', 'R', 'R', 'E', 'C', '0', '1'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::uint32_t kRecordHead = 4;  // u16 len, u8 type, u8 n
inline constexpr std::uint32_t kTickHead = kRecordHead + 8;
inline constexpr std::uint32_t kInputHead = 6;
inline constexpr std::uint32_t kMaxRecordBytes =
    kTickHead + SKIRMISH_MAX_SEATS * SKIRMISH_MAX_QUEUED_INPUTS * (kInputHead + SKIRMISH_MAX_INPUT_BYTES);
static_assert(kMaxRecordBytes <= 0xFFFF && 2 * kMaxRecordBytes <= shm::kMinRecordBytes);

// FNV-1a, 64 bits, of a state's bytes.
std::uint64_t state_hash(const std::uint8_t* state, std::size_t len);

// The ring of one match in the segment (shm::Segment::match_record).
struct Ring {
  shm::RecordRing* head = nullptr;  // nullptr: recording is off
  std::uint8_t* bytes = nullptr;    // capacity bytes, right after head
  std::uint32_t capacity = 0;
  explicit operator bool() const { return head != nullptr; }
};

// --- the owner's side (under the match lock)

// A new match (the coordinator, in start_locked): the ring emptied and
// recording on, with HASH(0) of `state`.
void start_locked(const Ring& r, std::uint32_t hash_every, std::int64_t created_unix_ms, const std::uint8_t* state,
                  std::uint32_t state_bytes);
// Appends TICK(tick). False when the ring was full: the ring is Lost from
// here on (and false the first time only; nothing is appended after).
bool append_tick_locked(const Ring& r, std::uint32_t tick, std::uint32_t connected, const skirmish_input* items,
                        std::uint32_t n);
// HASH(tick) when tick % hash_every == 0; false only when this made it Lost.
bool append_hash_locked(const Ring& r, std::uint32_t tick, const std::uint8_t* state, std::uint32_t state_bytes);

// --- the drainer's side (the coordinator)

// Copies whole records of [read_pos, write_pos) into `out` (appended), at
// most `max_bytes` of them; returns the ring position after the last
// record copied (read_pos when none fit). Under the match lock.
std::uint64_t copy_locked(const Ring& r, std::uint64_t max_bytes, std::vector<std::uint8_t>& out);
// Records the drainer writes itself.
void put_lost(std::vector<std::uint8_t>& out, std::uint32_t tick);
void put_capped(std::vector<std::uint8_t>& out, std::uint32_t tick);
void put_end(std::vector<std::uint8_t>& out, std::uint32_t final_tick, std::uint32_t end_reason,
             std::uint32_t detail, const shm::SeatResult* seats, std::uint32_t n);
// The tick of the last TICK record in `recs` (whole records), or `prev`.
std::uint32_t last_tick(const std::uint8_t* recs, std::size_t len, std::uint32_t prev);

// --- the file

struct FileHeader {
  std::string game_name;
  std::string game_version;
  std::string module;  // the path the server loaded
  std::uint32_t state_bytes = 0;
  std::uint32_t players = 0;
  std::uint32_t seed = 0;
  std::uint32_t tick_rate_hz = 0;
  std::uint32_t hash_every = 0;
  std::uint32_t match = 0;  // the match's wire id
  std::int64_t created_unix_ms = 0;
  std::vector<module::GameParam> params;  // [game.params] as the match got them
};
std::vector<std::uint8_t> encode_header(const FileHeader& h);

struct Input {
  std::uint8_t seat;
  std::uint8_t len;
  std::uint32_t seq;
  std::uint32_t offset;  // of the bytes, in Parsed::bytes
};
struct Tick {
  std::uint32_t tick;
  std::uint32_t connected;
  std::uint32_t first;  // index into Parsed::inputs
  std::uint32_t count;
  bool has_hash;
  std::uint64_t hash;
};
struct End {
  std::uint32_t final_tick = 0;
  std::uint32_t reason = 0;  // the row's end_reason: wire EndReason + 1
  std::uint32_t detail = 0;
  std::vector<skirmish_seat_result> seats;
};
struct Parsed {
  FileHeader header;
  bool has_hash0 = false;
  std::uint64_t hash0 = 0;      // HASH(0): the state init() made
  std::vector<Tick> ticks;      // 1, 2, ... in order (the last TICK of each wins)
  std::vector<Input> inputs;
  std::vector<std::uint8_t> bytes;  // input bytes
  bool lost = false, capped = false, truncated = false;  // why the record stops early
  std::uint32_t lost_tick = 0;
  bool has_end = false;
  End end;
};
// False with one line in `error` for a file that is not a record or is
// damaged before its last whole record; a file cut in the middle of a
// record (the server died while writing it) parses with truncated = true.
bool parse(const std::uint8_t* data, std::size_t len, Parsed& out, std::string& error);

}  // namespace skirmish::record
