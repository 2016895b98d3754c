// skirmish-frame-dump: the example byte dumps of protocol/PROTOCOL.md.
//
// Encodes a few example frames with the server's own proto::FrameEncoder and
// prints each as an annotated hex dump: every byte of the frame on exactly one
// line, with what it is (length header, root offset, file identifier, vtable,
// union type, field, string, padding). PROTOCOL.md pastes this output; after a
// schema or encoder change, regenerate it with
//
//   cmake --build build --target skirmish-frame-dump
//   build/protocol/tools/skirmish-frame-dump
//
// Offsets are from the first byte of the frame (the body starts at 0x0004).
// Before printing, every frame is checked: it passes proto::verify_body and
// proto::FrameDecoder, and FlatBufferBuilder::Finish plus a hand-written
// length prefix gives the very same bytes (the schema's 32-bit rule). A failed
// check prints one line on stderr and exits 1, so a stale rule cannot be
// pasted into the documentation.
//
// The walker below trusts its input (frames it built itself and verified);
// it is not a parser for bytes from the network.
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "protocol/codec.h"

namespace {

using namespace skirmish::proto;

// ---- what the walker knows about the schema ----

enum class Kind { U8, Bool, U16, U32, F32, Version, Code, UnionType, UnionValue, String, Token };

struct FieldDesc {
  const char* name;
  uint16_t vt;  // vtable offset from the generated VT_ constant
  Kind kind;
};

struct TableDesc {
  const char* name;
  std::vector<FieldDesc> fields;
};

const TableDesc kEnvelope{"Envelope",
                          {{"msg_type", Envelope::VT_MSG_TYPE, Kind::UnionType},
                           {"msg", Envelope::VT_MSG, Kind::UnionValue}}};

const TableDesc* message_desc(Message type) {
  static const TableDesc hello{"Hello",
                               {{"protocol_version", Hello::VT_PROTOCOL_VERSION, Kind::Version},
                                {"name", Hello::VT_NAME, Kind::String}}};
  static const TableDesc welcome{"Welcome",
                                 {{"protocol_version", Welcome::VT_PROTOCOL_VERSION, Kind::Version},
                                  {"token", Welcome::VT_TOKEN, Kind::Token},
                                  {"player_id", Welcome::VT_PLAYER_ID, Kind::U32},
                                  {"worker_index", Welcome::VT_WORKER_INDEX, Kind::U16},
                                  {"tick_rate_hz", Welcome::VT_TICK_RATE_HZ, Kind::U16},
                                  {"rating", Welcome::VT_RATING, Kind::F32},
                                  {"resumed", Welcome::VT_RESUMED, Kind::Bool},
                                  {"match_id", Welcome::VT_MATCH_ID, Kind::U32},
                                  {"server_time_ms", Welcome::VT_SERVER_TIME_MS, Kind::U32}}};
  static const TableDesc ping{"Ping",
                              {{"client_time_us", Ping::VT_CLIENT_TIME_US, Kind::U32},
                               {"nonce", Ping::VT_NONCE, Kind::U32}}};
  static const TableDesc pong{"Pong",
                              {{"client_time_us", Pong::VT_CLIENT_TIME_US, Kind::U32},
                               {"nonce", Pong::VT_NONCE, Kind::U32},
                               {"server_time_ms", Pong::VT_SERVER_TIME_MS, Kind::U32}}};
  static const TableDesc error{"Error",
                               {{"code", Error::VT_CODE, Kind::Code},
                                {"fatal", Error::VT_FATAL, Kind::Bool},
                                {"text", Error::VT_TEXT, Kind::String}}};
  switch (type) {
    case Message::Hello: return &hello;
    case Message::Welcome: return &welcome;
    case Message::Ping: return &ping;
    case Message::Pong: return &pong;
    case Message::Error: return &error;
    default: return nullptr;
  }
}

// ---- the annotated dump ----

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

class Dump {
 public:
  explicit Dump(std::span<const uint8_t> frame) : f_(frame) {}

  // Labels every byte reachable from the root; returns false if the walk
  // left the frame (a bug in the walker or the example).
  bool annotate() {
    uint32_t body = u32(0);
    mark(0, 4, format("length header: body is %" PRIu32 " bytes (u32 little-endian)", body));
    uint32_t root = 4 + u32(4);
    mark(4, 4, format("root: uoffset %" PRIu32 " -> Envelope table at 0x%04" PRIx32, u32(4), root));
    mark(8, 4, "file identifier \"SKRM\"");
    table(root, kEnvelope);
    return ok_;
  }

  void print() const {
    std::printf("offset  bytes                    meaning\n");
    size_t at = 0;
    for (const auto& [off, r] : regions_) {
      if (off > at) line(at, off - at, "padding (alignment)");
      line(off, r.len, r.meaning);
      at = off + r.len;
    }
    if (at < f_.size()) line(at, f_.size() - at, "padding (alignment)");
  }

 private:
  struct Region {
    size_t len;
    std::string meaning;
  };

  uint32_t u32(size_t at) const { return flatbuffers::ReadScalar<uint32_t>(f_.data() + at); }
  int32_t i32(size_t at) const { return flatbuffers::ReadScalar<int32_t>(f_.data() + at); }
  uint16_t u16(size_t at) const { return flatbuffers::ReadScalar<uint16_t>(f_.data() + at); }

  void mark(size_t off, size_t len, std::string meaning) {
    if (off + len > f_.size()) {
      ok_ = false;
      return;
    }
    regions_.emplace(off, Region{len, std::move(meaning)});  // a shared vtable is marked once
  }

  void line(size_t off, size_t len, const std::string& meaning) const {
    // Eight bytes per line; a longer region continues on unlabelled lines.
    for (size_t i = 0; i < len; i += 8) {
      std::string hex;
      for (size_t j = i; j < len && j < i + 8; ++j) hex += format("%02x ", f_[off + j]);
      if (i == 0) {
        std::printf("0x%04zx  %-24s %s\n", off + i, hex.c_str(), meaning.c_str());
      } else {
        hex.pop_back();  // no trailing blank on a continuation line
        std::printf("0x%04zx  %s\n", off + i, hex.c_str());
      }
    }
  }

  void table(size_t t, const TableDesc& d) {
    int32_t so = i32(t);
    size_t vt = size_t(int64_t(t) - so);
    mark(t, 4, format("%s table: soffset %" PRId32 " -> vtable at 0x%04zx", d.name, so, vt));
    uint16_t vsize = u16(vt);
    uint16_t tsize = u16(vt + 2);
    size_t slots = (vsize - 4u) / 2;
    std::string trimmed;
    if (slots < d.fields.size())
      trimmed = format(" (slots %zu..%zu trimmed: default)", slots, d.fields.size() - 1);
    mark(vt, 2, format("%s vtable: %u bytes, %zu slots%s", d.name, vsize, slots, trimmed.c_str()));
    mark(vt + 2, 2, format("%s vtable: table is %u bytes inline", d.name, tsize));
    for (size_t i = 0; i < slots; ++i) {
      const FieldDesc* fd = nullptr;
      for (const auto& cand : d.fields)
        if (cand.vt == 4 + 2 * i) fd = &cand;
      const char* name = fd ? fd->name : "?";
      uint16_t fo = u16(vt + 4 + 2 * i);
      if (fo == 0) {
        mark(vt + 4 + 2 * i, 2, format("%s vtable: slot %zu %s absent (default)", d.name, i, name));
        continue;
      }
      mark(vt + 4 + 2 * i, 2, format("%s vtable: slot %zu %s at table+%u", d.name, i, name, fo));
      if (fd != nullptr) field(t + fo, d, *fd);
    }
  }

  void field(size_t at, const TableDesc& d, const FieldDesc& fd) {
    std::string n = std::string(d.name) + "." + fd.name;
    const uint8_t* p = f_.data() + at;
    switch (fd.kind) {
      case Kind::U8: mark(at, 1, format("%s = %u", n.c_str(), p[0])); break;
      case Kind::Bool: mark(at, 1, format("%s = %s", n.c_str(), p[0] ? "true" : "false")); break;
      case Kind::U16: mark(at, 2, format("%s = %u", n.c_str(), u16(at))); break;
      case Kind::U32: mark(at, 4, format("%s = %" PRIu32, n.c_str(), u32(at))); break;
      case Kind::F32:
        mark(at, 4, format("%s = %g (float)", n.c_str(), double(flatbuffers::ReadScalar<float>(p))));
        break;
      case Kind::Version:
        mark(at, 2, format("%s = %u (%s)", n.c_str(), u16(at),
                           EnumNameProtocolVersion(static_cast<ProtocolVersion>(u16(at)))));
        break;
      case Kind::Code:
        mark(at, 2, format("%s = %u (%s)", n.c_str(), u16(at), EnumNameErrorCode(static_cast<ErrorCode>(u16(at)))));
        break;
      case Kind::UnionType:
        type_ = static_cast<Message>(p[0]);
        mark(at, 1, format("%s = %u (union type %s)", n.c_str(), p[0], EnumNameMessage(type_)));
        break;
      case Kind::UnionValue: {
        // The union type precedes the value in slot order, so type_ is known.
        size_t target = at + u32(at);
        const TableDesc* md = message_desc(type_);
        mark(at, 4, format("%s: uoffset %" PRIu32 " -> %s table at 0x%04zx", n.c_str(), u32(at),
                           md ? md->name : "?", target));
        if (md != nullptr) table(target, *md);
        break;
      }
      case Kind::String: {
        size_t s = at + u32(at);
        uint32_t len = u32(s);
        mark(at, 4, format("%s: uoffset %" PRIu32 " -> string at 0x%04zx", n.c_str(), u32(at), s));
        mark(s, 4, format("string length %" PRIu32, len));
        std::string text(reinterpret_cast<const char*>(f_.data() + s + 4), std::min<size_t>(len, 48));
        mark(s + 4, len, format("\"%s\"%s (UTF-8)", text.c_str(), len > 48 ? "..." : ""));
        mark(s + 4 + len, 1, "string NUL terminator");
        break;
      }
      case Kind::Token:
        for (int w = 0; w < 4; ++w)
          mark(at + 4 * size_t(w), 4,
               format("%s.w%d = 0x%08" PRIx32 "%s", n.c_str(), w, u32(at + 4 * size_t(w)),
                      w == 0 ? " (struct SessionToken, inline)" : ""));
        break;
    }
  }

  std::span<const uint8_t> f_;
  std::map<size_t, Region> regions_;
  Message type_ = Message::NONE;
  bool ok_ = true;
};

// ---- the examples ----

struct Example {
  const char* title;
  Message type;
  std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)> build;
};

const std::vector<Example>& examples() {
  static const std::vector<Example> list{
      {"C->S Hello{protocol_version: Current, name: \"ann\"}", Message::Hello,
       [](flatbuffers::FlatBufferBuilder& b) {
         return CreateHelloDirect(b, ProtocolVersion::Current, "ann").Union();
       }},
      {"S->C Welcome{protocol_version: Current, token, player_id: 1, worker_index: 0, "
       "tick_rate_hz: 30, rating: 1500, resumed: false, match_id: 0, server_time_ms: 1234}",
       Message::Welcome,
       [](flatbuffers::FlatBufferBuilder& b) {
         SessionToken tok(0x8f3a61c2, 0x04d95e17, 0xb2c07a3e, 0x5d1f9b60);
         return CreateWelcome(b, ProtocolVersion::Current, &tok, 1, 0, 30, 1500.0f, false, 0, 1234).Union();
       }},
      {"C->S Ping{client_time_us: 123456, nonce: 42}", Message::Ping,
       [](flatbuffers::FlatBufferBuilder& b) { return CreatePing(b, 123456, 42).Union(); }},
      {"S->C Pong{client_time_us: 123456, nonce: 42, server_time_ms: 1250}", Message::Pong,
       [](flatbuffers::FlatBufferBuilder& b) { return CreatePong(b, 123456, 42, 1250).Union(); }},
      {"S->C Error{code: VersionMismatch, fatal: true, text: \"protocol version mismatch: this server speaks 2\"}",
       Message::Error,
       [](flatbuffers::FlatBufferBuilder& b) {
         return CreateErrorDirect(b, ErrorCode::VersionMismatch, true, "protocol version mismatch: this server speaks 2")
             .Union();
       }},
  };
  return list;
}

// The checks a frame must pass before it is printed; "" when all pass.
std::string check(const Example& ex, std::span<const uint8_t> frame) {
  if (frame.size() < kFrameHeaderBytes || load_le32(frame.data()) != frame.size() - kFrameHeaderBytes)
    return "length header does not match the body";
  const Envelope* env = nullptr;
  DecodeError e = verify_body(frame.data() + kFrameHeaderBytes, frame.size() - kFrameHeaderBytes, DecodeLimits{}, &env);
  if (e != DecodeError::None) return std::string("verify_body: ") + to_string(e);
  if (env->msg_type() != ex.type) return "decoded union type differs";

  FrameDecoder dec;
  int frames = 0;
  e = dec.feed(frame.data(), frame.size(), [&](const Frame& f) {
    frames += f.type == ex.type;
    return true;
  });
  if (e != DecodeError::None || frames != 1) return "FrameDecoder did not deliver exactly this frame";

  // The schema's rule: no scalar wider than 32 bits, so Finish plus our own
  // length prefix is byte for byte what FinishSizePrefixed produced.
  flatbuffers::FlatBufferBuilder plain;
  plain.Finish(CreateEnvelope(plain, ex.type, ex.build(plain)), kFileIdentifier);
  std::span<const uint8_t> body = frame.subspan(kFrameHeaderBytes);
  if (plain.GetSize() != body.size() || std::memcmp(plain.GetBufferPointer(), body.data(), body.size()) != 0)
    return "Finish + own length prefix differs from FinishSizePrefixed";
  return "";
}

}  // namespace

int main() {
  FrameEncoder enc;
  bool first = true;
  for (const Example& ex : examples()) {
    auto& b = enc.builder();
    auto msg = ex.build(b);
    std::span<const uint8_t> span = enc.finish_union(ex.type, msg);
    std::vector<uint8_t> frame(span.begin(), span.end());

    if (std::string err = check(ex, frame); !err.empty()) {
      std::fprintf(stderr, "skirmish-frame-dump: %s: %s\n", EnumNameMessage(ex.type), err.c_str());
      return 1;
    }
    Dump dump(frame);
    if (!dump.annotate()) {
      std::fprintf(stderr, "skirmish-frame-dump: %s: walk left the frame\n", EnumNameMessage(ex.type));
      return 1;
    }
    if (!first) std::printf("\n");
    first = false;
    std::printf("%s\n", ex.title);
    std::printf("%zu-byte frame: 4-byte header + %zu-byte body\n", frame.size(), frame.size() - 4);
    dump.print();
  }
  return 0;
}
