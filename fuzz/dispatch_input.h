// The byte format of a fuzz_dispatch input, shared by the fuzzer and by
// make_seed_corpus (which writes whole games in it). Bytes are read front to
// back; a read past the end yields 0, so every input is valid. The game is
// the arena module (games/arena), loaded once per process.
//
//   input   := config config2 op*
//   config  := u8   bits 0-1 match size (2,3,4,2); bit 2 resume_grace_ms 0
//                   (else 2000); bit 3 max_players 3 (else 8); bits 4-5
//                   write_queue_bytes (65536, 4096, 8192, 65536); bit 6 a low
//                   message rate (5/s, burst 10); bit 7 max_matches 1 (else 4)
//   config2 := u8   bit 0 resume_grace_ms 30000 (longer than an ended
//                   match lingers); bit 1 max_inputs_queued 1 (else 4);
//                   bit 2 the smallest frame caps (64 before Welcome, 256
//                   after; else 256 and 4096); bit 3 no coins (the
//                   arena's [game.params] coins = 0)
//   op      := u8 (mod Op::Count) then its fields:
//     Open    worker u8                      a session on worker (u8 % 2)
//     Msg     session u8, type u8, shape u8, fields(type)
//                                            one message built from fields,
//                                            framed, sent (1 + shape % 16)
//                                            times in one read, split into
//                                            two reads at (shape >> 4)/16
//     Frame   session u8, len u16, body[len] a length header + any body
//     Raw     session u8, len u8, bytes[len] any bytes, as one read
//     Eof     session u8                     the peer hangs up
//     Stall   session u8                     toggles: stop/resume reading
//                                            what the server writes
//     Clock   ms u16                         fake clock forward, then sweep
//     Coord   u8                             a matchmaking round (bit 0: and
//                                            the housekeeping sweep)
//     Tick    n u8                           1 + n % 16 passes of every
//                                            worker's owned matches
//     Control what u8, worker u8             0 shutdown_all, 1 hand_over,
//                                            2 take_owned_matches, 3 a live
//                                            reload (every worker and the
//                                            coordinator; worker u8 ignored):
//                                            handshake u8, idle u8, grace u8,
//                                            rate u8, burst u8, inputs u8
//   session u8 picks (mod count) one of the sessions opened so far; ops on
//   a session that is gone are skipped. Mailboxes are delivered after every
//   op (events to the workers' on_event).
//
//   fields(type), by proto::Message value (type % 16; 15 = unknown type):
//     Hello 1       version u8 (0 Current, 1 Unknown, else that value),
//                   name_len u8 (% 48), name
//     Ping 3        client_time u32, nonce u32
//     QueueJoin 5   mode u8, party_key u8, party_size u8
//     Input 9       seq u16, client_tick u16, ack_tick u16, len u8, then
//                   by len: 0xFF no data field at all; 0x80..0xFE a valid
//                   arena input (games/arena/arena.h) made from three
//                   bytes move_x u8, move_y u8, buttons u8 (folded into
//                   -100..100 and the known buttons); else (len & 63)
//                   raw bytes as Input.data (0 = an empty vector; past
//                   max_input_bytes, or refused by the game's check_input,
//                   the server answers BadInput)
//     Resume 12     version u8, token u8 (0xFF: four u32 follow; 0xFE: no
//                   token; else a token the server sent in a Welcome:
//                   index low nibble, bit 7 flips w1, bit 6 flips w0),
//                   last_tick u16
//     Error 13      code u8, fatal u8, text_len u8, text
//     others        none (empty tables; 0 = an Envelope without a message)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace skirmish::fuzz {

enum class Op : uint8_t { Open, Msg, Frame, Raw, Eof, Stall, Clock, Coord, Tick, Control, Count };

// Input.len values (see Input above).
inline constexpr uint8_t kInputNoData = 0xFF;
inline constexpr uint8_t kInputArena = 0x80;  // 0x80..0xFE
inline constexpr uint8_t kInputRawMask = 63;

// Three fuzz bytes folded into a valid arena input (move_x, move_y in
// -100..100, buttons within ARENA_KNOWN_BUTTONS); the inverse of what
// make_seed_corpus writes for a chosen move.
inline std::array<uint8_t, 3> arena_input_of(uint8_t a, uint8_t b, uint8_t c) {
  return {uint8_t(int8_t(int(a % 201) - 100)), uint8_t(int8_t(int(b % 201) - 100)), uint8_t(c & 1)};
}
inline uint8_t arena_move_byte(int8_t v) { return uint8_t(int(v) + 100); }

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  uint16_t u16() { return uint16_t(u8() | u8() << 8); }
  uint32_t u32() { return uint32_t(u16()) | uint32_t(u16()) << 16; }
  // Up to `len` bytes (fewer at the end of the input).
  std::span<const uint8_t> bytes(size_t len) {
    if (len > n_) len = n_;
    std::span<const uint8_t> out(p_, len);
    p_ += len;
    n_ -= len;
    return out;
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

struct Writer {
  std::vector<uint8_t> out;
  Writer& u8(uint8_t v) {
    out.push_back(v);
    return *this;
  }
  Writer& u16(uint16_t v) { return u8(uint8_t(v)).u8(uint8_t(v >> 8)); }
  Writer& u32(uint32_t v) { return u16(uint16_t(v)).u16(uint16_t(v >> 16)); }
  Writer& op(Op o) { return u8(uint8_t(o)); }
  Writer& bytes(std::span<const uint8_t> b) {
    out.insert(out.end(), b.begin(), b.end());
    return *this;
  }
  Writer& text(std::string_view s) {  // len u8 + bytes
    u8(uint8_t(s.size()));
    return bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }
};

}  // namespace skirmish::fuzz
