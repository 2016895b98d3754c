#include "protocol/view_delta.h"

#include <cstring>

namespace skirmish::proto {
namespace {

// Unchanged bytes shorter than this between two changed runs are sent as
// literals: a new (skip, run) header costs at least 2 bytes.
constexpr std::size_t kMergeGap = 3;

inline std::uint8_t byte_at(const std::uint8_t* p, std::size_t len, std::size_t i) {
  return i < len ? p[i] : 0;
}

// Appends v as LEB128; false when it does not fit.
inline bool put_varint(std::uint8_t* out, std::size_t cap, std::size_t& n, std::uint32_t v) {
  do {
    if (n >= cap) return false;
    std::uint8_t b = std::uint8_t(v & 0x7f);
    v >>= 7;
    if (v != 0) b |= 0x80;
    out[n++] = b;
  } while (v != 0);
  return true;
}

inline DeltaError get_varint(const std::uint8_t* in, std::size_t len, std::size_t& pos, std::uint32_t& v) {
  std::uint64_t acc = 0;
  for (int i = 0; i < 5; ++i) {
    if (pos >= len) return DeltaError::Truncated;
    const std::uint8_t b = in[pos++];
    acc |= std::uint64_t(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      // Minimal: a final byte of 0 after the first means a padded form.
      if (i > 0 && b == 0) return DeltaError::BadVarint;
      if (acc > 0xffffffffull) return DeltaError::BadVarint;
      v = std::uint32_t(acc);
      return DeltaError::None;
    }
  }
  return DeltaError::BadVarint;
}

}  // namespace

std::size_t encode_delta(const std::uint8_t* base, std::size_t base_len, const std::uint8_t* cur,
                         std::size_t cur_len, std::uint8_t* out, std::size_t cap) {
  if (cur_len > 0xffffffffu) return 0;
  std::size_t n = 0;
  if (!put_varint(out, cap, n, std::uint32_t(cur_len))) return 0;
  std::size_t pos = 0;  // bytes of cur already described
  std::size_t i = 0;
  while (i < cur_len) {
    if (cur[i] == byte_at(base, base_len, i)) {
      ++i;
      continue;
    }
    // A changed run starts at i; extend it over gaps shorter than kMergeGap.
    std::size_t end = i + 1;
    std::size_t same = 0;
    for (std::size_t j = end; j < cur_len; ++j) {
      if (cur[j] == byte_at(base, base_len, j)) {
        if (++same >= kMergeGap) break;
      } else {
        same = 0;
        end = j + 1;
      }
    }
    if (!put_varint(out, cap, n, std::uint32_t(i - pos))) return 0;
    if (!put_varint(out, cap, n, std::uint32_t(end - i))) return 0;
    if (cap - n < end - i) return 0;
    std::memcpy(out + n, cur + i, end - i);
    n += end - i;
    pos = end;
    i = end;
  }
  return n;
}

DeltaError apply_delta(const std::uint8_t* base, std::size_t base_len, const std::uint8_t* delta,
                       std::size_t delta_len, std::uint8_t* out, std::size_t cap, std::size_t* out_len) {
  std::size_t in = 0;
  std::uint32_t new_len = 0;
  if (DeltaError e = get_varint(delta, delta_len, in, new_len); e != DeltaError::None) return e;
  if (new_len > cap) return DeltaError::TooLong;
  std::size_t pos = 0;
  auto copy_base = [&](std::size_t count) {
    const std::size_t from_base = pos < base_len ? (base_len - pos < count ? base_len - pos : count) : 0;
    if (from_base != 0) std::memcpy(out + pos, base + pos, from_base);
    if (count > from_base) std::memset(out + pos + from_base, 0, count - from_base);
    pos += count;
  };
  while (in < delta_len) {
    if (pos >= new_len) return DeltaError::Trailing;
    std::uint32_t skip = 0;
    if (DeltaError e = get_varint(delta, delta_len, in, skip); e != DeltaError::None) return e;
    if (skip > new_len - pos) return DeltaError::Overrun;
    copy_base(skip);
    if (in == delta_len) break;
    std::uint32_t run = 0;
    if (DeltaError e = get_varint(delta, delta_len, in, run); e != DeltaError::None) return e;
    if (run == 0 || run > new_len - pos) return DeltaError::Overrun;
    if (delta_len - in < run) return DeltaError::Truncated;
    std::memcpy(out + pos, delta + in, run);
    pos += run;
    in += run;
  }
  copy_base(new_len - pos);
  *out_len = new_len;
  return DeltaError::None;
}

const char* delta_error_name(DeltaError e) {
  switch (e) {
    case DeltaError::None: return "none";
    case DeltaError::Truncated: return "truncated";
    case DeltaError::BadVarint: return "bad varint";
    case DeltaError::TooLong: return "view longer than allowed";
    case DeltaError::Overrun: return "run past the view";
    case DeltaError::Trailing: return "trailing bytes";
  }
  return "unknown";
}

}  // namespace skirmish::proto
