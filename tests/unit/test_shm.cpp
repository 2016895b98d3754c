// test_shm: unit tests of server/shm's layout, handles and slot tables.
//
// The other subjects of server/shm have their own executables:
// test_shm_mailbox (mailboxes), test_shm_segment (the segment's life cycle)
// and test_shm_robust (robust-lock recovery across real processes).
//
// Every test case runs under an alarm() watchdog and every child process
// under its own, so a lock bug fails the run instead of hanging it. Segment
// names include the pid; every segment is unlinked at the end. The shared
// helpers are in test_shm_support.h.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

#include "shm/segment.h"
#include "test_shm_support.h"

using namespace skirmish::shm;
using namespace shm_test;

// ----------------------------------------------------------------- layout

TEST_CASE("layout: regions are aligned, sized, disjoint and inside the total") {
  const Sizes cases[] = {
      {1, 1, 1, 1, 1},
      {2, 16, 16, 8, 8},
      {7, 1000, 333, 77, 100},
      {64, 100000, 100000, 25000, 4096},
      {kMaxWorkers, kMaxSlots, kMaxSlots, 1024, 4096},
  };
  for (const Sizes& s : cases) {
    REQUIRE(validate_sizes(s).empty());
    const Layout l = compute_layout(s);
    REQUIRE(l == compute_layout(s));  // pure
    auto regions = regions_of(l);
    for (const Region& r : regions) REQUIRE(r.offset % kAlign == 0);
    std::sort(regions.begin(), regions.end(),
              [](const Region& a, const Region& b) { return a.offset < b.offset; });
    for (std::size_t i = 1; i < regions.size(); ++i) {
      REQUIRE(regions[i - 1].offset + regions[i - 1].bytes <= regions[i].offset);
    }
    REQUIRE(regions.back().offset + regions.back().bytes <= l.total_bytes);
    REQUIRE(l.total_bytes % kAlign == 0);
    const std::uint64_t procs = process_count(s);
    REQUIRE(l.header.offset == 0);
    REQUIRE(l.header.bytes == sizeof(Header));
    REQUIRE(l.processes.bytes == procs * sizeof(ProcessRow));
    REQUIRE(l.mailbox_controls.bytes == procs * sizeof(MailboxControl));
    REQUIRE(l.mailbox_ring_stride >= s.mailbox_depth * sizeof(Event));
    REQUIRE(l.mailbox_ring_stride % kAlign == 0);
    REQUIRE(l.mailbox_rings.bytes == procs * l.mailbox_ring_stride);
    REQUIRE(l.players.rows.bytes == std::uint64_t{s.max_players} * sizeof(PlayerRow));
    REQUIRE(l.tickets.rows.bytes == std::uint64_t{s.max_tickets} * sizeof(TicketRow));
    REQUIRE(l.matches.rows.bytes == std::uint64_t{s.max_matches} * sizeof(MatchRow));
    REQUIRE(l.players.free_ring.bytes == std::uint64_t{s.max_players} * 4);
  }
  const Layout big = compute_layout({64, 100000, 100000, 25000, 4096});
  std::printf(
      "segment for 64 workers, 100k players, 100k tickets, 25k matches, "
      "mailbox depth 4096: %.1f MiB (players %.1f, tickets %.1f, matches "
      "%.1f, mailboxes %.1f)\n",
      big.total_bytes / 1048576.0, big.players.rows.bytes / 1048576.0,
      big.tickets.rows.bytes / 1048576.0, big.matches.rows.bytes / 1048576.0,
      big.mailbox_rings.bytes / 1048576.0);
  // Matches dominate: 8 past states (1 KiB each here: the module's
  // state_bytes) for delta snapshots, and 16 seats x 8 queued inputs of
  // 64 bytes (the game's input bytes).
  REQUIRE(big.total_bytes < 512ull * 1024 * 1024);
  const Layout lean = compute_layout({16, 100000, 50000, 10000, 1024});
  std::printf("segment for 16 workers, 100k players, 50k tickets, 10k matches, "
              "mailbox depth 1024: %.1f MiB\n",
              lean.total_bytes / 1048576.0);
  // ~17 KiB a match (a 1 KiB state ring and 16 seats of input queues):
  // 10k matches are most of it.
  REQUIRE(lean.total_bytes < 192ull * 1024 * 1024);
}

TEST_CASE("layout: validate_sizes names the bad field") {
  REQUIRE(validate_sizes({0, 1, 1, 1, 1}).find("max_workers") == 0);
  REQUIRE(validate_sizes({1, 0, 1, 1, 1}).find("max_players") == 0);
  REQUIRE(validate_sizes({1, kMaxSlots + 1, 1, 1, 1}).find("max_players") == 0);
  REQUIRE(validate_sizes({1, 1, 0, 1, 1}).find("max_tickets") == 0);
  REQUIRE(validate_sizes({1, 1, 1, 0, 1}).find("max_matches") == 0);
  REQUIRE(validate_sizes({1, 1, 1, 1, 0}).find("mailbox_depth") == 0);
  REQUIRE(validate_sizes({kMaxWorkers + 1, 1, 1, 1, 1}).find("max_workers") == 0);
}

// ---------------------------------------------------------------- handles

TEST_CASE("handle: wire id round trip, never 0, gen wraps and skips 0") {
  for (std::uint32_t slot : {0u, 1u, 12345u, kSlotMask}) {
    for (std::uint32_t gen : {1u, 2u, 777u, kGenMask}) {
      const Handle h{slot, gen};
      const std::uint32_t wire = to_wire(h);
      REQUIRE(wire != kNoWireId);
      auto back = from_wire(wire);
      REQUIRE(back.has_value());
      REQUIRE(*back == h);
    }
  }
  REQUIRE_FALSE(from_wire(kNoWireId).has_value());
  REQUIRE_FALSE(from_wire(5).has_value());  // gen bits 0: never issued
  REQUIRE(next_gen(0) == 1);
  REQUIRE(next_gen(1) == 2);
  REQUIRE(next_gen(kGenMask) == 1);
  REQUIRE(kSlotBits + kGenBits == 32);
}

// ------------------------------------------------------------- slot table

TEST_CASE("slot table: alloc until full, stale handles, gen bumps, FIFO reuse") {
  Watchdog dog(30);
  TestSegment seg("slots", kSmall);
  auto players = seg->players();
  REQUIRE(players.capacity() == 16);
  std::vector<Handle> hs;
  std::set<std::uint32_t> slots;
  for (int i = 0; i < 16; ++i) {
    auto h = players.alloc([i](PlayerRow& r) { r.player_id = 100 + i; });
    REQUIRE(h.has_value());
    REQUIRE(h->gen == 1);
    REQUIRE(slots.insert(h->slot).second);
    REQUIRE(players.get(*h) != nullptr);
    REQUIRE(players.get(*h)->player_id == static_cast<std::uint32_t>(100 + i));
    REQUIRE(players.get_wire(to_wire(*h)) == players.get(*h));
    hs.push_back(*h);
  }
  REQUIRE_FALSE(players.alloc().has_value());
  REQUIRE(players.alloc_failures() == 1);
  REQUIRE(players.size() == 16);
  REQUIRE(players.high_water() == 16);
  REQUIRE(players.check_consistent());

  // Release: stale handle rejected by get and release.
  const Handle old = hs[3];
  REQUIRE(players.release(old));
  REQUIRE(players.get(old) == nullptr);
  REQUIRE(players.get_wire(to_wire(old)) == nullptr);
  REQUIRE_FALSE(players.release(old));
  REQUIRE(players.size() == 15);

  // The only free slot comes back with a new generation and a clean payload.
  auto again = players.alloc();
  REQUIRE(again.has_value());
  REQUIRE(again->slot == old.slot);
  REQUIRE(again->gen == next_gen(old.gen));
  REQUIRE(players.get(old) == nullptr);
  REQUIRE_FALSE(players.release(old));
  REQUIRE(players.get(*again)->player_id == 0);
  REQUIRE(players.get(*again)->worker == kNoWorker);

  // Out of range and never-issued handles.
  REQUIRE(players.get(Handle{16, 1}) == nullptr);
  REQUIRE(players.get(Handle{kSlotMask, 1}) == nullptr);
  REQUIRE_FALSE(players.release(Handle{999, 1}));
  REQUIRE(players.get_wire(kNoWireId) == nullptr);

  // FIFO: released slots come back in release order.
  REQUIRE(players.release(hs[5]));
  REQUIRE(players.release(hs[9]));
  REQUIRE(players.alloc()->slot == hs[5].slot);
  REQUIRE(players.alloc()->slot == hs[9].slot);

  // for_each_used sees every live row with its current handle.
  std::size_t seen = 0;
  players.for_each_used([&](Handle h, PlayerRow& r) {
    REQUIRE(players.get(h) == &r);
    ++seen;
  });
  REQUIRE(seen == 16);
  REQUIRE(players.check_consistent());
}

TEST_CASE("slot table: a slot's generation wraps without reaching 0") {
  Watchdog dog(60);
  TestSegment seg("wrap", Sizes{1, 1, 1, 1, 1});
  auto tickets = seg->tickets();
  std::uint32_t prev = 0;
  for (std::uint32_t i = 0; i < kGenMask + 10; ++i) {
    auto h = tickets.alloc();
    REQUIRE(h.has_value());
    REQUIRE(h->gen != 0);
    REQUIRE(h->gen == next_gen(prev));
    REQUIRE(from_wire(to_wire(*h)) == h);
    prev = h->gen;
    REQUIRE(tickets.release(*h));
  }
  REQUIRE(tickets.check_consistent());
}
