// make_seed_corpus: writes the fuzzers' seed corpora and dictionaries from
// valid messages and the real config files, so nothing binary is committed.
//
//   make_seed_corpus OUT_DIR CONFIGS_DIR
//
// OUT_DIR/frame_decoder/  a valid frame of every message type, client and
//                         server streams of many frames, the same fed in
//                         1- and 3-byte chunks, and near-valid frames (wrong
//                         identifier, zero length, too large, cut short)
// OUT_DIR/dispatch/       whole sessions in fuzz/dispatch_input.h's format:
//                         handshake, queueing, a full match with inputs and
//                         acks, resume (idle and in a match), parties,
//                         protocol errors, every server-only message, slow
//                         consumer, rate limit, timeouts, drain, full tables
// OUT_DIR/view_delta/     fuzz_view_delta inputs: PROTOCOL.md's worked
//                         example, arena-sized views with a few changes,
//                         near-valid deltas (every DeltaError)
// OUT_DIR/game/           fuzz_game inputs that fit any module: bots of
//                         every seat playing for a while, raw inputs of
//                         every length, disconnected seats
// OUT_DIR/record/         fuzz_record inputs: a real arena record (its bots
//                         playing a 5-second match to its TimeLimit), cut
//                         short at several points, a state hash and an
//                         input byte changed
// OUT_DIR/config/         configs/*.toml as they are, and near-valid ones:
//                         every key out of range and of the wrong type,
//                         unknown and misspelt keys and tables, bad TOML,
//                         command-line flags
// OUT_DIR/<name>.dict     libFuzzer dictionaries (config: every table, key,
//                         flag and log level the loader knows)
//
// Files are named seed-<what>; rerunning overwrites them and leaves the
// inputs libFuzzer added to the directories alone.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec.h"
#include "protocol/view_delta.h"
#include "config/config.h"
#include "fuzz/dispatch_input.h"
#include "module/module.h"
#include "record/record.h"

namespace {

namespace fs = std::filesystem;
using namespace skirmish::proto;
using skirmish::fuzz::Op;
using skirmish::fuzz::Writer;
using Bytes = std::vector<uint8_t>;

fs::path g_out;

void write_file(const fs::path& path, std::span<const uint8_t> data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
  if (!f) {
    std::cerr << "make_seed_corpus: cannot write " << path << "\n";
    std::exit(1);
  }
}

void seed(const char* fuzzer, const std::string& name, std::span<const uint8_t> data) {
  write_file(g_out / fuzzer / ("seed-" + name), data);
}

Bytes text_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// ---------------------------------------------------------------- frames

FrameEncoder g_enc(4096);

// Every message type as one complete frame (length header included).
std::vector<std::pair<std::string, Bytes>> all_frames() {
  std::vector<std::pair<std::string, Bytes>> out;
  auto add = [&](const char* name, std::span<const uint8_t> frame) {
    out.emplace_back(name, Bytes(frame.begin(), frame.end()));
  };
  SessionToken tok(0x00010001, 0xdeadbeef, 0x01234567, 0x89abcdef);
  {
    auto& b = g_enc.builder();
    add("hello", g_enc.finish(CreateHello(b, ProtocolVersion::Current, b.CreateString("alice"))));
  }
  {
    auto& b = g_enc.builder();
    add("welcome", g_enc.finish(CreateWelcome(b, ProtocolVersion::Current, &tok, 7, 1, 30, 1500.f, false, 0, 1234,
                                              0, b.CreateString("0.1.0"))));
  }
  {
    auto& b = g_enc.builder();
    add("ping", g_enc.finish(CreatePing(b, 123456, 42)));
  }
  {
    auto& b = g_enc.builder();
    add("pong", g_enc.finish(CreatePong(b, 123456, 42, 999)));
  }
  {
    auto& b = g_enc.builder();
    add("queue_join", g_enc.finish(CreateQueueJoin(b, 0, 0, 1)));
  }
  {
    auto& b = g_enc.builder();
    add("queue_join_party", g_enc.finish(CreateQueueJoin(b, 0, 77, 2)));
  }
  {
    auto& b = g_enc.builder();
    add("queue_leave", g_enc.finish(CreateQueueLeave(b)));
  }
  {
    auto& b = g_enc.builder();
    add("queue_status", g_enc.finish(CreateQueueStatus(b, QueueState::Searching, 1500, 175, 3)));
  }
  {
    auto& b = g_enc.builder();
    std::vector<flatbuffers::Offset<PlayerInfo>> players;
    for (uint8_t i = 0; i < 4; ++i)
      players.push_back(CreatePlayerInfo(b, 10u + i, i, i, 1500.f + i, b.CreateString("p" + std::to_string(i))));
    std::vector<flatbuffers::Offset<GameParam>> params{
        CreateGameParam(b, b.CreateString("width"), ParamType::Int, b.CreateString("100000")),
        CreateGameParam(b, b.CreateString("max_speed"), ParamType::Int, b.CreateString("20"))};
    add("match_found", g_enc.finish(CreateMatchFound(b, 0x00020003, 1, b.CreateVector(players), 30,
                                                     b.CreateString("arena"), b.CreateString("1.0.0"),
                                                     b.CreateVector(params), 3)));
  }
  {
    auto& b = g_enc.builder();
    const uint8_t data[] = {100, uint8_t(-100), 1};  // an arena input: move_x, move_y, buttons
    add("input", g_enc.finish(CreateInput(b, 5, 17, 16, b.CreateVector(data, 3))));
  }
  {
    auto& b = g_enc.builder();
    Bytes view(12 + 6 * 20);  // an arena-shaped view: header + 6 entities
    for (size_t i = 0; i < view.size(); ++i) view[i] = uint8_t(i * 13);
    add("snapshot_full", g_enc.finish(CreateSnapshot(b, 0x00020003, 40, 0, 5, b.CreateVector(view))));
  }
  {
    auto& b = g_enc.builder();
    const uint8_t delta[] = {0x84, 0x01, 0x04, 0x02, 0x28, 0x00, 0x10, 0x01, 0x07};
    add("snapshot_delta", g_enc.finish(CreateSnapshot(b, 0x00020003, 41, 40, 6, b.CreateVector(delta, sizeof delta))));
  }
  {
    auto& b = g_enc.builder();
    std::vector<flatbuffers::Offset<PlayerResult>> res;
    for (uint8_t i = 0; i < 4; ++i) res.push_back(CreatePlayerResult(b, 10u + i, i, uint8_t(i + 1), 20 - i, 1500.f, 1510.f - i));
    add("match_end", g_enc.finish(CreateMatchEnd(b, 0x00020003, EndReason::ScoreLimit, 600, b.CreateVector(res), 0)));
  }
  {
    auto& b = g_enc.builder();
    add("resume", g_enc.finish(CreateResume(b, ProtocolVersion::Current, &tok, 40)));
  }
  {
    auto& b = g_enc.builder();
    add("error", g_enc.finish(CreateError(b, ErrorCode::RateLimited, true, b.CreateString("too many messages"))));
  }
  {
    auto& b = g_enc.builder();
    add("server_shutdown", g_enc.finish(CreateServerShutdown(b, 30000, 0, b.CreateString("server shutting down"))));
  }
  return out;
}

// fuzz_frame_decoder's trailer (see its header): chunk sizes read from the
// end, then p2, then p1 last.
Bytes decoder_input(const Bytes& stream, uint8_t p1, uint8_t p2, const Bytes& chunks_from_first = {0}) {
  Bytes out = stream;
  out.insert(out.end(), chunks_from_first.rbegin(), chunks_from_first.rend());
  out.push_back(p2);
  out.push_back(p1);
  return out;
}

void frame_decoder_seeds(const std::vector<std::pair<std::string, Bytes>>& frames) {
  // p1 = 3 | 8: handshake cap 4096, full cap 65536 (server messages are
  // larger than the real 256-byte handshake cap); p1 = 0: the server's caps.
  for (const auto& [name, f] : frames) {
    seed("frame_decoder", name, decoder_input(f, 3 | 8, 0));
    if (f.size() <= 256 + kFrameHeaderBytes) seed("frame_decoder", name + "-server-caps", decoder_input(f, 0, 0));
  }
  auto get = [&](const char* n) {
    for (const auto& [name, f] : frames)
      if (name == n) return f;
    return Bytes{};
  };
  auto cat = [&](std::initializer_list<const char*> names) {
    Bytes s;
    for (const char* n : names) {
      Bytes f = get(n);
      s.insert(s.end(), f.begin(), f.end());
    }
    return s;
  };
  const Bytes client = cat({"hello", "ping", "queue_join", "queue_status", "input", "input", "queue_leave", "ping"});
  const Bytes server = cat({"welcome", "pong", "queue_status", "match_found", "snapshot_full", "snapshot_delta",
                            "snapshot_delta", "match_end", "error", "server_shutdown"});
  seed("frame_decoder", "stream-client", decoder_input(client, 0, 0));
  seed("frame_decoder", "stream-server", decoder_input(server, 3 | 8, 0));
  seed("frame_decoder", "stream-client-misaligned", decoder_input(client, 0 | (1 << 4), 0));
  seed("frame_decoder", "stream-client-bytewise", decoder_input(client, 0, 0, Bytes(client.size(), 1)));
  Bytes threes((client.size() + 2) / 3, 3);
  seed("frame_decoder", "stream-client-3s", decoder_input(client, 0 | (2 << 4), 0, threes));
  seed("frame_decoder", "stream-server-64s", decoder_input(server, 3 | 8, 0, Bytes(server.size() / 64 + 1, 128)));
  seed("frame_decoder", "stream-client-stop", decoder_input(client, 64, 3 << 2));
  // Near-valid.
  Bytes hello = get("hello");
  Bytes wrong_id = hello;
  wrong_id[kFrameHeaderBytes + 4] = 'X';
  seed("frame_decoder", "bad-identifier", decoder_input(wrong_id, 0, 0));
  seed("frame_decoder", "bad-zero-length", decoder_input(Bytes{0, 0, 0, 0}, 0, 0));
  seed("frame_decoder", "bad-too-large", decoder_input(Bytes{0x01, 0x01, 0, 0, 1, 2, 3}, 0, 0));
  Bytes cut(hello.begin(), hello.end() - 3);
  seed("frame_decoder", "cut-short", decoder_input(cut, 0, 0));
  Bytes bad_offset = hello;
  bad_offset[kFrameHeaderBytes] = 0xF0;  // root offset out of the body
  seed("frame_decoder", "bad-root-offset", decoder_input(bad_offset, 0, 0));
}

// ---------------------------------------------------------------- dispatch

// A session script in fuzz/dispatch_input.h's format. Sessions are named by
// the order they were opened (0, 1, ...).
struct Script : Writer {
  explicit Script(uint8_t config = 0, uint8_t config2 = 0) { u8(config).u8(config2); }
  Script& open(uint8_t worker) { return static_cast<Script&>(op(Op::Open).u8(worker)); }
  Script& msg(uint8_t s, Message type, uint8_t shape = 0) {
    return static_cast<Script&>(op(Op::Msg).u8(s).u8(uint8_t(type)).u8(shape));
  }
  Script& hello(uint8_t s, std::string_view name, uint8_t version = 0, uint8_t shape = 0) {
    msg(s, Message::Hello, shape).u8(version).text(name);
    return *this;
  }
  Script& ping(uint8_t s, uint32_t t, uint8_t shape = 0) {
    msg(s, Message::Ping, shape).u32(t).u32(t * 7);
    return *this;
  }
  Script& join(uint8_t s, uint8_t party_key = 0, uint8_t party_size = 0, uint8_t mode = 0) {
    msg(s, Message::QueueJoin).u8(mode).u8(party_key).u8(party_size);
    return *this;
  }
  // A valid arena input (dispatch_input.h: len 0x80..0xFE).
  Script& input(uint8_t s, uint16_t seq, uint16_t ack, int8_t mx, int8_t my, uint8_t buttons = 0) {
    msg(s, Message::Input).u16(seq).u16(seq).u16(ack).u8(skirmish::fuzz::kInputArena);
    u8(skirmish::fuzz::arena_move_byte(mx)).u8(skirmish::fuzz::arena_move_byte(my)).u8(buttons);
    return *this;
  }
  // Input.data of any bytes (up to 63), or none at all.
  Script& input_raw(uint8_t s, uint16_t seq, uint16_t ack, std::span<const uint8_t> data) {
    msg(s, Message::Input).u16(seq).u16(seq).u16(ack).u8(uint8_t(data.size() & skirmish::fuzz::kInputRawMask));
    bytes(data.first(std::min<size_t>(data.size(), skirmish::fuzz::kInputRawMask)));
    return *this;
  }
  Script& input_none(uint8_t s, uint16_t seq, uint16_t ack) {
    msg(s, Message::Input).u16(seq).u16(seq).u16(ack).u8(skirmish::fuzz::kInputNoData);
    return *this;
  }
  Script& resume(uint8_t s, uint8_t token_sel, uint16_t last_tick = 0) {
    msg(s, Message::Resume).u8(0).u8(token_sel).u16(last_tick);
    return *this;
  }
  Script& frame(uint8_t s, std::span<const uint8_t> body) {
    op(Op::Frame).u8(s).u16(uint16_t(body.size())).bytes(body);
    return *this;
  }
  Script& raw(uint8_t s, std::span<const uint8_t> bytes) {
    op(Op::Raw).u8(s).u8(uint8_t(bytes.size())).bytes(bytes);
    return *this;
  }
  Script& eof(uint8_t s) { return static_cast<Script&>(op(Op::Eof).u8(s)); }
  Script& stall(uint8_t s) { return static_cast<Script&>(op(Op::Stall).u8(s)); }
  Script& clock(uint16_t ms) { return static_cast<Script&>(op(Op::Clock).u16(ms)); }
  Script& coord(uint8_t flags = 0) { return static_cast<Script&>(op(Op::Coord).u8(flags)); }
  Script& tick(uint8_t passes) { return static_cast<Script&>(op(Op::Tick).u8(uint8_t(passes - 1))); }
  Script& control(uint8_t what, uint8_t worker) { return static_cast<Script&>(op(Op::Control).u8(what).u8(worker)); }
};

// Config byte bits (dispatch_input.h).
constexpr uint8_t kSize3 = 1, kSize4 = 2, kNoGrace = 4, kFewPlayers = 8, kQueue4k = 16, kLowRate = 64,
                  kOneMatch = 128;
constexpr uint8_t kLongGrace = 1, kOneInput = 2, kSmallCaps = 4, kNoCoins = 8;  // the second byte

// Two players on two workers, queued and matched; returns the script with
// the match running (ticked once, both seated).
Script two_in_a_match(uint8_t config = 0) {
  Script s(config);
  s.open(0).open(1).hello(0, "ann").hello(1, "bob").join(0).join(1).coord().tick(1);
  return s;
}

void dispatch_seeds(const std::vector<std::pair<std::string, Bytes>>& frames) {
  auto put = [](const std::string& name, const Writer& s) { seed("dispatch", name, s.out); };

  put("hello", Script().open(0).hello(0, "alice").ping(0, 1).msg(0, Message::QueueStatus).msg(0, Message::QueueLeave)
                   .eof(0));

  {
    Script s = two_in_a_match();
    s.input(0, 1, 1, 50, 0).input(1, 1, 1, -30, 20, 1).tick(2).input(0, 2, 3, 100, 100, 1).input(1, 2, 3, -100, 0)
        .tick(3).input(0, 3, 6, 0, -100, 1).input(1, 3, 5, 10, 10, 1).tick(16).input(0, 4, 20, 5, 5)
        .tick(16).tick(16).msg(0, Message::QueueStatus).tick(4).join(0).join(1).coord().tick(1).eof(0).eof(1);
    put("match", s);
  }
  {
    Script s = two_in_a_match(kSize3);
    s.open(0).hello(2, "cat").join(2).coord().tick(2).input(2, 1, 1, 1, 1).tick(16);
    put("match-of-3", s);
  }

  put("resume-idle", Script().open(0).hello(0, "rex").eof(0).clock(100).open(1).resume(1, 0).ping(1, 5)
                         .msg(1, Message::QueueStatus));
  {
    Script s = two_in_a_match();
    s.tick(2).eof(0).tick(2).open(1).resume(2, 0, 3).tick(2).input(2, 9, 0, 20, 20).tick(16).tick(16).tick(16)
        .tick(16);
    put("resume-in-match", s);
  }
  {
    Script s = two_in_a_match();
    s.eof(0).tick(16).tick(16).tick(16).tick(16).open(0).resume(2, 0).join(2);
    put("resume-after-end", s);
  }
  put("resume-bad", Script().open(0).hello(0, "x").eof(0).open(0).resume(1, 0x80).open(0).resume(2, 0xFE)
                        .open(0).msg(3, Message::Resume).u8(0).u8(0xFF).u32(1).u32(2).u32(3).u32(4).u16(0));
  put("resume-twice", Script().open(0).hello(0, "x").eof(0).open(0).resume(1, 0).open(1).resume(2, 0));
  put("no-grace", Script(kNoGrace).open(0).hello(0, "x").eof(0).clock(10).open(0).resume(1, 0));
  {
    Script s(kSize4);
    for (uint8_t i = 0; i < 4; ++i) s.open(i & 1).hello(i, "p" + std::to_string(i));
    s.join(0, 7, 2).join(1, 7, 2).join(2).join(3).coord().tick(3).input(0, 1, 1, 100, 0, 1).tick(16);
    put("party", s);
  }
  put("queue-twice", Script().open(0).hello(0, "q").join(0).join(0).msg(0, Message::QueueLeave).msg(0, Message::QueueLeave)
                         .join(0, 0, 0, 3).join(0, 0, 9).join(0).coord(1).clock(3000).coord(1));

  put("before-hello", Script().open(0).input(0, 1, 0, 0, 0).open(0).join(1).open(0).ping(2, 1).hello(2, "late"));
  put("hello-twice", Script().open(0).hello(0, "a").hello(0, "a"));
  put("hello-bad", Script().open(0).hello(0, "v", 5).open(0).hello(1, "").open(0)
                       .hello(2, "a-name-that-is-longer-than-32-bytes-x").open(0).hello(3, "v", 1));
  {
    Script s;
    s.open(0).hello(0, "srv");
    for (Message t : {Message::Welcome, Message::Pong, Message::MatchFound, Message::Snapshot, Message::MatchEnd,
                      Message::ServerShutdown})
      s.msg(0, t);
    s.msg(0, Message::Error).u8(uint8_t(ErrorCode::Internal)).u8(1).text("client error");
    s.open(0).msg(1, Message::NONE).open(0).msg(2, Message(15)).open(0).msg(3, Message::Welcome);
    put("server-only", s);
  }
  {
    Script s;
    s.open(0);
    for (const auto& [name, f] : frames)
      if (name == "hello") s.frame(0, std::span(f).subspan(kFrameHeaderBytes));
    for (const auto& [name, f] : frames)
      if (name != "hello" && name != "resume") s.frame(0, std::span(f).subspan(kFrameHeaderBytes));
    put("frames", s);
  }
  put("bad-frames", Script().open(0).raw(0, Bytes{0, 0, 0, 0}).open(0).raw(1, Bytes{0xff, 0xff, 0, 0, 1})
                        .open(0).frame(2, Bytes{8, 0, 0, 0, 'S', 'K', 'R', 'X', 0, 0, 0, 0}).open(0)
                        .frame(3, Bytes{4, 0, 0, 0, 'S', 'K', 'R', 'M', 0, 0, 0, 0}));
  put("split", Script().open(0).hello(0, "split", 0, 0x80).ping(0, 1, 0x31).ping(0, 2, 0xF7));
  {
    Script s(kQueue4k);
    s.open(0).hello(0, "slow").stall(0);
    for (int i = 0; i < 12; ++i) s.ping(0, uint32_t(i), 15);
    s.stall(0).ping(0, 99);
    put("slow-consumer", s);
  }
  {
    Script s = two_in_a_match(kQueue4k);
    s.stall(0).tick(16).tick(16).tick(16);
    put("slow-in-match", s);
  }
  put("rate-limit", Script(kLowRate).open(0).hello(0, "fast").ping(0, 1, 15).open(0).hello(1, "b").ping(1, 1, 5)
                        .clock(2000).ping(1, 2, 5));
  put("timeouts", Script().open(0).clock(1500).open(0).hello(1, "idle").clock(6000).open(1).hello(2, "ok")
                      .clock(900).ping(2, 1).clock(900));
  {
    Script s = two_in_a_match();
    s.open(0).hello(2, "c").control(1, 0).control(1, 1).tick(16).tick(16).tick(16).tick(16).control(0, 0)
        .control(2, 1).clock(2000);
    put("drain", s);
  }
  {
    Script s(kFewPlayers | kOneMatch);
    for (uint8_t i = 0; i < 4; ++i) s.open(i & 1).hello(i, "f" + std::to_string(i));
    s.join(0).join(1).join(2).coord().tick(2).eof(0).clock(2500).coord(1).open(0).hello(4, "again");
    put("full", s);
  }
  {
    // The match ends and its row is released while the player is away
    // (linger 10 s < grace 30 s): resume, and queue again, find it gone.
    Script s(0, kLongGrace);
    s.open(0).open(1).hello(0, "ann").hello(1, "bob").join(0).join(1).coord().tick(1).eof(0);
    for (int i = 0; i < 4; ++i) s.input(1, uint16_t(10 + i), 0, 1, 1).tick(16);
    s.clock(11000).coord(1).open(0).resume(2, 0).join(2).msg(2, Message::QueueStatus);
    put("resume-after-release", s);
  }
  {
    Script s(0, kOneInput | kSmallCaps | kNoCoins);
    s.open(0).open(1).hello(0, "ann").hello(1, "bob").join(0).join(1).coord().tick(1);
    for (uint16_t i = 1; i < 6; ++i) s.input(0, i, 0, 10, 10);
    s.input(0, 3, 0, 0, 0).tick(2).control(3, 0).u8(5).u8(10).u8(50).u8(2).u8(3).u8(0);
    s.ping(1, 1, 15).frame(0, Bytes(300, 0)).tick(16);
    put("reload-and-small", s);
  }
  {
    // Input.data the arena refuses: wrong lengths, out-of-range moves,
    // unknown buttons, an empty vector, no vector, one past the cap; and
    // valid ones in between so the match goes on.
    Script s = two_in_a_match();
    s.input_raw(0, 1, 0, Bytes{1, 2}).input_raw(0, 2, 0, Bytes{1, 2, 3, 4}).input_raw(0, 3, 0, Bytes{101, 0, 0})
        .input_raw(0, 4, 0, Bytes{0, 0x9b, 0}).input_raw(0, 5, 0, Bytes{0, 0, 2}).input_raw(0, 6, 0, Bytes{})
        .input_none(0, 7, 0).input_raw(0, 8, 0, Bytes(57, 1)).input_raw(0, 9, 0, Bytes(56, 1))
        .input(0, 10, 1, 100, -100, 1).input_raw(1, 1, 0, Bytes{0x9c, 0x64, 0x01}).tick(4)
        .input_raw(1, 2, 4, Bytes{0xff, 0xff, 0xff}).tick(4);
    put("bad-inputs", s);
  }
  {
    // Acks of every kind: the newest tick, an old one, one never sent, 0.
    Script s = two_in_a_match();
    for (uint16_t i = 1; i < 30; ++i) s.input(0, i, uint16_t(i < 10 ? i : i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 999), 50, 0).tick(1);
    put("acks", s);
  }
  put("grace-expired", Script().open(0).hello(0, "g").join(0).eof(0).clock(3000).coord(1).open(0).resume(1, 0));
}

// ---------------------------------------------------------------- view deltas

// fuzz_view_delta's format: mode u8, cap u16, split u16, bytes.
Bytes view_delta_input(uint8_t mode, uint16_t cap, const Bytes& first, const Bytes& second) {
  Bytes out{mode, uint8_t(cap), uint8_t(cap >> 8), uint8_t(first.size()), uint8_t(first.size() >> 8)};
  out.insert(out.end(), first.begin(), first.end());
  out.insert(out.end(), second.begin(), second.end());
  return out;
}

void view_delta_seeds() {
  auto put = [](const std::string& name, const Bytes& b) { seed("view_delta", name, b); };
  // PROTOCOL.md's worked example (tests/unit/test_view_delta.cpp checks it).
  const Bytes base{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
  const Bytes delta{0x12, 0x04, 0x03, 0xa4, 0x15, 0xa6, 0x05, 0x01, 0xc0, 0x04, 0x01, 0x07};
  put("example", view_delta_input(0, 64, base, delta));
  put("example-cap-short", view_delta_input(0, 17, base, delta));
  // Arena-sized views (12 + 48 * 20 bytes) with a few entities moved.
  Bytes arena(972);
  for (size_t i = 0; i < arena.size(); ++i) arena[i] = uint8_t(i % 20 < 4 ? i / 20 : i * 7);
  Bytes moved = arena;
  for (size_t e = 0; e < 48; e += 5) moved[12 + e * 20 + 4] ^= 0x5a;
  put("arena-round-trip", view_delta_input(1, 0, arena, moved));
  put("arena-patch", view_delta_input(3, 12 + 20 * 3 + 4, arena, Bytes{1, 2, 3, 4, 0, 0, 0, 0, 9}));
  Bytes d(delta_bound(moved.size()));
  d.resize(encode_delta(arena.data(), arena.size(), moved.data(), moved.size(), d.data(), d.size()));
  put("arena-apply", view_delta_input(0, 4096, arena, d));
  put("grow", view_delta_input(1, 0, base, Bytes(40, 0x33)));
  put("shrink", view_delta_input(1, 0, arena, base));
  put("empty", view_delta_input(1, 0, {}, {}));
  // Near-valid deltas: each DeltaError.
  put("truncated", view_delta_input(0, 64, base, Bytes{0x10, 0x02, 0x05, 0xaa}));
  put("bad-varint", view_delta_input(0, 64, base, Bytes{0x90, 0x80, 0x00}));
  put("long-varint", view_delta_input(0, 64, base, Bytes{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}));
  put("too-long", view_delta_input(0, 8, base, Bytes{0x10}));
  put("run-0", view_delta_input(0, 64, base, Bytes{0x10, 0x02, 0x00}));
  put("overrun", view_delta_input(0, 64, base, Bytes{0x10, 0x0e, 0x04, 1, 2, 3, 4}));
  put("trailing", view_delta_input(0, 64, base, Bytes{0x02, 0x00, 0x02, 1, 2, 0x00}));
}

// ---------------------------------------------------------------- games

// fuzz_game's format: players u8, seed u64, then ops (Check 0, Input 1,
// Bot 2, Step 3). Generic: whatever the module, these play a match.
void game_seeds() {
  auto start = [](uint8_t players, uint64_t seed) {
    Writer w;
    w.u8(players);
    for (int i = 0; i < 8; ++i) w.u8(uint8_t(seed >> (8 * i)));
    return w;
  };
  auto put = [](const std::string& name, const Writer& w) { seed("game", name, w.out); };
  for (uint8_t players : {0, 1, 2, 3}) {
    Writer w = start(players, 0x5eed0000u + players);
    for (int t = 0; t < 120; ++t) {
      for (uint8_t s = 0; s < 4; ++s) w.u8(2).u8(s);  // Bot
      w.u8(3).u8(0).u8(0);                            // Step 1, all connected
    }
    put("bots-" + std::to_string(players), w);
  }
  {
    Writer w = start(0, 42);
    for (uint8_t len = 0; len < 64; ++len) {
      w.u8(0).u8(len);  // Check
      for (uint8_t i = 0; i <= len; ++i) w.u8(uint8_t(i * 37 + len));
    }
    put("check-lengths", w);
  }
  {
    Writer w = start(1, 7);
    for (int t = 0; t < 60; ++t) {
      w.u8(1).u8(uint8_t(t)).u8(2).u8(uint8_t(t * 3)).u8(uint8_t(t * 5)).u8(0);  // Input, 3 bytes
      w.u8(2).u8(uint8_t(t + 1));
      w.u8(3).u8(uint8_t(t % 8)).u8(uint8_t(t % 3 == 0 ? 0x01 : 0));  // some seats away
    }
    put("inputs-and-away", w);
  }
  {
    Writer w = start(0, 99);
    for (int t = 0; t < 400; ++t) w.u8(2).u8(uint8_t(t & 1)).u8(3).u8(7).u8(0);  // long: 8 steps a time
    put("long-match", w);
  }
}

// ---------------------------------------------------------------- records

// Written as the server writes it: the owner's ring (HASH(0), TICK before
// each step(), HASH every 10 ticks; match_store.cpp), drained and closed by
// the coordinator's END (recorder.cpp). Loads games/arena.so beside this
// program's directory (module.h's search), as fuzz_record does.
void record_seeds() {
  namespace rec = skirmish::record;
  namespace mod = skirmish::module;
  std::string error;
  const std::optional<mod::Module> m = mod::load("arena", mod::Limits{}, error);
  if (!m) {
    std::cerr << "make_seed_corpus: " << error << "\n";
    std::exit(1);
  }
  const skirmish_game_v1_t* g = m->game;
  rec::FileHeader h;
  h.game_name = g->name;
  h.game_version = g->version;
  h.module = m->path;
  h.state_bytes = g->state_bytes;
  h.players = 4;
  h.seed = 0x5eed;
  h.tick_rate_hz = 30;
  h.hash_every = 10;
  h.match = 0x100000;
  h.params = {mod::GameParam{"time_limit_s", SKIRMISH_PARAM_INT, 5, 0, ""}};
  const mod::GameParams params(h.params, h.tick_rate_hz);

  alignas(64) static uint8_t state[65536], view[65536];
  alignas(64) skirmish::shm::RecordRing head{};
  Bytes ring_bytes(4 * skirmish::shm::kMinRecordBytes);
  const rec::Ring ring{&head, ring_bytes.data(), uint32_t(ring_bytes.size())};
  g->init(state, params.view(), h.players, h.seed);
  rec::start_locked(ring, h.hash_every, 0, state, g->state_bytes);
  uint64_t rng[4] = {1, 2, 3, 4};
  uint8_t in_bytes[4][SKIRMISH_MAX_INPUT_BYTES];
  skirmish_input items[4];
  skirmish_outcome o{};
  uint32_t tick = 0;
  std::vector<size_t> cuts;  // file offsets after some records, to cut at
  Bytes recs;
  while (o.end == SKIRMISH_RUNNING && tick < 1000) {
    ++tick;
    uint32_t n = 0;
    for (uint32_t s = 0; s < h.players; ++s) {
      const uint32_t vlen = g->view(state, s, view, sizeof view);
      const uint32_t len = g->bot_input(view, vlen, s, &rng[s], in_bytes[s], g->max_input_bytes);
      if (len >= 1 && len <= g->max_input_bytes && g->check_input(in_bytes[s], len) == SKIRMISH_INPUT_OK)
        items[n++] = skirmish_input{uint8_t(s), uint8_t(len), 0, tick, in_bytes[s]};
    }
    rec::append_tick_locked(ring, tick, 0xF, items, n);
    const skirmish_inputs in{items, n, 0xF};
    g->step(state, &in, tick);
    rec::append_hash_locked(ring, tick, state, g->state_bytes);
    o = skirmish_outcome{};
    g->outcome(state, &o);
    if (tick % 37 == 0) cuts.push_back(size_t(head.write_pos));
  }
  rec::copy_locked(ring, UINT64_MAX, recs);
  skirmish::shm::SeatResult seats[4] = {};
  for (uint32_t s = 0; s < 4; ++s) seats[s] = skirmish::shm::SeatResult{o.seats[s].place, {}, o.seats[s].score, 1500, 1500};
  const uint32_t reason = o.end == SKIRMISH_END_SCORE_LIMIT ? 1 : 2;  // the row's end_reason: wire EndReason + 1
  rec::put_end(recs, tick, reason, o.detail, seats, 4);

  const Bytes file_head = rec::encode_header(h);
  auto file = [&](const Bytes& body) {
    Bytes f = file_head;
    f.insert(f.end(), body.begin(), body.end());
    return f;
  };
  seed("record", "arena-match", file(recs));
  seed("record", "header-only", file({}));
  for (size_t c : cuts) seed("record", "cut-at-" + std::to_string(c), file(Bytes(recs.begin(), recs.begin() + c)));
  seed("record", "cut-mid-record", file(Bytes(recs.begin(), recs.begin() + cuts.front() + 3)));
  Bytes hash_changed = recs;
  hash_changed[16 - 1] ^= 0x01;  // HASH(0)'s last byte
  seed("record", "hash0-changed", file(hash_changed));
  Bytes input_changed = recs;
  input_changed[16 + rec::kTickHead + rec::kInputHead] ^= 0x40;  // TICK(1)'s first input byte
  seed("record", "input-changed", file(input_changed));
}

// ---------------------------------------------------------------- config

void config_seeds(const fs::path& configs) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(configs))
    if (e.path().extension() == ".toml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string first;
  for (const auto& p : files) {
    std::ifstream f(p, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (first.empty()) first = text;
    seed("config", p.stem().string(), text_bytes(text));
    seed("config", p.stem().string() + "-flags", text_bytes("#!flags --port 0 --workers 2 --log-level debug\n" + text));
  }
  // Every key: a valid value, out of range, the wrong type.
  for (const std::string& full : skirmish::config::known_keys()) {
    const size_t dot = full.find('.');
    const std::string table = full.substr(0, dot), key = full.substr(dot + 1);
    const std::string head = "[" + table + "]\n" + key + " = ";
    int i = 0;
    for (const char* v : {"1", "-1", "4294967296", "\"text\"", "1.5", "true", "[1, 2]", "{ a = 1 }", "1979-05-27"})
      seed("config", full + "-" + std::to_string(i++), text_bytes(head + v + "\n"));
  }
  const std::pair<const char*, const char*> variants[] = {
      {"workers-auto", "[server]\nworkers = \"auto\"\n"},
      {"host-v6", "[server]\nlisten_host = \"::1\"\nadmin_host = \"0.0.0.0\"\n"},
      {"host-name", "[server]\nlisten_host = \"localhost\"\n"},
      {"shm-dots", "[server]\nshm_name = \"..\"\n"},
      {"shm-slash", "[server]\nshm_name = \"a/b\"\n"},
      {"level-bad", "[server]\nlog_level = \"loud\"\n"},
      {"caps-crossed", "[limits]\nmax_frame_bytes_handshake = 8192\nmax_frame_bytes = 4096\n"},
      {"unknown-key", "[game]\ntickrate = 30\n"},
      {"wrong-table", "[server]\ntick_rate_hz = 30\n"},
      {"unknown-table", "[gmae]\nscore_limit = 5\n"},
      {"top-level-key", "workers = 2\n"},
      {"table-not-table", "server = 5\n"},
      {"dotted", "server.workers = 2\ngame.match_size = 3\n"},
      {"inline-table", "game = { match_size = 3, score_limit = 5 }\n"},
      {"array-of-tables", "[[server]]\nworkers = 1\n"},
      {"duplicate-key", "[game]\nmatch_size = 2\nmatch_size = 3\n"},
      {"duplicate-table", "[game]\n[game]\n"},
      {"unterminated", "[server]\nlisten_host = \"127.0.0.1\n"},
      {"bad-escape", "[server]\nshm_name = \"a\\qb\"\n"},
      {"control-chars", "[server]\nshm_name = \"a\x01\x1b[31mb\"\n"},
      {"utf8", "[server]\nshm_name = \"\xc3\xa9t\xc3\xa9\"\n# \xe2\x98\x83\n"},
      {"hex-int", "[limits]\nmax_players = 0x10\nmax_matches = 0o17\nmax_connections = 1_000\n"},
      {"empty", ""},
      {"flags-help", "#!flags --help\n"},
      {"flags-version", "#!flags --version\n"},
      {"flags-bad", "#!flags --port 70000 --workers many\n[server]\n"},
      {"flags-unknown", "#!flags --nope 1 extra\n"},
      {"flags-shm", "#!flags --shm-name a/b --admin-port 0\n"},
  };
  for (const auto& [name, text] : variants) seed("config", name, text_bytes(text));
  // The real file with one line broken.
  if (!first.empty()) {
    std::string broken = first;
    if (size_t eq = broken.find(" = "); eq != std::string::npos) broken.replace(eq, 3, " == ");
    seed("config", "broken-line", text_bytes(broken));
  }
}

// ---------------------------------------------------------------- dictionaries

void write_dict(const char* name, const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) {
    text += '"';
    for (unsigned char c : w) {
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02X", c);
        text += hex;
      } else {
        text += char(c);
      }
    }
    text += "\"\n";
  }
  write_file(g_out / (std::string(name) + ".dict"), text_bytes(text));
}

void dictionaries() {
  std::vector<std::string> words = {"[", "]", " = ", "\"", "\n", "#!flags ", "auto", "true", "0x", "1_000",
                                    "--port", "--admin-port", "--workers", "--log-level", "--shm-name", "--help",
                                    "--version", "trace", "debug", "info", "warn", "error", "critical", "off",
                                    "127.0.0.1", "::1"};
  std::vector<std::string> tables;
  for (const std::string& full : skirmish::config::known_keys()) {
    const size_t dot = full.find('.');
    words.push_back(full);
    words.push_back(full.substr(dot + 1));
    const std::string t = "[" + full.substr(0, dot) + "]";
    if (std::find(tables.begin(), tables.end(), t) == tables.end()) tables.push_back(t);
  }
  words.insert(words.end(), tables.begin(), tables.end());
  write_dict("config", words);
  write_dict("frame_decoder", {"SKRM", std::string("\x00\x00\x00\x00", 4), std::string("\x00\x01\x00\x00", 4)});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: make_seed_corpus OUT_DIR CONFIGS_DIR\n";
    return 2;
  }
  g_out = argv[1];
  for (const char* d : {"frame_decoder", "dispatch", "config", "view_delta", "game", "record"}) fs::create_directories(g_out / d);
  const auto frames = all_frames();
  frame_decoder_seeds(frames);
  dispatch_seeds(frames);
  view_delta_seeds();
  game_seeds();
  record_seeds();
  config_seeds(argv[2]);
  dictionaries();
  size_t n = 0;
  for (const char* d : {"frame_decoder", "dispatch", "config", "view_delta", "game", "record"})
    for (const auto& e : fs::directory_iterator(g_out / d)) n += e.path().filename().string().rfind("seed-", 0) == 0;
  std::cout << "make_seed_corpus: " << n << " seeds in " << g_out.string() << "\n";
  return 0;
}
