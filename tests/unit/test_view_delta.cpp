// The generic view delta (protocol/view_delta.h): round trips of random
// views, the worked example of PROTOCOL.md ("View deltas") byte for byte,
// every DeltaError, and the encoder's capacity contract.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "protocol/view_delta.h"

using namespace skirmish::proto;
using Bytes = std::vector<uint8_t>;

namespace {

// Encodes with a buffer of exactly delta_bound(cur) bytes (must never fail).
Bytes encode(const Bytes& base, const Bytes& cur) {
  Bytes out(delta_bound(cur.size()));
  const size_t n = encode_delta(base.data(), base.size(), cur.data(), cur.size(), out.data(), out.size());
  REQUIRE(n > 0);
  REQUIRE(n <= out.size());
  out.resize(n);
  return out;
}

struct Applied {
  DeltaError err;
  Bytes view;
};

Applied apply(const Bytes& base, const Bytes& delta, size_t cap = 4096) {
  // One byte more than cap, filled with a canary, to catch a write past cap.
  Bytes out(cap + 1, 0xEE);
  size_t len = 12345;
  DeltaError e = apply_delta(base.data(), base.size(), delta.data(), delta.size(), out.data(), cap, &len);
  REQUIRE(out[cap] == 0xEE);
  if (e != DeltaError::None) return {e, {}};
  REQUIRE(len <= cap);
  out.resize(len);
  return {e, out};
}

Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

// cur = base with a few random bytes changed (like a game view tick to tick).
Bytes mutate(std::mt19937& rng, Bytes v, size_t changes) {
  for (size_t i = 0; i < changes && !v.empty(); ++i) v[rng() % v.size()] = uint8_t(rng());
  return v;
}

void check_round_trip(const Bytes& base, const Bytes& cur) {
  Bytes d = encode(base, cur);
  Applied a = apply(base, d, cur.size());
  INFO("base " << base.size() << " cur " << cur.size() << " delta " << d.size());
  REQUIRE(a.err == DeltaError::None);
  REQUIRE(a.view == cur);
}

}  // namespace

TEST_CASE("random views round-trip: equal, grown, shrunk, empty, all changed") {
  std::mt19937 rng(1313);
  for (int round = 0; round < 500; ++round) {
    const size_t n = rng() % 1200;
    Bytes base = random_bytes(rng, n);
    // Equal: the delta is varint(len) alone.
    Bytes same = encode(base, base);
    REQUIRE(same.size() == (n < 128 ? 1u : 2u));
    check_round_trip(base, base);
    // A few bytes changed, the common case.
    Bytes cur = mutate(rng, base, rng() % 20);
    check_round_trip(base, cur);
    // Grown: random tail, and a tail of zeros (bytes past the base read as 0).
    Bytes grown = cur;
    Bytes tail = random_bytes(rng, 1 + rng() % 300);
    grown.insert(grown.end(), tail.begin(), tail.end());
    check_round_trip(base, grown);
    Bytes zeros = base;
    zeros.resize(base.size() + 1 + rng() % 50, 0);
    check_round_trip(base, zeros);
    REQUIRE(encode(base, zeros).size() <= 3);  // only the new length
    // Shrunk, with and without changes.
    Bytes shrunk(cur.begin(), cur.begin() + (cur.empty() ? 0 : long(rng() % cur.size())));
    check_round_trip(base, shrunk);
    check_round_trip(base, Bytes(base.begin(), base.begin() + long(n / 2)));
    // Empty on either side.
    check_round_trip(base, {});
    check_round_trip({}, cur);
    // Every byte changed.
    Bytes all = base;
    for (auto& b : all) b = uint8_t(~b);
    check_round_trip(base, all);
    check_round_trip(base, random_bytes(rng, rng() % 1200));
  }
  check_round_trip({}, {});
  REQUIRE(encode({}, {}) == Bytes{0x00});
}

TEST_CASE("the worked example of PROTOCOL.md, byte for byte") {
  // PROTOCOL.md, "View deltas": a 16-byte base; the new view changes bytes
  // 4 and 6 (one unchanged byte between: merged into one run), byte 12, and
  // grows by 2 bytes, of which the first is 0 (what a byte past the base
  // reads as: unchanged) and the second is 7.
  const Bytes base{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                   0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
  Bytes cur = base;
  cur[4] = 0xa4;
  cur[6] = 0xa6;
  cur[12] = 0xc0;
  cur.push_back(0x00);
  cur.push_back(0x07);
  const Bytes expected{
      0x12,              // new_len 18
      0x04,              // skip 4: bytes 0..3 from the base
      0x03, 0xa4, 0x15, 0xa6,  // run 3: bytes 4..6 (byte 5 unchanged but merged)
      0x05,              // skip 5: bytes 7..11 from the base
      0x01, 0xc0,        // run 1: byte 12
      0x04,              // skip 4: bytes 13..15 from the base, 16 past it reads 0
      0x01, 0x07,        // run 1: byte 17
  };
  REQUIRE(encode(base, cur) == expected);
  Applied a = apply(base, expected);
  REQUIRE(a.err == DeltaError::None);
  REQUIRE(a.view == cur);
  // The same change without the growth: the final skip is dropped.
  Bytes same_len(cur.begin(), cur.begin() + 16);
  REQUIRE(encode(base, same_len) == Bytes{0x10, 0x04, 0x03, 0xa4, 0x15, 0xa6, 0x05, 0x01, 0xc0});
  // The base itself: the length alone.
  REQUIRE(encode(base, base) == Bytes{0x10});
  // A view of 972 bytes (the arena's largest) has a 2-byte length: cc 07.
  Bytes big(972, 1);
  REQUIRE(encode(big, big) == Bytes{0xcc, 0x07});
}

TEST_CASE("the encoder merges gaps shorter than 3 and splits at 3") {
  const Bytes base(20, 0);
  Bytes gap2 = base;
  gap2[5] = 1;
  gap2[8] = 2;  // bytes 6, 7 unchanged: one run 5..8
  REQUIRE(encode(base, gap2) == Bytes{20, 5, 4, 1, 0, 0, 2});
  Bytes gap3 = base;
  gap3[5] = 1;
  gap3[9] = 2;  // bytes 6, 7, 8 unchanged: two runs
  REQUIRE(encode(base, gap3) == Bytes{20, 5, 1, 1, 3, 1, 2});
}

TEST_CASE("a delta applies to a base it was not made for without overrunning") {
  // The decoder cannot know the base; any base gives some view of new_len.
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    Bytes base = random_bytes(rng, rng() % 100);
    Bytes cur = random_bytes(rng, rng() % 100);
    Bytes d = encode(base, cur);
    Bytes other = random_bytes(rng, rng() % 100);
    Applied a = apply(other, d, cur.size());
    REQUIRE(a.err == DeltaError::None);
    REQUIRE(a.view.size() == cur.size());
  }
}

TEST_CASE("every DeltaError") {
  const Bytes base{1, 2, 3, 4};
  SECTION("truncated varint") {
    REQUIRE(apply(base, {}).err == DeltaError::Truncated);          // no length at all
    REQUIRE(apply(base, {0x80}).err == DeltaError::Truncated);      // length cut short
    REQUIRE(apply(base, {0x04, 0x81}).err == DeltaError::Truncated);  // skip cut short
    REQUIRE(apply(base, {0x04, 0x00, 0x82}).err == DeltaError::Truncated);  // run cut short
  }
  SECTION("truncated literal run") {
    REQUIRE(apply(base, {0x04, 0x01, 0x02, 0xaa}).err == DeltaError::Truncated);
    REQUIRE(apply(base, {0x04, 0x00, 0x01}).err == DeltaError::Truncated);
  }
  SECTION("non-minimal varint") {
    REQUIRE(apply(base, {0x80, 0x00}).err == DeltaError::BadVarint);              // 0 in 2 bytes
    REQUIRE(apply(base, {0x84, 0x80, 0x00}).err == DeltaError::BadVarint);        // 4 in 3 bytes
    REQUIRE(apply(base, {0x04, 0x81, 0x00}).err == DeltaError::BadVarint);        // a skip of 1 in 2 bytes
    REQUIRE(apply(base, {0x04, 0x00, 0x82, 0x00, 1, 2}).err == DeltaError::BadVarint);  // a run
  }
  SECTION("varint over 5 bytes or at least 2^32") {
    REQUIRE(apply(base, {0x80, 0x80, 0x80, 0x80, 0x80, 0x01}).err == DeltaError::BadVarint);
    REQUIRE(apply(base, {0xff, 0xff, 0xff, 0xff, 0x1f}).err == DeltaError::BadVarint);  // 2^35 - 1
    REQUIRE(apply(base, {0x80, 0x80, 0x80, 0x80, 0x10}).err == DeltaError::BadVarint);  // 2^32
    // 2^32 - 1 is a valid varint: the view is then too long for the cap.
    REQUIRE(apply(base, {0xff, 0xff, 0xff, 0xff, 0x0f}).err == DeltaError::TooLong);
  }
  SECTION("run of 0") {
    REQUIRE(apply(base, {0x04, 0x00, 0x00}).err == DeltaError::Overrun);
    REQUIRE(apply(base, {0x04, 0x02, 0x00, 0x01, 0xaa}).err == DeltaError::Overrun);
  }
  SECTION("overrun: a skip or a run past new_len") {
    REQUIRE(apply(base, {0x04, 0x05}).err == DeltaError::Overrun);
    REQUIRE(apply(base, {0x04, 0x02, 0x03, 0xaa, 0xbb, 0xcc}).err == DeltaError::Overrun);
    // A skip to the very end, then a run header: the run cannot fit.
    REQUIRE(apply(base, {0x02, 0x02, 0x00}).err == DeltaError::Overrun);
    REQUIRE(apply(base, {0x02, 0x02, 0x01, 0xaa}).err == DeltaError::Overrun);
    // Exactly to the end is fine.
    Applied ok = apply(base, {0x04, 0x02, 0x02, 0xaa, 0xbb});
    REQUIRE(ok.err == DeltaError::None);
    REQUIRE(ok.view == Bytes{1, 2, 0xaa, 0xbb});
  }
  SECTION("trailing bytes after the view is complete") {
    REQUIRE(apply(base, {0x04, 0x00, 0x04, 9, 9, 9, 9, 0x00}).err == DeltaError::Trailing);
    REQUIRE(apply(base, {0x00, 0x00}).err == DeltaError::Trailing);
    REQUIRE(apply(base, {0x02, 0x01, 0x01, 0xaa, 0x00}).err == DeltaError::Trailing);
  }
  SECTION("TooLong: new_len above the caller's cap") {
    REQUIRE(apply(base, {0x10}, 15).err == DeltaError::TooLong);
    Applied ok = apply(base, {0x10}, 16);
    REQUIRE(ok.err == DeltaError::None);
    REQUIRE(ok.view == Bytes{1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    REQUIRE(apply(base, {0x01}, 0).err == DeltaError::TooLong);
  }
  SECTION("every error has a name") {
    for (DeltaError e : {DeltaError::None, DeltaError::Truncated, DeltaError::BadVarint, DeltaError::TooLong,
                         DeltaError::Overrun, DeltaError::Trailing})
      REQUIRE(std::strlen(delta_error_name(e)) > 0);
    REQUIRE(std::string(delta_error_name(DeltaError::Trailing)) != delta_error_name(DeltaError::Overrun));
  }
}

TEST_CASE("the delta may end after any skip or run, a trailing skip is accepted") {
  const Bytes base{1, 2, 3, 4, 5, 6};
  Applied a = apply(base, {0x06, 0x01, 0x01, 0xaa, 0x02});
  REQUIRE(a.err == DeltaError::None);
  REQUIRE(a.view == Bytes{1, 0xaa, 3, 4, 5, 6});
  Applied shrink = apply(base, {0x03});
  REQUIRE(shrink.err == DeltaError::None);
  REQUIRE(shrink.view == Bytes{1, 2, 3});
}

TEST_CASE("encode_delta with cap below what it needs returns 0, at every cap") {
  std::mt19937 rng(99);
  for (int round = 0; round < 100; ++round) {
    Bytes base = random_bytes(rng, rng() % 300);
    Bytes cur = round % 3 == 0 ? random_bytes(rng, rng() % 300) : mutate(rng, base, 1 + rng() % 30);
    const Bytes d = encode(base, cur);
    for (size_t cap = 0; cap < d.size(); ++cap) {
      Bytes out(cap + 1, 0xEE);
      INFO("cap " << cap << " needed " << d.size());
      REQUIRE(encode_delta(base.data(), base.size(), cur.data(), cur.size(), out.data(), cap) == 0);
      REQUIRE(out[cap] == 0xEE);  // nothing written past cap
    }
    Bytes exact(d.size());
    REQUIRE(encode_delta(base.data(), base.size(), cur.data(), cur.size(), exact.data(), exact.size()) == d.size());
    REQUIRE(exact == d);
  }
}

TEST_CASE("delta_bound holds for the worst patterns") {
  // A change every 4th byte (gaps of 3 just too long to merge) makes the
  // most run headers; every byte changed makes the most literals.
  for (size_t n : {0u, 1u, 3u, 4u, 127u, 128u, 972u, 4096u, 20000u}) {
    const Bytes base(n, 0);
    Bytes every4 = base, all = base;
    for (size_t i = 0; i < n; i += 4) every4[i] = 1;
    for (auto& b : all) b = 0xff;
    REQUIRE(encode(base, every4).size() <= delta_bound(n));
    REQUIRE(encode(base, all).size() <= delta_bound(n));
    check_round_trip(base, every4);
  }
  Bytes base(300000, 0), cur(300000, 0);
  for (size_t i = 0; i < cur.size(); i += 4) cur[i] = 1;
  check_round_trip(base, cur);
}
