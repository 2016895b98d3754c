// The match record (server/record/record.h): the ring the owner appends to,
// the drainer's copy, the file header and the parser's rules.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "record/record.h"

using namespace skirmish;
using namespace skirmish::record;

namespace {

struct TestRing {
  alignas(64) shm::RecordRing head{};
  std::vector<std::uint8_t> bytes;
  Ring ring;
  explicit TestRing(std::uint32_t cap) : bytes(cap) { ring = Ring{&head, bytes.data(), cap}; }
};

std::vector<std::uint8_t> state(std::uint8_t v) { return std::vector<std::uint8_t>(64, v); }

// n inputs of `len` bytes, seat i % 2, seq i + 1.
struct Inputs {
  std::vector<std::uint8_t> data;
  std::vector<skirmish_input> items;
  Inputs(std::uint32_t n, std::uint8_t len, std::uint8_t fill) : data(std::size_t(n) * len, fill) {
    for (std::uint32_t i = 0; i < n; ++i)
      items.push_back(skirmish_input{std::uint8_t(i % 2), len, 0, i + 1, data.data() + std::size_t(i) * len});
  }
};

std::vector<std::uint8_t> file_of(const std::vector<std::uint8_t>& records) {
  FileHeader h;
  h.game_name = "arena";
  h.game_version = "1.0.0";
  h.module = "/x/arena.so";
  h.state_bytes = 64;
  h.players = 2;
  h.seed = 7;
  h.tick_rate_hz = 30;
  h.hash_every = 1;
  h.match = 0x100000;
  h.created_unix_ms = 1234;
  h.params = {module::GameParam{"width", SKIRMISH_PARAM_INT, 20000, 0, ""},
              module::GameParam{"name", SKIRMISH_PARAM_STRING, 0, 0, "big"}};
  std::vector<std::uint8_t> f = encode_header(h);
  f.insert(f.end(), records.begin(), records.end());
  return f;
}

}  // namespace

TEST_CASE("record: ticks and hashes go through the ring, wrapping, and come out whole") {
  TestRing t(shm::kMinRecordBytes);
  const auto s0 = state(0);
  start_locked(t.ring, 1, 1234, s0.data(), 64);
  REQUIRE(t.head.state == shm::RecordState::Recording);
  REQUIRE(t.head.write_pos == 16);  // HASH(0)
  std::vector<std::uint8_t> out;
  std::uint64_t read = 0;
  Inputs in(3, 40, 0xAB);
  // Enough ticks to wrap the ring several times, draining as the coordinator does.
  for (std::uint32_t tick = 1; tick <= 400; ++tick) {
    REQUIRE(append_tick_locked(t.ring, tick, 0x3, in.items.data(), 3));
    const auto s = state(std::uint8_t(tick));
    REQUIRE(append_hash_locked(t.ring, tick, s.data(), 64));
    if (tick % 50 == 0) {
      read = copy_locked(t.ring, UINT64_MAX, out);
      t.head.read_pos = read;
    }
  }
  REQUIRE(t.head.write_pos > 4 * shm::kMinRecordBytes);
  REQUIRE(read == t.head.write_pos);
  const auto f = file_of(out);
  Parsed p;
  std::string error;
  REQUIRE(parse(f.data(), f.size(), p, error));
  REQUIRE(p.header.game_name == "arena");
  REQUIRE(p.header.params.size() == 2);
  REQUIRE(p.header.params[1].s == "big");
  REQUIRE(p.has_hash0);
  REQUIRE(p.hash0 == state_hash(s0.data(), 64));
  REQUIRE(p.ticks.size() == 400);
  REQUIRE(p.ticks[399].tick == 400);
  REQUIRE(p.ticks[399].count == 3);
  REQUIRE(p.ticks[399].connected == 0x3);
  REQUIRE(p.ticks[399].has_hash);
  REQUIRE(p.ticks[399].hash == state_hash(state(std::uint8_t(400)).data(), 64));
  const Input& last = p.inputs[p.ticks[399].first + 2];
  REQUIRE(last.seq == 3);
  REQUIRE(last.len == 40);
  REQUIRE(p.bytes[last.offset] == 0xAB);
  REQUIRE(last_tick(out.data(), out.size(), 0) == 400);
}

TEST_CASE("record: a full ring is Lost from that tick on, once, and nothing more is appended") {
  TestRing t(shm::kMinRecordBytes);
  const auto s0 = state(0);
  start_locked(t.ring, 30, 0, s0.data(), 64);
  Inputs in(8, 56, 1);
  std::uint32_t tick = 1;
  while (append_tick_locked(t.ring, tick, 1, in.items.data(), 8)) {
    ++tick;
    REQUIRE(tick < 1000);
  }
  REQUIRE(t.head.state == shm::RecordState::Lost);
  REQUIRE(t.head.lost_tick == tick);
  const std::uint64_t w = t.head.write_pos;
  REQUIRE(w <= shm::kMinRecordBytes);
  REQUIRE(append_tick_locked(t.ring, tick + 1, 1, in.items.data(), 8));  // true: already lost, not again
  REQUIRE(t.head.write_pos == w);
}

TEST_CASE("record: the drainer copies whole records only, within its budget") {
  TestRing t(shm::kMinRecordBytes);
  const auto s0 = state(0);
  start_locked(t.ring, 1000, 0, s0.data(), 64);
  Inputs in(1, 10, 2);
  for (std::uint32_t tick = 1; tick <= 10; ++tick) REQUIRE(append_tick_locked(t.ring, tick, 1, in.items.data(), 1));
  // HASH(0) is 16 bytes, each TICK 12 + 6 + 10 = 28.
  std::vector<std::uint8_t> out;
  REQUIRE(copy_locked(t.ring, 16 + 28 * 3 + 27, out) == 16 + 28 * 3);
  REQUIRE(out.size() == 16 + 28 * 3);
  REQUIRE(last_tick(out.data(), out.size(), 0) == 3);
}

TEST_CASE("record: the last TICK of a tick wins (a re-step after a crash or an adoption)") {
  // Records built through a ring: TICK 1, HASH 1, TICK 2 (x), HASH 2, then
  // TICK 2 again with other inputs (the adopter's), HASH 2, TICK 3.
  TestRing t(shm::kMinRecordBytes);
  const auto s0 = state(0);
  start_locked(t.ring, 1, 0, s0.data(), 64);
  Inputs a(1, 3, 0xA), b(2, 3, 0xB);
  const auto s1 = state(1), s2 = state(2), s2b = state(22);
  REQUIRE(append_tick_locked(t.ring, 1, 1, a.items.data(), 1));
  REQUIRE(append_hash_locked(t.ring, 1, s1.data(), 64));
  REQUIRE(append_tick_locked(t.ring, 2, 1, a.items.data(), 1));
  REQUIRE(append_hash_locked(t.ring, 2, s2.data(), 64));
  REQUIRE(append_tick_locked(t.ring, 2, 3, b.items.data(), 2));
  REQUIRE(append_hash_locked(t.ring, 2, s2b.data(), 64));
  REQUIRE(append_tick_locked(t.ring, 3, 3, a.items.data(), 1));
  std::vector<std::uint8_t> out;
  copy_locked(t.ring, UINT64_MAX, out);
  shm::SeatResult seats[2] = {{1, {}, 5, 0, 0}, {2, {}, 3, 0, 0}};
  put_end(out, 3, 2, 0, seats, 2);
  const auto f = file_of(out);
  Parsed p;
  std::string error;
  REQUIRE(parse(f.data(), f.size(), p, error));
  REQUIRE(p.ticks.size() == 3);
  REQUIRE(p.ticks[1].connected == 3);
  REQUIRE(p.ticks[1].count == 2);
  REQUIRE(p.bytes[p.inputs[p.ticks[1].first].offset] == 0xB);
  REQUIRE(p.ticks[1].hash == state_hash(s2b.data(), 64));
  REQUIRE(!p.ticks[2].has_hash);
  REQUIRE(p.has_end);
  REQUIRE(p.end.final_tick == 3);
  REQUIRE(p.end.seats.size() == 2);
  REQUIRE(p.end.seats[0].score == 5);

  SECTION("a file cut inside a record parses as truncated") {
    Parsed q;
    REQUIRE(parse(f.data(), f.size() - 3, q, error));
    REQUIRE(q.truncated);
    REQUIRE(!q.has_end);
  }
  SECTION("a tick out of order, a bad magic or a bad length is one line naming the byte") {
    auto g = f;
    g[0] = 'X';
    Parsed q;
    REQUIRE(!parse(g.data(), g.size(), q, error));
    REQUIRE(error.find("magic") != std::string::npos);
    g = f;
    std::uint32_t hb = 0;
    std::memcpy(&hb, g.data() + 12, 4);
    const std::uint16_t zero = 2;
    std::memcpy(g.data() + hb, &zero, 2);
    REQUIRE(!parse(g.data(), g.size(), q, error));
    REQUIRE(error.find("damaged record at byte " + std::to_string(hb)) != std::string::npos);
    g = f;
    const std::uint32_t bad_tick = 9;
    std::memcpy(g.data() + hb + 16 + 4, &bad_tick, 4);  // TICK 1 -> TICK 9
    REQUIRE(!parse(g.data(), g.size(), q, error));
    REQUIRE(error.find("TICK 9 after tick 0") != std::string::npos);
  }
}
