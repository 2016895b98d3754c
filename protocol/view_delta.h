// View deltas: the one byte-level encoding of a Snapshot against the view
// the client acknowledged. It knows nothing of any game: a view is opaque
// bytes, and a delta says which byte runs changed. Server, client library,
// tools and fuzzers share this file. No I/O, no clock, no allocation.
//
// Encoding (PROTOCOL.md, "View deltas", has a byte dump):
//
//   delta  := varint(new_len) { varint(skip) [ varint(run) byte{run} ] }
//   varint := unsigned LEB128, at most 5 bytes, value < 2^32, minimal
//             (no 0x80-padded forms), so each delta has one encoding.
//
// Decoding walks the new view from offset 0: `skip` bytes are copied from
// the base (bytes past the base's end read as 0), then `run` (>= 1) literal
// bytes follow. The delta may end after any skip or run; the rest of the
// new view is then copied from the base. A skip or run that goes past
// new_len, a run of 0, a truncated varint or literal, or trailing bytes
// after the view is complete make the whole delta invalid: the client keeps
// its old views and waits for a full snapshot.
//
// The encoder merges two changed runs separated by fewer than 3 unchanged
// bytes (a new run header costs 2), and drops the final skip. A view equal
// to its base encodes as varint(new_len) alone (1-3 bytes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace skirmish::proto {

// Upper bound of encode()'s output for a view of `len` bytes: the length,
// one (skip, run) header per changed byte at worst... bounded by this.
inline constexpr std::size_t delta_bound(std::size_t len) { return 5 + len + (len / 3 + 1) * 10; }

// Writes the delta from base[base_len] to cur[cur_len] into out[cap];
// returns its length, or 0 when cap < the size it needs (then send a full
// view). cap >= delta_bound(cur_len) never fails.
std::size_t encode_delta(const std::uint8_t* base, std::size_t base_len, const std::uint8_t* cur,
                         std::size_t cur_len, std::uint8_t* out, std::size_t cap);

enum class DeltaError : std::uint8_t {
  None = 0,
  Truncated,  // a varint or literal run cut short
  BadVarint,  // over 5 bytes, >= 2^32, or not minimal
  TooLong,    // new_len above the caller's cap
  Overrun,    // a skip or run past new_len, or a run of 0
  Trailing,   // bytes after the view was complete
};

// Applies delta[delta_len] to base[base_len] into out[cap] (out must not
// overlap base); on success returns None and sets *out_len. On error out is
// unspecified.
DeltaError apply_delta(const std::uint8_t* base, std::size_t base_len, const std::uint8_t* delta,
                       std::size_t delta_len, std::uint8_t* out, std::size_t cap, std::size_t* out_len);

const char* delta_error_name(DeltaError e);

}  // namespace skirmish::proto
