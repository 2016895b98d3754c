#include "record/record.h"

#include <bit>
#include <cstring>

#include "shm/atomic_field.h"

namespace skirmish::record {

static_assert(std::endian::native == std::endian::little, "record files are little endian");

namespace {

template <class T>
void put(std::uint8_t*& p, T v) {
  std::memcpy(p, &v, sizeof v);
  p += sizeof v;
}
template <class T>
T get(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void head(std::uint8_t*& p, std::uint32_t len, Type t, std::uint32_t n) {
  put(p, std::uint16_t(len));
  put(p, std::uint8_t(t));
  put(p, std::uint8_t(n));
}

// Ring bytes at position `pos` (wrapping).
void ring_write(const Ring& r, std::uint64_t pos, const std::uint8_t* src, std::uint32_t len) {
  const std::uint32_t at = std::uint32_t(pos % r.capacity);
  const std::uint32_t first = len < r.capacity - at ? len : r.capacity - at;
  std::memcpy(r.bytes + at, src, first);
  std::memcpy(r.bytes, src + first, len - first);
}
void ring_read(const Ring& r, std::uint64_t pos, std::uint8_t* dst, std::uint32_t len) {
  const std::uint32_t at = std::uint32_t(pos % r.capacity);
  const std::uint32_t first = len < r.capacity - at ? len : r.capacity - at;
  std::memcpy(dst, r.bytes + at, first);
  std::memcpy(dst + first, r.bytes, len - first);
}

// One record into the ring, or Lost at `tick` when it does not fit.
bool append(const Ring& r, const std::uint8_t* rec, std::uint32_t len, std::uint32_t tick) {
  shm::RecordRing& h = *r.head;
  if (h.state != shm::RecordState::Recording) return true;
  const std::uint64_t w = h.write_pos;
  const std::uint64_t rd = shm::shared_load(h.read_pos);
  if (w - rd + len > r.capacity) {
    h.lost_tick = tick;
    shm::shared_store(h.state, shm::RecordState::Lost);
    return false;
  }
  ring_write(r, w, rec, len);
  shm::shared_store(h.write_pos, w + len);  // release: the bytes before the position
  return true;
}

}  // namespace

std::uint64_t state_hash(const std::uint8_t* state, std::size_t len) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::size_t i = 0; i < len; ++i) h = (h ^ state[i]) * 1099511628211ull;
  return h;
}

void start_locked(const Ring& r, std::uint32_t hash_every, std::int64_t created_unix_ms, const std::uint8_t* state,
                  std::uint32_t state_bytes) {
  shm::RecordRing& h = *r.head;
  h = shm::RecordRing{};
  h.hash_every = hash_every == 0 ? 1 : hash_every;
  h.created_unix_ms = created_unix_ms;
  shm::shared_store(h.state, shm::RecordState::Recording);
  std::uint8_t rec[16];
  std::uint8_t* p = rec;
  head(p, sizeof rec, Type::Hash, 0);
  put(p, std::uint32_t{0});
  put(p, state_hash(state, state_bytes));
  append(r, rec, sizeof rec, 0);
}

bool append_tick_locked(const Ring& r, std::uint32_t tick, std::uint32_t connected, const skirmish_input* items,
                        std::uint32_t n) {
  if (r.head->state != shm::RecordState::Recording) return true;
  std::uint8_t rec[kMaxRecordBytes];
  std::uint8_t* p = rec + kRecordHead;
  put(p, tick);
  put(p, connected);
  std::uint32_t kept = 0;
  for (std::uint32_t i = 0; i < n && kept < 255; ++i) {
    const std::uint32_t len = items[i].len <= SKIRMISH_MAX_INPUT_BYTES ? items[i].len : SKIRMISH_MAX_INPUT_BYTES;
    if (std::uint32_t(p - rec) + kInputHead + len > kMaxRecordBytes) break;
    put(p, items[i].seat);
    put(p, std::uint8_t(len));
    put(p, items[i].seq);
    std::memcpy(p, items[i].bytes, len);
    p += len;
    ++kept;
  }
  const std::uint32_t len = std::uint32_t(p - rec);
  std::uint8_t* q = rec;
  head(q, len, Type::Tick, kept);
  return append(r, rec, len, tick);
}

bool append_hash_locked(const Ring& r, std::uint32_t tick, const std::uint8_t* state, std::uint32_t state_bytes) {
  const shm::RecordRing& h = *r.head;
  if (h.state != shm::RecordState::Recording || h.hash_every == 0 || tick % h.hash_every != 0) return true;
  std::uint8_t rec[16];
  std::uint8_t* p = rec;
  head(p, sizeof rec, Type::Hash, 0);
  put(p, tick);
  put(p, state_hash(state, state_bytes));
  return append(r, rec, sizeof rec, tick);
}

std::uint64_t copy_locked(const Ring& r, std::uint64_t max_bytes, std::vector<std::uint8_t>& out) {
  const shm::RecordRing& h = *r.head;
  const std::uint64_t w = shm::shared_load(h.write_pos);
  std::uint64_t pos = h.read_pos;
  // A torn header (a bug, or a ring written over) would spin here: a record
  // of less than a head or more than the largest ends the copy.
  while (pos + kRecordHead <= w) {
    std::uint8_t hd[2];
    ring_read(r, pos, hd, 2);
    const std::uint32_t len = get<std::uint16_t>(hd);
    if (len < kRecordHead || len > kMaxRecordBytes || pos + len > w) break;
    if (pos + len - h.read_pos > max_bytes) break;
    const std::size_t at = out.size();
    out.resize(at + len);
    ring_read(r, pos, out.data() + at, len);
    pos += len;
  }
  return pos;
}

void put_lost(std::vector<std::uint8_t>& out, std::uint32_t tick) {
  std::uint8_t rec[8];
  std::uint8_t* p = rec;
  head(p, sizeof rec, Type::Lost, 0);
  put(p, tick);
  out.insert(out.end(), rec, rec + sizeof rec);
}

void put_capped(std::vector<std::uint8_t>& out, std::uint32_t tick) {
  std::uint8_t rec[8];
  std::uint8_t* p = rec;
  head(p, sizeof rec, Type::Capped, 0);
  put(p, tick);
  out.insert(out.end(), rec, rec + sizeof rec);
}

void put_end(std::vector<std::uint8_t>& out, std::uint32_t final_tick, std::uint32_t end_reason,
             std::uint32_t detail, const shm::SeatResult* seats, std::uint32_t n) {
  std::uint8_t rec[kRecordHead + 12 + 8 * shm::kMaxMatchPlayers];
  if (n > shm::kMaxMatchPlayers) n = shm::kMaxMatchPlayers;
  std::uint8_t* p = rec + kRecordHead;
  put(p, final_tick);
  put(p, end_reason);
  put(p, detail);
  for (std::uint32_t i = 0; i < n; ++i) {
    put(p, seats[i].place);
    put(p, std::uint8_t{0});
    put(p, std::uint16_t{0});
    put(p, seats[i].score);
  }
  const std::uint32_t len = std::uint32_t(p - rec);
  std::uint8_t* q = rec;
  head(q, len, Type::End, n);
  out.insert(out.end(), rec, rec + len);
}

std::uint32_t last_tick(const std::uint8_t* recs, std::size_t len, std::uint32_t prev) {
  std::size_t pos = 0;
  while (pos + kRecordHead <= len) {
    const std::uint32_t n = get<std::uint16_t>(recs + pos);
    if (n < kRecordHead || pos + n > len) break;
    if (Type(recs[pos + 2]) == Type::Tick && n >= kTickHead) prev = get<std::uint32_t>(recs + pos + kRecordHead);
    pos += n;
  }
  return prev;
}

}  // namespace skirmish::record
