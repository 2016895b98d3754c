// Handles into shared-memory slot tables, and their u32 wire form.
//
// Contract
// - A Handle is a slot index plus the slot's generation at allocation time.
//   A slot's generation changes every time it is allocated, so a handle kept
//   after its row was released (a "stale" handle) is detected, never followed.
// - Generations live in [1, kGenMask]: they wrap inside kGenBits and skip 0.
//   Because the generation never needs more bits than the wire carries,
//   to_wire/from_wire round-trip exactly and a wire id can be stored in the
//   segment (PlayerRow::match, MatchRow::players, ...) with no loss.
// - Wire id bit split (u32):   bits 31..20 = gen (12 bits)
//                              bits 19..0  = slot (20 bits)
//   so every table holds at most kMaxSlots = 2^20 rows (checked by
//   validate_sizes), and a stale handle aliases only after its slot has been
//   reallocated 4095 times (the tables reuse slots FIFO to push that far out).
// - Wire id 0 means "none": slot 0 with gen 0, which no live row has.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>

namespace skirmish::shm {

inline constexpr std::uint32_t kSlotBits = 20;
inline constexpr std::uint32_t kGenBits = 32 - kSlotBits;
inline constexpr std::uint32_t kSlotMask = (1u << kSlotBits) - 1;
inline constexpr std::uint32_t kGenMask = (1u << kGenBits) - 1;
inline constexpr std::uint32_t kMaxSlots = 1u << kSlotBits;
inline constexpr std::uint32_t kNoWireId = 0;

struct Handle {
  std::uint32_t slot;
  std::uint32_t gen;  // 1..kGenMask for a valid handle

  friend bool operator==(const Handle&, const Handle&) = default;
};
static_assert(std::is_trivially_copyable_v<Handle>);
static_assert(std::is_standard_layout_v<Handle>);
static_assert(sizeof(Handle) == 8);

// The generation that follows `gen`: wraps inside kGenBits, never 0.
constexpr std::uint32_t next_gen(std::uint32_t gen) {
  std::uint32_t next = (gen + 1) & kGenMask;
  return next == 0 ? 1 : next;
}

// Precondition (checked by the tables that hand out handles):
// slot < kMaxSlots and gen in [1, kGenMask].
constexpr std::uint32_t to_wire(Handle h) {
  return ((h.gen & kGenMask) << kSlotBits) | (h.slot & kSlotMask);
}

// nullopt for kNoWireId or a wire id whose gen bits are 0 (never issued).
// A well-formed id may still be stale: the table's get() decides.
constexpr std::optional<Handle> from_wire(std::uint32_t wire) {
  Handle h{wire & kSlotMask, wire >> kSlotBits};
  if (h.gen == 0) return std::nullopt;
  return h;
}

}  // namespace skirmish::shm
