#include "shm/layout.h"

#include "shm/handle.h"
#include "shm/mailbox.h"
#include "shm/slot_table.h"
#include "shm/tables.h"

namespace skirmish::shm {
namespace {

constexpr std::uint64_t align_up(std::uint64_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

std::string check_range(const char* name, std::uint32_t value,
                        std::uint32_t lo, std::uint32_t hi) {
  if (value >= lo && value <= hi) return {};
  return std::string(name) + " must be in [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "] (got " + std::to_string(value) + ")";
}

// Hands out consecutive 64-byte aligned regions.
struct Cursor {
  std::uint64_t offset = 0;

  Region take(std::uint64_t bytes) {
    Region r{offset, bytes};
    offset = align_up(offset + bytes);
    return r;
  }

  template <class Row>
  TableLayout table(std::uint32_t capacity) {
    TableLayout t{};
    t.control = take(sizeof(SlotTableControl));
    t.free_ring = take(std::uint64_t{capacity} * sizeof(std::uint32_t));
    t.rows = take(std::uint64_t{capacity} * sizeof(Row));
    return t;
  }
};

}  // namespace

std::string validate_sizes(const Sizes& s) {
  // Event::from is a u16 process index; handles carry kSlotBits of slot.
  for (std::string e : {
           check_range("max_workers", s.max_workers, 1, kMaxWorkers),
           check_range("max_players", s.max_players, 1, kMaxSlots),
           check_range("max_tickets", s.max_tickets, 1, kMaxSlots),
           check_range("max_matches", s.max_matches, 1, kMaxSlots),
           check_range("mailbox_depth", s.mailbox_depth, 1, kMaxMailboxDepth),
           check_range("state_bytes", s.state_bytes, 1, kMaxStateBytes),
       }) {
    if (!e.empty()) return e;
  }
  if (s.record_bytes != 0) {
    if (std::string e = check_range("record_bytes", s.record_bytes, kMinRecordBytes, kMaxRecordBytes); !e.empty())
      return e;
  }
  return {};
}

Layout compute_layout(const Sizes& s) {
  Layout l{};
  Cursor c;
  const std::uint64_t procs = process_count(s);
  l.header = c.take(sizeof(Header));
  l.processes = c.take(procs * sizeof(ProcessRow));
  l.mailbox_controls = c.take(procs * sizeof(MailboxControl));
  l.mailbox_ring_stride = align_up(std::uint64_t{s.mailbox_depth} * sizeof(Event));
  l.mailbox_rings = c.take(procs * l.mailbox_ring_stride);
  l.players = c.table<PlayerRow>(s.max_players);
  l.tickets = c.table<TicketRow>(s.max_tickets);
  l.matches = c.table<MatchRow>(s.max_matches);
  l.match_states = c.take(std::uint64_t{s.max_matches} * kStateRing * state_stride(s));
  l.match_records = c.take(std::uint64_t{s.max_matches} * record_stride(s));
  l.total_bytes = c.offset;
  return l;
}

}  // namespace skirmish::shm
