// Where everything lives in the segment: sizes, layout, header.
//
// Contract
// - Sizes come from config and are checked by validate_sizes before use.
//   compute_layout is a pure function of them: the same Sizes give the same
//   offsets in every process and every build of the same layout_version.
// - Segment order: Header | ProcessRow[process_count] |
//   MailboxControl[process_count] | rings (one per process, each
//   mailbox_ring_stride bytes) | players, tickets, matches (each a
//   SlotTableControl, a u32 free ring, rows) | match states (max_matches
//   rings of kStateRing buffers, each state_stride bytes: the game module's
//   state_bytes rounded up to 64) | match records (max_matches of a
//   RecordRing header and record_bytes of ring, only when record_bytes > 0:
//   [game] record_dir is set). Every region starts on a
//   64-byte boundary and none overlap; total_bytes is a multiple of 64.
// - The Header's first 32 bytes (magic, layout_version, header_bytes,
//   master_pid, state, master_start_ticks) keep their place across layout
//   versions, so a starting master can tell whether an old or newer segment
//   of the same name is still in use before it replaces it.
// - Bump kLayoutVersion on any change to a struct that lives in the segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace skirmish::shm {

inline constexpr std::uint64_t kMagic = 0x314D48534D524B53ull;  // "SKRMSHM1"
inline constexpr std::uint32_t kLayoutVersion = 10;
inline constexpr std::uint64_t kAlign = 64;
inline constexpr std::uint32_t kMaxWorkers = 1024;
inline constexpr std::uint32_t kMaxMailboxDepth = 1u << 20;

struct Sizes {
  std::uint32_t max_workers;    // worker processes
  std::uint32_t max_players;    // player rows (sessions + resume grace)
  std::uint32_t max_tickets;    // matchmaking tickets
  std::uint32_t max_matches;    // concurrent matches
  std::uint32_t mailbox_depth;  // events per process mailbox
  // The game module's: bytes of one match state, and a hash of its name and
  // version, so a binary upgrade to another game (or another build of its
  // state) is refused instead of stepping states it cannot read.
  std::uint32_t state_bytes = 1024;
  std::uint32_t game_id = 0;
  // Bytes of each match's record ring (match/record.h); 0: no recording.
  std::uint32_t record_bytes = 0;

  friend bool operator==(const Sizes&, const Sizes&) = default;
};
static_assert(std::is_trivially_copyable_v<Sizes>);
static_assert(std::is_standard_layout_v<Sizes>);
static_assert(sizeof(Sizes) == 32);

// Largest state a module may declare ([game] max_state_bytes is capped here).
inline constexpr std::uint32_t kMaxStateBytes = 1u << 20;
// Past states kept per match: the newest is published, the others are the
// bases that delta snapshots are computed against (a client's ack lags the
// tick by its round trip; 8 ticks cover ~260 ms at 30 Hz).
inline constexpr std::uint32_t kStateRing = 8;
constexpr std::uint64_t state_stride(const Sizes& s) { return (std::uint64_t{s.state_bytes} + 63) / 64 * 64; }
// A match's record ring: bounds of [game] record_ring_bytes. The largest
// record (16 seats x 8 inputs of 56 bytes) is ~8 KiB, so the smallest ring
// holds two.
inline constexpr std::uint32_t kMinRecordBytes = 16384;
inline constexpr std::uint32_t kMaxRecordBytes = 16u << 20;
// The RecordRing header (tables.h) and then the ring, per match.
constexpr std::uint64_t record_stride(const Sizes& s) {
  return s.record_bytes == 0 ? 0 : 64 + (std::uint64_t{s.record_bytes} + 63) / 64 * 64;
}

// Empty when valid, else one line naming the offending field and its range.
std::string validate_sizes(const Sizes& sizes);

// Process rows: two banks of max_workers worker slots, then the
// coordinator, then the master. One bank serves; the other is empty except
// during a binary upgrade (USR2), when the new master's workers start there
// while the old master's workers finish their matches in theirs. So rows,
// mailboxes and eventfds of both generations coexist and every process can
// reach every other by index.
constexpr std::uint32_t worker_slots(const Sizes& s) { return 2 * s.max_workers; }
constexpr std::uint32_t process_count(const Sizes& s) { return 2 * s.max_workers + 2; }
constexpr std::uint32_t coordinator_index(const Sizes& s) { return 2 * s.max_workers; }
constexpr std::uint32_t master_index(const Sizes& s) { return 2 * s.max_workers + 1; }
// First slot of worker bank 0 or 1.
constexpr std::uint32_t bank_base(const Sizes& s, std::uint32_t bank) { return bank * s.max_workers; }

struct Region {
  std::uint64_t offset;  // from the start of the segment, 64-byte aligned
  std::uint64_t bytes;   // exact size of what lives there

  friend bool operator==(const Region&, const Region&) = default;
};

struct TableLayout {
  Region control;    // SlotTableControl
  Region free_ring;  // u32[capacity]
  Region rows;       // Row[capacity]

  friend bool operator==(const TableLayout&, const TableLayout&) = default;
};

struct Layout {
  Region header;
  Region processes;          // ProcessRow[process_count]
  Region mailbox_controls;   // MailboxControl[process_count]
  Region mailbox_rings;      // process_count rings of mailbox_ring_stride
  std::uint64_t mailbox_ring_stride;  // bytes per ring, 64-byte multiple
  TableLayout players;
  TableLayout tickets;
  TableLayout matches;
  Region match_states;  // max_matches * kStateRing * state_stride
  Region match_records;  // max_matches * record_stride (0 bytes: recording off)
  std::uint64_t total_bytes;

  friend bool operator==(const Layout&, const Layout&) = default;
};
static_assert(std::is_trivially_copyable_v<Layout>);
static_assert(std::is_standard_layout_v<Layout>);

// Precondition: validate_sizes(sizes) is empty.
Layout compute_layout(const Sizes& sizes);

enum class SegmentState : std::uint32_t {
  Initializing = 0,
  Ready = 1,
  Draining = 2,
};

struct alignas(64) Header {
  // Stable prefix (see above).
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t header_bytes;  // sizeof(Header)
  std::int32_t master_pid;
  SegmentState state;                // shared_load/shared_store
  std::uint64_t master_start_ticks;  // /proc/<pid>/stat starttime; 0 unknown
  // Version-specific part.
  std::uint64_t total_bytes;
  std::int64_t start_time_unix_ms;
  std::uint32_t next_player_id;  // Segment::next_player_id() hands them out
  std::uint32_t corrupt;  // 1 once a lock was found unrecoverable: restart all
  Sizes sizes;
  std::uint32_t worker_bank;  // 0 or 1: the serving master's worker bank
  Layout layout;
};
static_assert(std::is_trivially_copyable_v<Header>);
static_assert(std::is_standard_layout_v<Header>);
static_assert(offsetof(Header, master_pid) == 16);
static_assert(offsetof(Header, master_start_ticks) == 24);
static_assert(sizeof(Header) % 64 == 0);

}  // namespace skirmish::shm
