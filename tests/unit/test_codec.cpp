// The frame codec against every way a byte stream can arrive or be wrong.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "protocol/codec.h"

using namespace skirmish::proto;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes copy(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

Bytes ping_frame(FrameEncoder& enc, uint32_t nonce) {
  auto& b = enc.builder();
  return copy(enc.finish(CreatePing(b, 12345u, nonce)));
}

Bytes le32(uint32_t n) {
  return {uint8_t(n), uint8_t(n >> 8), uint8_t(n >> 16), uint8_t(n >> 24)};
}

// Feeds `stream` in the given chunk sizes (cycled) through a 4-aligned copy
// of each chunk, collecting the Ping nonces.
struct Collect {
  std::vector<uint32_t> nonces;
  std::vector<Message> types;
  DecodeError err = DecodeError::None;
};

Collect feed_chunks(FrameDecoder& d, const Bytes& stream, const std::vector<size_t>& sizes) {
  Collect c;
  size_t off = 0, i = 0;
  while (off < stream.size() && c.err == DecodeError::None) {
    size_t n = std::min(sizes[i++ % sizes.size()], stream.size() - off);
    std::vector<uint32_t> chunk((n + 3) / 4 + 1);
    std::memcpy(chunk.data(), stream.data() + off, n);
    c.err = d.feed(reinterpret_cast<const uint8_t*>(chunk.data()), n, [&](const Frame& f) {
      c.types.push_back(f.type);
      if (f.type == Message::Ping) c.nonces.push_back(f.envelope->msg_as_Ping()->nonce());
      return true;
    });
    off += n;
  }
  return c;
}

Collect feed_all(FrameDecoder& d, const Bytes& stream) {
  return feed_chunks(d, stream, {stream.size() ? stream.size() : 1});
}

Bytes frame_of(const Bytes& body) {
  // Sized once and filled by memcpy: g++ 12 at -O2 warns (array-bounds, a
  // false positive) on insert() after a 4-byte vector.
  Bytes f(4 + body.size());
  const Bytes h = le32(uint32_t(body.size()));
  std::memcpy(f.data(), h.data(), 4);
  if (!body.empty()) std::memcpy(f.data() + 4, body.data(), body.size());
  return f;
}

}  // namespace

TEST_CASE("a frame split at every byte boundary decodes the same") {
  FrameEncoder enc;
  Bytes stream;
  for (uint32_t i = 1; i <= 3; ++i) {
    Bytes f = ping_frame(enc, i);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    FrameDecoder d;
    Collect c = feed_chunks(d, stream, {cut, stream.size()});
    INFO("cut at " << cut);
    REQUIRE(c.err == DecodeError::None);
    REQUIRE(c.nonces == std::vector<uint32_t>{1, 2, 3});
    REQUIRE(d.buffered() == 0);
  }
  FrameDecoder one_byte;
  Collect c = feed_chunks(one_byte, stream, {1});
  REQUIRE(c.nonces == std::vector<uint32_t>{1, 2, 3});
}

TEST_CASE("many frames in one read are all delivered in place") {
  FrameEncoder enc;
  Bytes stream;
  for (uint32_t i = 0; i < 200; ++i) {
    Bytes f = ping_frame(enc, i);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  std::vector<uint32_t> aligned((stream.size() + 3) / 4);
  std::memcpy(aligned.data(), stream.data(), stream.size());
  auto* p = reinterpret_cast<const uint8_t*>(aligned.data());
  FrameDecoder d;
  size_t n = 0, in_place = 0;
  REQUIRE(d.feed(p, stream.size(), [&](const Frame& f) {
    REQUIRE(f.envelope->msg_as_Ping()->nonce() == n);
    if (f.body.data() >= p && f.body.data() < p + stream.size()) ++in_place;
    ++n;
    return true;
  }) == DecodeError::None);
  REQUIRE(n == 200);
  REQUIRE(in_place == 200);
  REQUIRE(d.copied_frames() == 0);
}

TEST_CASE("a misaligned body is copied and never read unaligned") {
  FrameEncoder enc;
  Bytes f = ping_frame(enc, 7);
  std::vector<uint32_t> buf(f.size() / 4 + 2);
  auto* p = reinterpret_cast<uint8_t*>(buf.data()) + 1;  // odd address
  std::memcpy(p, f.data(), f.size());
  FrameDecoder d;
  uint32_t nonce = 0;
  REQUIRE(d.feed(p, f.size(), [&](const Frame& fr) {
    nonce = fr.envelope->msg_as_Ping()->nonce();
    return true;
  }) == DecodeError::None);
  REQUIRE(nonce == 7);
  REQUIRE(d.copied_frames() == 1);
}

TEST_CASE("a callback returning false stops the decoder") {
  FrameEncoder enc;
  Bytes stream = ping_frame(enc, 1);
  Bytes second = ping_frame(enc, 2);
  stream.insert(stream.end(), second.begin(), second.end());
  FrameDecoder d;
  int seen = 0;
  REQUIRE(d.feed(stream.data(), stream.size(), [&](const Frame&) {
    ++seen;
    return false;
  }) == DecodeError::None);
  REQUIRE(seen == 1);
}

TEST_CASE("a zero-length frame is an error") {
  FrameDecoder d;
  REQUIRE(feed_all(d, le32(0)).err == DecodeError::ZeroLength);
  REQUIRE(to_error_code(DecodeError::ZeroLength) == ErrorCode::BadFrame);
}

TEST_CASE("the frame limit: max is accepted and max+1 is refused before buffering") {
  FrameEncoder enc;
  Bytes f = ping_frame(enc, 9);
  const uint32_t body = uint32_t(f.size() - kFrameHeaderBytes);
  {
    FrameDecoder d(DecodeLimits{.max_frame_bytes = body});
    Collect c = feed_all(d, f);
    REQUIRE(c.err == DecodeError::None);
    REQUIRE(c.nonces.size() == 1);
  }
  {
    FrameDecoder d(DecodeLimits{.max_frame_bytes = body - 1});
    // Only the header: the refusal must not wait for the body.
    Bytes hdr(f.begin(), f.begin() + 4);
    REQUIRE(feed_all(d, hdr).err == DecodeError::TooLarge);
    REQUIRE(d.error() == DecodeError::TooLarge);
    // A dead decoder stays dead.
    REQUIRE(feed_all(d, f).err == DecodeError::TooLarge);
  }
}

TEST_CASE("a 4 GiB length header is refused with nothing buffered") {
  FrameDecoder d;
  Bytes hdr = le32(0xFFFFFFFFu);
  // Arriving byte by byte, the partial header is the only thing held.
  Collect c = feed_chunks(d, hdr, {1});
  REQUIRE(c.err == DecodeError::TooLarge);
  REQUIRE(d.buffered() == 0);
  FrameDecoder d2;
  Bytes with_junk = hdr;
  with_junk.resize(4096, 0xAB);
  REQUIRE(feed_all(d2, with_junk).err == DecodeError::TooLarge);
  REQUIRE(d2.buffered() == 0);
}

TEST_CASE("random bytes never crash the decoder and nothing bogus is delivered") {
  std::mt19937 rng(42);
  for (int round = 0; round < 2000; ++round) {
    Bytes junk(1 + rng() % 600);
    for (auto& b : junk) b = uint8_t(rng());
    // Half the rounds: a plausible length so the verifier sees the junk.
    if (round % 2 == 0 && junk.size() > 4) {
      Bytes h = le32(uint32_t(junk.size() - 4));
      std::copy(h.begin(), h.end(), junk.begin());
    }
    FrameDecoder d;
    Collect c = feed_chunks(d, junk, {1 + rng() % 64});
    for (auto t : c.types) REQUIRE(t != Message::NONE);
    REQUIRE(d.buffered() <= kFrameHeaderBytes + d.limits().max_frame_bytes);
  }
}

TEST_CASE("a valid flatbuffer with the wrong identifier is refused") {
  flatbuffers::FlatBufferBuilder b;
  auto ping = CreatePing(b, 1, 2);
  b.Finish(CreateEnvelope(b, Message::Ping, ping.Union()), "XXXX");
  FrameDecoder d;
  REQUIRE(feed_all(d, frame_of(Bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize())))
              .err == DecodeError::WrongIdentifier);
  // Too short to hold an identifier at all.
  FrameDecoder d2;
  REQUIRE(feed_all(d2, frame_of(Bytes{1, 2, 3, 4})).err == DecodeError::WrongIdentifier);
}

TEST_CASE("an unknown union type is refused") {
  flatbuffers::FlatBufferBuilder b;
  auto ping = CreatePing(b, 1, 2);
  b.Finish(CreateEnvelope(b, static_cast<Message>(200), ping.Union()), kFileIdentifier);
  Bytes body(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  FrameDecoder d;
  REQUIRE(feed_all(d, frame_of(body)).err == DecodeError::UnknownType);

  flatbuffers::FlatBufferBuilder e;
  e.Finish(CreateEnvelope(e), kFileIdentifier);  // type NONE
  FrameDecoder d2;
  REQUIRE(feed_all(d2, frame_of(Bytes(e.GetBufferPointer(), e.GetBufferPointer() + e.GetSize())))
              .err == DecodeError::UnknownType);
}

TEST_CASE("a table bomb within the frame limit is refused by the verifier limits") {
  // 900 vector entries all naming one PlayerInfo table: 3.6 KB on the wire
  // but 900 table visits, past max_tables.
  flatbuffers::FlatBufferBuilder b;
  auto name = b.CreateString("x");
  auto pi = CreatePlayerInfo(b, 1, 0, 0, 1500.f, name);
  std::vector<flatbuffers::Offset<PlayerInfo>> many(900, pi);
  auto players = b.CreateVector(many);
  auto mf = CreateMatchFound(b, 1, 0, players);
  b.Finish(CreateEnvelope(b, Message::MatchFound, mf.Union()), kFileIdentifier);
  Bytes body(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  REQUIRE(body.size() < 4096);
  FrameDecoder d;
  REQUIRE(feed_all(d, frame_of(body)).err == DecodeError::Unverifiable);
  // The same body passes when the limit allows it: the limit is what bit.
  FrameDecoder lax(DecodeLimits{.max_frame_bytes = 4096, .max_depth = 16, .max_tables = 2000});
  REQUIRE(feed_all(lax, frame_of(body)).err == DecodeError::None);
}

TEST_CASE("nesting past max_depth is refused") {
  // The schema has no recursive type, so depth is bounded by the schema
  // itself (Envelope > MatchFound > players > PlayerInfo > name); a tighter
  // limit must still bite.
  FrameEncoder enc;
  auto& b = enc.builder();
  auto name = b.CreateString("deep");
  std::vector<flatbuffers::Offset<PlayerInfo>> one{CreatePlayerInfo(b, 1, 0, 0, 1.f, name)};
  auto mf = CreateMatchFound(b, 1, 0, b.CreateVector(one));
  Bytes f = copy(enc.finish(mf));
  FrameDecoder shallow(DecodeLimits{.max_frame_bytes = 4096, .max_depth = 2, .max_tables = 64});
  REQUIRE(feed_all(shallow, f).err == DecodeError::Unverifiable);
  FrameDecoder normal;
  REQUIRE(feed_all(normal, f).err == DecodeError::None);
}

TEST_CASE("a body with a bad offset is unverifiable") {
  FrameEncoder enc;
  Bytes f = ping_frame(enc, 1);
  // Point the root offset far outside the body.
  f[4] = 0xF0;
  f[5] = 0xFF;
  FrameDecoder d;
  REQUIRE(feed_all(d, f).err == DecodeError::Unverifiable);
}

namespace {

// Encodes one message, decodes it through a fresh decoder and hands the
// envelope to `check`.
template <class Build, class Check>
void round_trip(Message type, Build&& build, Check&& check) {
  FrameEncoder enc;
  auto& b = enc.builder();
  Bytes f = copy(enc.finish_union(type, build(b)));
  REQUIRE(load_le32(f.data()) == f.size() - 4);
  FrameDecoder d;
  int n = 0;
  REQUIRE(d.feed(f.data(), f.size(), [&](const Frame& fr) {
    REQUIRE(fr.type == type);
    check(*fr.envelope);
    ++n;
    return true;
  }) == DecodeError::None);
  REQUIRE(n == 1);
}

}  // namespace

TEST_CASE("every message type round-trips") {
  using flatbuffers::FlatBufferBuilder;
  SessionToken tok(1, 2, 3, 0xFFFFFFFFu);
  round_trip(Message::Hello,
             [](FlatBufferBuilder& b) { return CreateHelloDirect(b, ProtocolVersion::Current, "ann").Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_Hello()->protocol_version() == ProtocolVersion::Current);
               REQUIRE(e.msg_as_Hello()->name()->str() == "ann");
             });
  round_trip(Message::Welcome,
             [&](FlatBufferBuilder& b) {
               return CreateWelcome(b, ProtocolVersion::Current, &tok, 42, 3, 30, 1500.f, true, 77, 999).Union();
             },
             [](const Envelope& e) {
               auto w = e.msg_as_Welcome();
               REQUIRE(w->token()->w3() == 0xFFFFFFFFu);
               REQUIRE(w->player_id() == 42);
               REQUIRE(w->worker_index() == 3);
               REQUIRE(w->tick_rate_hz() == 30);
               REQUIRE(w->resumed());
               REQUIRE(w->match_id() == 77);
               REQUIRE(w->server_time_ms() == 999);
             });
  round_trip(Message::Ping, [](FlatBufferBuilder& b) { return CreatePing(b, 5, 6).Union(); },
             [](const Envelope& e) { REQUIRE(e.msg_as_Ping()->client_time_us() == 5); });
  round_trip(Message::Pong, [](FlatBufferBuilder& b) { return CreatePong(b, 5, 6, 7).Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_Pong()->nonce() == 6);
               REQUIRE(e.msg_as_Pong()->server_time_ms() == 7);
             });
  round_trip(Message::QueueJoin, [](FlatBufferBuilder& b) { return CreateQueueJoin(b, 0, 99, 2).Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_QueueJoin()->party_key() == 99);
               REQUIRE(e.msg_as_QueueJoin()->party_size() == 2);
             });
  round_trip(Message::QueueLeave, [](FlatBufferBuilder& b) { return CreateQueueLeave(b).Union(); },
             [](const Envelope& e) { REQUIRE(e.msg_as_QueueLeave() != nullptr); });
  round_trip(Message::QueueStatus,
             [](FlatBufferBuilder& b) { return CreateQueueStatus(b, QueueState::Searching, 1200, 150, 8).Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_QueueStatus()->state() == QueueState::Searching);
               REQUIRE(e.msg_as_QueueStatus()->window() == 150);
             });
  round_trip(Message::MatchFound,
             [](FlatBufferBuilder& b) {
               std::vector<flatbuffers::Offset<PlayerInfo>> ps;
               for (uint8_t i = 0; i < 4; ++i) ps.push_back(CreatePlayerInfoDirect(b, 10 + i, i, 0, 1500.f, "p"));
               std::vector<flatbuffers::Offset<GameParam>> params{
                   CreateGameParamDirect(b, "width", ParamType::Int, "100000"),
                   CreateGameParamDirect(b, "speed", ParamType::Float, "2.5"),
                   CreateGameParamDirect(b, "fog", ParamType::Bool, "false")};
               return CreateMatchFoundDirect(b, 0x10002, 1, &ps, 30, "arena", "2.0.0", &params, 3).Union();
             },
             [](const Envelope& e) {
               auto m = e.msg_as_MatchFound();
               REQUIRE(m->match_id() == 0x10002);
               REQUIRE(m->your_slot() == 1);
               REQUIRE(m->players()->size() == 4);
               REQUIRE(m->players()->Get(3)->player_id() == 13);
               REQUIRE(m->players()->Get(3)->slot() == 3);
               REQUIRE(m->tick_rate_hz() == 30);
               REQUIRE(m->game()->str() == "arena");
               REQUIRE(m->game_version()->str() == "2.0.0");
               REQUIRE(m->max_input_bytes() == 3);
               REQUIRE(m->params()->size() == 3);
               REQUIRE(m->params()->Get(0)->key()->str() == "width");
               REQUIRE(m->params()->Get(0)->type() == ParamType::Int);
               REQUIRE(m->params()->Get(0)->value()->str() == "100000");
               REQUIRE(m->params()->Get(1)->type() == ParamType::Float);
               REQUIRE(m->params()->Get(2)->value()->str() == "false");
             });
  round_trip(Message::Input,
             [](FlatBufferBuilder& b) {
               // The arena's 3 bytes (move_x -100, move_y 100, tag) as the server sees them: opaque.
               std::vector<uint8_t> data{0x9c, 0x64, 0x01};
               return CreateInputDirect(b, 9, 10, 8, &data).Union();
             },
             [](const Envelope& e) {
               auto in = e.msg_as_Input();
               REQUIRE(in->seq() == 9);
               REQUIRE(in->client_tick() == 10);
               REQUIRE(in->ack_tick() == 8);
               REQUIRE(in->data() != nullptr);
               REQUIRE(Bytes(in->data()->begin(), in->data()->end()) == Bytes{0x9c, 0x64, 0x01});
             });
  // An Input without data verifies (the field is optional in flatbuffers):
  // refusing it is the server's job (BadInput), not the codec's.
  round_trip(Message::Input, [](FlatBufferBuilder& b) { return CreateInput(b, 1, 1, 0).Union(); },
             [](const Envelope& e) { REQUIRE(e.msg_as_Input()->data() == nullptr); });
  round_trip(Message::Snapshot,
             [](FlatBufferBuilder& b) {
               std::vector<uint8_t> view(300);
               for (size_t i = 0; i < view.size(); ++i) view[i] = uint8_t(i * 7);
               return CreateSnapshotDirect(b, 5, 100, 0, 9, &view).Union();
             },
             [](const Envelope& e) {
               auto s = e.msg_as_Snapshot();
               REQUIRE(s->match_id() == 5);
               REQUIRE(s->tick() == 100);
               REQUIRE(s->base_tick() == 0);  // a full view
               REQUIRE(s->last_input_seq() == 9);
               REQUIRE(s->view()->size() == 300);
               REQUIRE(s->view()->Get(299) == uint8_t(299 * 7));
             });
  round_trip(Message::Snapshot,
             [](FlatBufferBuilder& b) {
               std::vector<uint8_t> delta{0x20, 0x04, 0x02, 0xaa, 0xbb};
               return CreateSnapshotDirect(b, 5, 101, 98, 9, &delta).Union();
             },
             [](const Envelope& e) {
               auto s = e.msg_as_Snapshot();
               REQUIRE(s->base_tick() == 98);  // a delta against tick 98
               REQUIRE(Bytes(s->view()->begin(), s->view()->end()) == Bytes{0x20, 0x04, 0x02, 0xaa, 0xbb});
             });
  round_trip(Message::MatchEnd,
             [](FlatBufferBuilder& b) {
               std::vector<flatbuffers::Offset<PlayerResult>> rs{CreatePlayerResult(b, 1, 0, 1, 20, 1500.f, 1516.f)};
               return CreateMatchEndDirect(b, 5, EndReason::Completed, 900, &rs, 7).Union();
             },
             [](const Envelope& e) {
               auto m = e.msg_as_MatchEnd();
               REQUIRE(m->reason() == EndReason::Completed);
               REQUIRE(m->final_tick() == 900);
               REQUIRE(m->detail() == 7);
               REQUIRE(m->results()->Get(0)->place() == 1);
               REQUIRE(m->results()->Get(0)->rating_after() == 1516.f);
             });
  round_trip(Message::MatchEnd,
             [](FlatBufferBuilder& b) { return CreateMatchEndDirect(b, 6, EndReason::GameError, 12).Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_MatchEnd()->reason() == EndReason::GameError);
               REQUIRE(e.msg_as_MatchEnd()->detail() == 0);
             });
  round_trip(Message::Resume,
             [&](FlatBufferBuilder& b) { return CreateResume(b, ProtocolVersion::Current, &tok, 55).Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_Resume()->token()->w0() == 1);
               REQUIRE(e.msg_as_Resume()->last_tick() == 55);
             });
  round_trip(Message::Error,
             [](FlatBufferBuilder& b) { return CreateErrorDirect(b, ErrorCode::RateLimited, true, "slow down").Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_Error()->code() == ErrorCode::RateLimited);
               REQUIRE(e.msg_as_Error()->fatal());
               REQUIRE(e.msg_as_Error()->text()->str() == "slow down");
             });
  round_trip(Message::ServerShutdown,
             [](FlatBufferBuilder& b) { return CreateServerShutdownDirect(b, 30000, 100, "bye").Union(); },
             [](const Envelope& e) { REQUIRE(e.msg_as_ServerShutdown()->drain_ms() == 30000); });
}

TEST_CASE("protocol version 2, a v1 Hello still decodes, so the server can answer VersionMismatch") {
  REQUIRE(kProtocolVersion == 2);
  REQUIRE(ProtocolVersion::Current != ProtocolVersion::V1);
  REQUIRE(uint16_t(ProtocolVersion::V1) == 1);
  // A v1 client's Hello is a valid frame: the codec delivers it and the
  // session refuses it by its version (PROTOCOL.md, "Versions").
  round_trip(Message::Hello,
             [](flatbuffers::FlatBufferBuilder& b) { return CreateHelloDirect(b, ProtocolVersion::V1, "old").Union(); },
             [](const Envelope& e) {
               REQUIRE(e.msg_as_Hello()->protocol_version() == ProtocolVersion::V1);
               REQUIRE(e.msg_as_Hello()->protocol_version() != ProtocolVersion::Current);
             });
  // The answer it gets: a fatal Error with code VersionMismatch.
  FrameEncoder enc;
  Bytes f = copy(encode_error(enc, ErrorCode::VersionMismatch, true, "protocol version mismatch: this server speaks 2"));
  FrameDecoder d;
  int seen = 0;
  REQUIRE(d.feed(f.data(), f.size(), [&](const Frame& fr) {
    REQUIRE(fr.type == Message::Error);
    REQUIRE(fr.envelope->msg_as_Error()->code() == ErrorCode::VersionMismatch);
    REQUIRE(fr.envelope->msg_as_Error()->fatal());
    ++seen;
    return true;
  }) == DecodeError::None);
  REQUIRE(seen == 1);
}

TEST_CASE("a frame built with Finish plus our own length is the same frame") {
  // Senders in other languages may prefix the length themselves.
  flatbuffers::FlatBufferBuilder b;
  auto ping = CreatePing(b, 0, 77);
  b.Finish(CreateEnvelope(b, Message::Ping, ping.Union()), kFileIdentifier);
  FrameDecoder d;
  Collect c = feed_all(d, frame_of(Bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize())));
  REQUIRE(c.err == DecodeError::None);
  REQUIRE(c.nonces == std::vector<uint32_t>{77});
}

TEST_CASE("the encoder reuses its buffer once warm") {
  FrameEncoder enc;
  const uint8_t* first = nullptr;
  for (int i = 0; i < 100; ++i) {
    auto f = enc.finish(CreatePing(enc.builder(), 1, uint32_t(i)));
    if (i == 1) first = f.data();
    if (i > 1) REQUIRE(f.data() == first);
  }
}

TEST_CASE("encode_error builds a fatal Error") {
  FrameEncoder enc;
  Bytes f = copy(encode_error(enc, ErrorCode::SlowConsumer, true, "write queue full"));
  FrameDecoder d;
  bool seen = false;
  d.feed(f.data(), f.size(), [&](const Frame& fr) {
    REQUIRE(fr.envelope->msg_as_Error()->code() == ErrorCode::SlowConsumer);
    seen = true;
    return true;
  });
  REQUIRE(seen);
}
