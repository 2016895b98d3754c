// fuzz_view_delta: the generic view delta (protocol/view_delta.h), the one
// decoder every client runs on bytes from the network.
//
// Input: [mode u8][cap u16][split u16][bytes ...]
//   mode bit 0 = 0  apply_delta(base, delta): the rest is cut at `split`
//                   into a base and a delta of any bytes, decoded into an
//                   out buffer of `cap` bytes (a fresh heap allocation of
//                   exactly cap, so ASan sees any write past it);
//   mode bit 0 = 1  round trip: the rest is cut at `split` into two views
//                   (old, new); bit 1 makes new = old with the bytes of
//                   the second part overwritten from offset cap (mostly
//                   equal views, the common case of a game).
//
// Checked, beyond "no crash, no ASan/UBSan report":
//   - apply_delta never writes past cap and never reads past the delta or
//     the base; on None the length is within cap and equal to the delta's
//     new_len; on an error, nothing is promised of out but its bounds;
//     decoding is a pure function (a second decode gives the same result);
//   - a delta decoded successfully, re-encoded against the same base and
//     decoded again gives the same view (encoding is canonical up to the
//     view it produces);
//   - encode_delta(old, new) with cap delta_bound(new) never fails, applies
//     to old giving exactly new, and every cap below its length gives 0;
//     a view equal to its base encodes to its length alone.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "protocol/view_delta.h"

#define FUZZ_CHECK(cond)                                                                          \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "fuzz_view_delta: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

namespace {

using namespace skirmish::proto;
using Bytes = std::vector<uint8_t>;

size_t varint_len(size_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Decodes into exactly `cap` heap bytes; returns the error and the view.
DeltaError decode(const uint8_t* base, size_t base_len, const uint8_t* delta, size_t delta_len, size_t cap,
                  Bytes& view) {
  std::unique_ptr<uint8_t[]> out(new uint8_t[cap == 0 ? 1 : cap]);
  size_t len = size_t(-1);
  const DeltaError e = apply_delta(base, base_len, delta, delta_len, cap == 0 ? nullptr : out.get(), cap, &len);
  if (e == DeltaError::None) {
    FUZZ_CHECK(len <= cap);
    view.assign(out.get(), out.get() + len);
  } else {
    view.clear();
  }
  return e;
}

Bytes encode(const Bytes& base, const Bytes& cur) {
  Bytes out(delta_bound(cur.size()));
  const size_t n = encode_delta(base.data(), base.size(), cur.data(), cur.size(), out.data(), out.size());
  FUZZ_CHECK(n > 0 && n <= out.size());
  out.resize(n);
  return out;
}

void fuzz_apply(const Bytes& base, const Bytes& delta, size_t cap) {
  // Exact-size copies, so a read one past either is an ASan report.
  std::unique_ptr<uint8_t[]> b(new uint8_t[base.size() + 1]);
  std::unique_ptr<uint8_t[]> d(new uint8_t[delta.size() + 1]);
  if (!base.empty()) std::memcpy(b.get(), base.data(), base.size());
  if (!delta.empty()) std::memcpy(d.get(), delta.data(), delta.size());
  Bytes view, again;
  const DeltaError e = decode(b.get(), base.size(), d.get(), delta.size(), cap, view);
  FUZZ_CHECK(delta_error_name(e) != nullptr);
  FUZZ_CHECK(decode(b.get(), base.size(), d.get(), delta.size(), cap, again) == e);
  FUZZ_CHECK(again == view);
  if (e != DeltaError::None) return;
  // The first varint is new_len.
  size_t new_len = 0;
  for (size_t i = 0, shift = 0; i < delta.size() && i < 5; ++i, shift += 7) {
    new_len |= size_t(delta[i] & 0x7f) << shift;
    if ((delta[i] & 0x80) == 0) break;
  }
  FUZZ_CHECK(view.size() == new_len);
  // The encoder's own delta for this view decodes to the same view.
  const Bytes re = encode(base, view);
  Bytes view2;
  FUZZ_CHECK(decode(base.data(), base.size(), re.data(), re.size(), view.size(), view2) == DeltaError::None);
  FUZZ_CHECK(view2 == view);
}

void fuzz_round_trip(const Bytes& old_view, const Bytes& new_view) {
  const Bytes d = encode(old_view, new_view);
  if (old_view == new_view) FUZZ_CHECK(d.size() == varint_len(new_view.size()));
  Bytes got;
  FUZZ_CHECK(decode(old_view.data(), old_view.size(), d.data(), d.size(), new_view.size(), got) == DeltaError::None);
  FUZZ_CHECK(got == new_view);
  // One byte short of the cap the view needs: TooLong, never a write.
  if (!new_view.empty())
    FUZZ_CHECK(decode(old_view.data(), old_view.size(), d.data(), d.size(), new_view.size() - 1, got) ==
               DeltaError::TooLong);
  // Every cap below the delta's length fails cleanly (a few, not all: the
  // fuzzer's time is better spent on new inputs).
  Bytes out(d.size() + 1, 0xEE);
  for (size_t cap : {size_t(0), d.size() / 2, d.size() - 1}) {
    if (cap >= d.size()) continue;
    std::fill(out.begin(), out.end(), 0xEE);
    FUZZ_CHECK(encode_delta(old_view.data(), old_view.size(), new_view.data(), new_view.size(), out.data(), cap) ==
               0);
    FUZZ_CHECK(out[cap] == 0xEE);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const uint8_t mode = data[0];
  const size_t cap = size_t(data[1]) | size_t(data[2]) << 8;
  const size_t rest = size - 5;
  const size_t split = rest == 0 ? 0 : (size_t(data[3]) | size_t(data[4]) << 8) % (rest + 1);
  const uint8_t* p = data + 5;
  const Bytes first(p, p + split), second(p + split, p + rest);
  if ((mode & 1) == 0) {
    fuzz_apply(first, second, cap);
  } else if (mode & 2) {
    Bytes next = first;
    const size_t at = first.empty() ? 0 : cap % (first.size() + 1);
    if (next.size() < at + second.size()) next.resize(at + second.size(), 0);
    std::copy(second.begin(), second.end(), next.begin() + long(at));
    fuzz_round_trip(first, next);
  } else {
    fuzz_round_trip(first, second);
  }
  return 0;
}
