// The record file: its header, and parse() (record.h).
#include <cstring>
#include <string_view>

#include "record/record.h"

namespace skirmish::record {

namespace {

struct Writer {
  std::vector<std::uint8_t> out;
  template <class T>
  void num(T v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof v);
  }
  void str(std::string_view s) {
    const std::size_t n = s.size() < 0xFFFF ? s.size() : 0xFFFF;
    num(std::uint16_t(n));
    out.insert(out.end(), s.data(), s.data() + n);
  }
};

struct Reader {
  const std::uint8_t* p;
  std::size_t left;
  bool ok = true;
  template <class T>
  T num() {
    T v{};
    if (left < sizeof v) {
      ok = false;
      return v;
    }
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    left -= sizeof v;
    return v;
  }
  std::string str() {
    const std::uint16_t n = num<std::uint16_t>();
    if (!ok || left < n) {
      ok = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return s;
  }
};

}  // namespace

std::vector<std::uint8_t> encode_header(const FileHeader& h) {
  Writer w;
  w.out.insert(w.out.end(), kMagic, kMagic + sizeof kMagic);
  w.num(kFormatVersion);
  w.num(std::uint32_t{0});  // header bytes, filled in below
  w.num(h.state_bytes);
  w.num(h.players);
  w.num(h.seed);
  w.num(h.tick_rate_hz);
  w.num(h.hash_every);
  w.num(h.match);
  w.num(h.created_unix_ms);
  w.str(h.game_name);
  w.str(h.game_version);
  w.str(h.module);
  w.num(std::uint16_t(h.params.size()));
  for (const module::GameParam& p : h.params) {
    w.str(p.key);
    w.num(std::uint8_t(p.type));
    w.num(p.i);
    w.num(p.f);
    w.str(p.s);
  }
  const std::uint32_t n = std::uint32_t(w.out.size());
  std::memcpy(w.out.data() + 12, &n, sizeof n);
  return w.out;
}

namespace {

bool parse_header(Reader& r, FileHeader& h, std::string& error) {
  if (r.left < sizeof kMagic || std::memcmp(r.p, kMagic, sizeof kMagic) != 0) {
    error = "not a Skirmish match record (no SKRREC01 magic)";
    return false;
  }
  r.p += sizeof kMagic;
  r.left -= sizeof kMagic;
  const std::uint32_t version = r.num<std::uint32_t>();
  r.num<std::uint32_t>();  // header bytes: parse() checks them
  if (r.ok && version != kFormatVersion) {
    error = "record format version " + std::to_string(version) + " is not supported (this build reads " +
            std::to_string(kFormatVersion) + ")";
    return false;
  }
  h.state_bytes = r.num<std::uint32_t>();
  h.players = r.num<std::uint32_t>();
  h.seed = r.num<std::uint32_t>();
  h.tick_rate_hz = r.num<std::uint32_t>();
  h.hash_every = r.num<std::uint32_t>();
  h.match = r.num<std::uint32_t>();
  h.created_unix_ms = r.num<std::int64_t>();
  h.game_name = r.str();
  h.game_version = r.str();
  h.module = r.str();
  const std::uint16_t np = r.num<std::uint16_t>();
  for (std::uint32_t i = 0; i < np && r.ok; ++i) {
    module::GameParam p;
    p.key = r.str();
    // Checked before it is an enum: any other value in one is undefined.
    const std::uint8_t type = r.num<std::uint8_t>();
    if (type < SKIRMISH_PARAM_INT || type > SKIRMISH_PARAM_STRING) r.ok = false;
    p.type = r.ok ? skirmish_param_type(type) : SKIRMISH_PARAM_INT;
    p.i = r.num<std::int64_t>();
    p.f = r.num<double>();
    p.s = r.str();
    h.params.push_back(std::move(p));
  }
  if (!r.ok || h.players == 0 || h.players > SKIRMISH_MAX_SEATS || h.state_bytes == 0) {
    error = "damaged record header";
    return false;
  }
  return true;
}

}  // namespace

bool parse(const std::uint8_t* data, std::size_t len, Parsed& out, std::string& error) {
  out = Parsed{};
  Reader r{data, len};
  if (!parse_header(r, out.header, error)) return false;
  std::uint32_t header_bytes = 0;
  std::memcpy(&header_bytes, data + 12, sizeof header_bytes);
  if (std::size_t(r.p - data) != header_bytes) {
    error = "damaged record header (its length says " + std::to_string(header_bytes) + " bytes)";
    return false;
  }
  const auto fail = [&](std::size_t at, const std::string& what) {
    error = "damaged record at byte " + std::to_string(at) + ": " + what;
    return false;
  };
  std::size_t pos = header_bytes;
  while (pos < len) {
    if (len - pos < kRecordHead) {
      out.truncated = true;
      break;
    }
    std::uint16_t n = 0;
    std::memcpy(&n, data + pos, sizeof n);
    if (n < kRecordHead) return fail(pos, "length " + std::to_string(n));
    if (len - pos < n) {
      out.truncated = true;
      break;
    }
    const Type type = Type(data[pos + 2]);
    const std::uint32_t count = data[pos + 3];
    Reader b{data + pos + kRecordHead, std::size_t(n) - kRecordHead};
    const std::uint32_t tick = b.num<std::uint32_t>();
    switch (type) {
      case Type::Tick: {
        const std::uint32_t connected = b.num<std::uint32_t>();
        if (tick == 0 || tick > out.ticks.size() + 1)
          return fail(pos, "TICK " + std::to_string(tick) + " after tick " + std::to_string(out.ticks.size()));
        // The last TICK of a tick wins (a re-step after a crash or an adoption).
        if (tick <= out.ticks.size()) {
          out.inputs.resize(out.ticks[tick - 1].first);
          out.ticks.resize(tick - 1);
        }
        Tick t{tick, connected, std::uint32_t(out.inputs.size()), count, false, 0};
        for (std::uint32_t i = 0; i < count; ++i) {
          Input in{};
          in.seat = b.num<std::uint8_t>();
          in.len = b.num<std::uint8_t>();
          in.seq = b.num<std::uint32_t>();
          if (!b.ok || b.left < in.len || in.len == 0 || in.len > SKIRMISH_MAX_INPUT_BYTES ||
              in.seat >= out.header.players)
            return fail(pos, "bad input " + std::to_string(i) + " of TICK " + std::to_string(tick));
          in.offset = std::uint32_t(out.bytes.size());
          out.bytes.insert(out.bytes.end(), b.p, b.p + in.len);
          b.p += in.len;
          b.left -= in.len;
          out.inputs.push_back(in);
        }
        out.ticks.push_back(t);
        break;
      }
      case Type::Hash: {
        const std::uint64_t h = b.num<std::uint64_t>();
        if (!b.ok) return fail(pos, "short HASH");
        if (tick == 0) {
          out.has_hash0 = true;
          out.hash0 = h;
        } else if (tick <= out.ticks.size()) {
          out.ticks[tick - 1].has_hash = true;
          out.ticks[tick - 1].hash = h;
        } else {
          return fail(pos, "HASH of tick " + std::to_string(tick) + " before its TICK");
        }
        break;
      }
      case Type::Lost:
        out.lost = true;
        out.lost_tick = tick;
        break;
      case Type::Capped:
        out.capped = true;
        break;
      case Type::End: {
        out.has_end = true;
        out.end.final_tick = tick;
        out.end.reason = b.num<std::uint32_t>();
        out.end.detail = b.num<std::uint32_t>();
        out.end.seats.clear();
        for (std::uint32_t i = 0; i < count; ++i) {
          skirmish_seat_result s{};
          s.place = b.num<std::uint8_t>();
          b.num<std::uint8_t>();
          b.num<std::uint16_t>();
          s.score = b.num<std::int32_t>();
          out.end.seats.push_back(s);
        }
        break;
      }
      default:
        return fail(pos, "unknown record type " + std::to_string(unsigned(type)));
    }
    if (!b.ok) return fail(pos, "record shorter than its fields");
    pos += n;
  }
  return true;
}

}  // namespace skirmish::record
