// The rows of the shared segment: processes, players, tickets, matches.
//
// Contract
// - Plain structs of fixed-width integers, static_asserted trivially
//   copyable, standard layout and of a size that is a multiple of a cache
//   line; no pointers: other rows are named by u32 wire ids (handle.h,
//   0 = none) or process indices.
// - Who writes what:
//   * ProcessRow: the master writes role/index/pid/state/event_fd/respawns;
//     the process itself writes heartbeat_ms and its counters (the table in
//     counters.h). Everything is read by others through shared_load
//     (atomic_field.h); Live counters are bumped with shared_add/shared_sub
//     (relaxed).
//   * PlayerRow / TicketRow: written by the owning worker (and the
//     coordinator for ticket state); fields others poll (state, match,
//     ticket, worker) go through shared_load/shared_store.
//   * MatchRow: the table lock covers only alloc/release. Everything else
//     (state, tick, players, state_bytes, published) is read and written
//     under the match's own lock (lock_match). After taking it, re-check your
//     handle with matches().get(h) == &row: the match may have ended and the
//     slot been reused while you waited.
// - Process indices: worker slots are 0..2*max_workers-1 (two banks, see
//   layout.h), then the coordinator (coordinator_index), then the master
//   (master_index); mailboxes use the same indices.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shm/counters.h"
#include "shm/layout.h"
#include "shm/robust_mutex.h"

namespace skirmish::shm {

inline constexpr std::uint32_t kNoWorker = 0xFFFFFFFFu;
inline constexpr std::uint32_t kMaxMatchPlayers = 16;
inline constexpr std::uint32_t kPlayerNameBytes = 32;
inline constexpr std::uint32_t kAccountBytes = 64;  // == auth::kMaxAccountBytes

enum class ProcessRole : std::uint32_t { Worker = 0, Coordinator = 1, Master = 2 };
enum class ProcessState : std::uint32_t { Down = 0, Starting = 1, Up = 2, Draining = 3 };

inline constexpr Keeper keeper_of(ProcessRole r) {
  return r == ProcessRole::Worker ? Keeper::Worker : r == ProcessRole::Coordinator ? Keeper::Coordinator : Keeper::Master;
}

inline constexpr std::size_t kProcessRowBytes = 1280;

struct ProcessRow {
  ProcessRole role;
  std::uint32_t index;
  std::int32_t pid;             // 0 when down
  ProcessState state;
  std::int64_t heartbeat_ms;    // CLOCK_MONOTONIC ms, written by the process
  std::int64_t started_at_ms;   // CLOCK_MONOTONIC ms, written by the master
  std::int32_t event_fd;        // same number in every process; -1 none
  std::uint32_t respawns;
  std::int32_t last_exit_status;  // raw waitpid status of the last death
  std::uint32_t reserved0;
  // Counters, gauges and histograms from the table in shm/counters.h:
  // Live ones bumped here where they happen, Copied ones stored by the
  // process itself a few times a second (publish_counters, never per
  // frame); read by the master for /metrics and the hand-off.
  Counters counters;
  // Worker: client connections its descriptor limit allows (RLIMIT_NOFILE
  // minus what it holds at start minus limits.reserved_fds); the master
  // hands it no more. UINT64_MAX until the worker has written it.
  std::uint64_t fd_capacity;
  // Worker: sockets taken from its IPC pipe since it started (the master's
  // hand-off n is taken once this passes n). The master keeps its copy of
  // a handed socket until then, so a worker that dies with sockets still in
  // its pipe loses none: they go to another worker (master/acceptor.h).
  std::uint64_t handoffs_taken;
  // Room to grow; a counter added to the table takes from it.
  std::uint64_t reserved1[(kProcessRowBytes - 64 - sizeof(Counters)) / 8];
};
static_assert(std::is_trivially_copyable_v<ProcessRow>);
static_assert(std::is_standard_layout_v<ProcessRow>);
static_assert(sizeof(ProcessRow) == kProcessRowBytes);
// The counter table is part of the segment's layout: a binary upgrade
// attaches the old generation's segment, so a different table must not
// share a layout version. Adding a counter: bump kLayoutVersion (layout.h)
// and these two numbers together.
static_assert(kCounterCount == 66 && kHistogramCount == 3 && kLayoutVersion == 10,
              "the counter table changed: bump kLayoutVersion and the counts here");

enum class PlayerState : std::uint32_t {
  Free = 0,
  Connected = 1,     // a session on `worker` holds it
  Disconnected = 2,  // in the resume grace since disconnected_at_ms
};

struct PlayerRow {
  std::uint32_t gen;   // slot table
  std::uint32_t used;  // slot table
  PlayerState state;
  std::uint32_t player_id;        // from Header::next_player_id, never 0
  std::uint32_t token[4];         // 128-bit session token
  std::uint64_t connection_gen;   // bumped on every (re)attach of a session
  std::int64_t disconnected_at_ms;  // CLOCK_MONOTONIC ms; 0 while connected
  float rating;
  float rd;
  float volatility;
  std::uint32_t worker;  // worker index holding the session, or kNoWorker
  std::uint32_t match;   // match wire id, 0 none
  std::uint32_t ticket;  // ticket wire id, 0 none
  std::uint8_t seat;     // seat in `match`
  std::uint8_t reserved0[3];
  char name[kPlayerNameBytes];  // NUL padded, not necessarily NUL terminated
  // Kept ([store]) for players with an account: matches played, and the
  // account itself (the verified JWT `sub`), NUL padded; empty = none.
  std::uint32_t matches_played;
  char account[kAccountBytes];
  std::uint8_t reserved1[16];

  void reset_payload();
};
static_assert(std::is_trivially_copyable_v<PlayerRow>);
static_assert(std::is_standard_layout_v<PlayerRow>);
static_assert(sizeof(PlayerRow) == 192);

enum class TicketState : std::uint32_t {
  Free = 0,
  Waiting = 1,    // in the queue
  Matched = 2,    // the coordinator put it in `match`
  Cancelled = 3,  // QueueLeave or disconnect; the coordinator drops it
};

struct TicketRow {
  std::uint32_t gen;   // slot table
  std::uint32_t used;  // slot table
  TicketState state;
  std::uint32_t player;  // player wire id
  float rating;
  std::uint32_t mode;
  std::uint32_t party_size;
  std::uint32_t worker;  // worker that queued it
  std::uint64_t party_key;  // 0 solo; tickets with one key match together
  std::int64_t joined_at_ms;  // CLOCK_MONOTONIC ms
  std::uint32_t match;        // match wire id once Matched
  std::uint32_t reserved0[3];

  void reset_payload();
};
static_assert(std::is_trivially_copyable_v<TicketRow>);
static_assert(std::is_standard_layout_v<TicketRow>);
static_assert(sizeof(TicketRow) == 64);

enum class MatchState : std::uint32_t { Forming = 0, Running = 1, Ended = 2 };

// Inputs queued per seat ahead of the tick (max_inputs_queued is capped here).
inline constexpr std::uint32_t kMaxQueuedInputs = 8;

// One client input as the owner's tick consumes it: the game's own bytes
// (Input.data, checked by the module's check_input before it is queued).
inline constexpr std::uint32_t kMaxInputBytes = 56;  // == SKIRMISH_MAX_INPUT_BYTES
struct InputSlot {
  std::uint32_t seq;
  std::uint8_t len;  // 1..kMaxInputBytes
  std::uint8_t pad[3];
  std::uint8_t bytes[kMaxInputBytes];
};
static_assert(sizeof(InputSlot) == 64);

// A seat's input queue: written by the worker holding the player's session,
// read by the owner at each tick, both under the match lock.
struct SeatInputs {
  std::uint32_t head;      // index of the oldest queued input
  std::uint32_t count;     // queued inputs
  std::uint32_t last_seq;  // newest seq queued (later ones must be greater)
  std::uint32_t dropped;   // inputs refused: queue full or stale
  InputSlot q[kMaxQueuedInputs];
};
static_assert(sizeof(SeatInputs) == 16 + 64 * kMaxQueuedInputs);

// A seat's result once the match ended, for MatchEnd.
struct SeatResult {
  std::uint8_t place;  // 1 = best
  std::uint8_t pad[3];
  std::int32_t score;
  float rating_before;
  float rating_after;
};
static_assert(sizeof(SeatResult) == 16);

struct MatchRow {
  std::uint32_t gen;   // slot table
  std::uint32_t used;  // slot table
  MatchState state;
  std::uint32_t owner_worker;  // worker that ticks it, or kNoWorker
  std::uint32_t seat_count;    // seats in use in `players`
  std::uint32_t mode;
  std::uint64_t tick;           // tick of the published state
  std::int64_t created_at_ms;   // CLOCK_MONOTONIC ms
  std::int64_t last_tick_ms;    // CLOCK_MONOTONIC ms of the last publish
  std::uint32_t published;      // ring index of the state at `tick`
  std::uint32_t state_len[kStateRing];  // bytes used in each buffer
  std::uint32_t recoveries;     // EOWNERDEAD repairs of this match's lock
  std::uint32_t seed;           // rules RNG seed
  std::uint32_t end_reason;     // once Ended: proto::EndReason + 1 (0 = not ended)
  std::uint32_t end_detail;     // once Ended: the game's own code (MatchEnd.detail)
  std::int64_t ended_at_ms;     // CLOCK_MONOTONIC ms, 0 while running
  std::uint32_t ticks_late;     // ticks run late (caught up) by owners
  std::uint32_t adoptions;      // times another worker took over ticking
  // Containment of a module that crashes (game.h; worker/play.cpp): the
  // owner sets stepping = 1 around the module's step(); a row found with
  // it still set after its owner died counts a crash. A match that crashed
  // twice is quarantined: ended with GameError instead of adopted again.
  std::uint32_t stepping;
  std::uint32_t step_crashes;
  std::uint32_t players[kMaxMatchPlayers];  // player wire ids by seat, 0 empty
  std::uint32_t player_ids[kMaxMatchPlayers];  // public player ids by seat (Welcome.player_id)
  SeatResult results[kMaxMatchPlayers];
  SeatInputs inputs[kMaxMatchPlayers];
  std::uint32_t applied_seq[kMaxMatchPlayers];  // newest Input.seq per seat handed to step() (Snapshot.last_input_seq)
  // (`lock` starts a cache line here: the static_assert below keeps it so.)
  RobustMutex lock;  // initialised once at format time, never by alloc
  std::uint8_t reserved0[64 - sizeof(RobustMutex) % 64];
  // The state ring lives outside the row, in the segment's match_states
  // region (its stride is the module's state_bytes): Segment::match_ring.
  // The owner writes buffer (published + 1) % kStateRing and publishes it
  // with one store of `published` (and `tick`) under the lock; a reader
  // copies what `published` names. The state at tick t sits at index
  // t % kStateRing while it is among the last kStateRing.

  // Clears everything but gen/used (the table's), the lock and the buffers.
  void reset_payload();
};
static_assert(std::is_trivially_copyable_v<MatchRow>);
static_assert(std::is_standard_layout_v<MatchRow>);
static_assert(offsetof(MatchRow, lock) % 64 == 0);
static_assert(sizeof(MatchRow) % 64 == 0);

// The header of a match's record ring (match/record.h): the region
// match_records holds one per match slot, followed by Sizes::record_bytes
// of ring. The ring is a byte stream of records; positions only grow
// (offset in the ring = pos % capacity).
// - start (coordinator, under the match lock): everything reset, state
//   Recording.
// - append (the owner, under the match lock): record bytes are written
//   first, then write_pos (release), so a death mid-append leaves none of
//   it; no room (write_pos + len - read_pos > capacity): state Lost and
//   lost_tick, nothing more is recorded for the match.
// - drain (the coordinator only; match/record.h, coordinator/recorder.h):
//   copies [read_pos, write_pos) under the lock, writes it to the file
//   outside it, then stores file_bytes and read_pos (release).
enum class RecordState : std::uint32_t { Off = 0, Recording = 1, Lost = 2 };
enum class RecordFile : std::uint32_t { None = 0, Writing = 1, Capped = 2, Done = 3, Failed = 4 };
struct alignas(64) RecordRing {
  RecordState state;          // owner (Lost) and coordinator (start)
  std::uint32_t hash_every;   // a HASH record every this many ticks
  std::uint64_t write_pos;    // owner: bytes appended since start
  std::uint64_t read_pos;     // coordinator: bytes drained to the file
  std::uint64_t file_bytes;   // coordinator: bytes of the file so far
  std::uint32_t lost_tick;    // the first tick not recorded (state Lost)
  RecordFile file;            // coordinator
  std::int64_t created_unix_ms;  // the match's start, names its file
  std::int64_t drained_at_ms;    // coordinator: CLOCK_MONOTONIC of the last drain
  std::int32_t writer_pid;       // coordinator that last wrote the file
  std::uint32_t last_tick;       // coordinator: newest TICK drained
};
static_assert(std::is_trivially_copyable_v<RecordRing>);
static_assert(sizeof(RecordRing) == 64);

// Repair step of a match lock: the published buffer was complete before the
// flip, so only `published`/`state_len` are clamped to sane values and the
// row's recovery counter is bumped. `ctx` is the MatchRow*.
void repair_match(void* ctx);

// Takes the match's lock with its repair step (copy elision returns the
// guard). Check ok(); on failure call mark_corrupt_and_report.
inline Guard lock_match(MatchRow& row) {
  return Guard(row.lock, &repair_match, &row);
}
inline Guard lock_match(MatchRow& row, std::chrono::milliseconds timeout) {
  return Guard(row.lock, timeout, &repair_match, &row);
}

}  // namespace skirmish::shm
