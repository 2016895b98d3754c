// hostile_attacks.cpp: what each skirmish-hostile attack sends, and what it
// then expects (hostile_attacker.h; the table in loadtest/README.md).
//
// The frames (Hello, Ping, QueueJoin, Input, the badinput variants' bad
// Input.data), the judge (the server's own decoder with the handshake
// limits, so a random frame's answer is never guessed), and a connection's
// life up to its expectation: open (bound to the next --sources address),
// connect, Welcome, MatchFound, arm.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "games/arena/arena.h"
#include "loadtest/hostile_attacker.h"

namespace skirmish::hostile::attacker {

using namespace skirmish::proto;

// ---- frames ----

std::vector<uint8_t> Hostile::frame_hello() {
  auto& b = enc_.builder();
  auto name = b.CreateString("hostile" + std::to_string(++names_ % 1000000));
  return copy(enc_.finish(CreateHello(b, ProtocolVersion::Current, name)));
}

std::vector<uint8_t> Hostile::frame_ping(uint32_t nonce) {
  auto& b = enc_.builder();
  return copy(enc_.finish(CreatePing(b, 0, nonce)));
}

std::vector<uint8_t> Hostile::frame_queue_join() {
  auto& b = enc_.builder();
  return copy(enc_.finish(CreateQueueJoin(b, 0, 0, 1)));
}

// An Input with `data` as Input.data; nullptr = no data field at all.
std::vector<uint8_t> Hostile::frame_input(uint32_t seq, const std::vector<uint8_t>* data) {
  auto& b = enc_.builder();
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> d;
  if (data != nullptr) d = b.CreateVector(data->data(), data->size());
  return copy(enc_.finish(CreateInput(b, seq, seq, 0, d)));
}

// A standing arena player (arena_input {0, 0, 0}).
std::vector<uint8_t> Hostile::frame_input(uint32_t seq) {
  static const std::vector<uint8_t> still(ARENA_INPUT_BYTES, 0);
  return frame_input(seq, &still);
}

// The Input.data of badinput variant v (kBadInputNames), for a game
// named `game` taking at most `max_input` bytes. nullopt: no data field.
std::optional<std::vector<uint8_t>> Hostile::bad_data(uint8_t v, const std::string& game, uint32_t max_input) {
  switch (v) {
    case 0: return std::vector<uint8_t>(max_input + 1, 0);
    case 1: return std::vector<uint8_t>{};
    case 2: return std::nullopt;
    default: break;
  }
  if (game == "arena") {
    // arena.h: moves in -100..100, buttons within ARENA_KNOWN_BUTTONS.
    const int8_t move = (rnd() & 1) ? int8_t(ARENA_MAX_MOVE + 1) : int8_t(-ARENA_MAX_MOVE - 1);
    if (rnd() & 1) return std::vector<uint8_t>{uint8_t(move), 0, 0};
    return std::vector<uint8_t>{0, 0, uint8_t(~ARENA_KNOWN_BUTTONS & 0xFF)};
  }
  std::vector<uint8_t> b(max_input + 1 + rnd() % 8);  // a game we cannot read: too long
  fill_random(b.data(), b.size());
  return b;
}

// What the server's decoder, with the handshake limits, makes of `bytes`:
// its first error, or None with `*complete` false when it waits for more,
// or true when the bytes hold a whole valid frame.
DecodeError Hostile::judge(const std::vector<uint8_t>& bytes, bool* complete) {
  FrameDecoder d(DecodeLimits{.max_frame_bytes = o_.handshake_frame_bytes});
  bool frame = false;
  DecodeError e = d.feed(bytes.data(), bytes.size(), [&](const Frame&) {
    frame = true;
    return false;
  });
  *complete = frame;
  return e;
}

// ---- connections ----

void Hostile::open(Attack a, uint8_t variant) {
  auto* c = new Conn();
  c->h = this;
  c->attack = a;
  c->variant = variant;
  c->started_ns = now_ns();
  c->tcp.data = c;
  c->connect_req.data = c;
  link(c);
  ++open_[size_t(a)];
  ++k(a).opened;
  c->source = uint32_t(next_source_++ % o_.sources.size());
  ++held_[c->source];
  const uint32_t src = o_.sources[c->source];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_connect(c, "socket: " + std::string(strerror(errno)));
  int one = 1;
  // The port is picked at connect, per 4-tuple, so many sockets share a source.
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (a == Attack::NoRead) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kNoReadRcvbuf, sizeof kNoReadRcvbuf);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(src);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    const std::string why = "bind " + ip_text(src) + ": " + strerror(errno);
    ::close(fd);
    return fail_connect(c, why);
  }
  uv_tcp_init(&loop_, &c->tcp);
  c->inited = true;
  if (int r = uv_tcp_open(&c->tcp, fd); r != 0) {
    ::close(fd);
    return fail_connect(c, std::string("uv_tcp_open: ") + uv_strerror(r));
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(o_.target_ip);
  to.sin_port = htons(o_.port);
  if (int r = uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<sockaddr*>(&to), on_connect_cb); r != 0)
    return fail_connect(c, std::string("connect: ") + uv_strerror(r));
}

void Hostile::on_connect_cb(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  c->h->on_connect(c, status);
}

void Hostile::on_connect(Conn* c, int status) {
  if (c->closing) return;
  if (status != 0) return fail_connect(c, std::string("connect: ") + uv_strerror(status));
  c->connected = true;
  const uint64_t now = now_ns();
  const uint64_t grace = o_.grace_ms * kMs;
  if (c->attack == Attack::ResetStorm) {
    verdict(c, Verdict::Expected);
    c->closing = true;
    if (uv_tcp_close_reset(&c->tcp, on_closed_cb) != 0) {
      c->closing = false;
      close(c);
    }
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), alloc_cb, read_cb);
  // The handshake deadline runs from the server's accept, after our
  // connect started: never before started + handshake, by then + grace.
  auto arm_handshake = [&] {
    arm(c, ErrorCode::HandshakeTimeout, true, c->started_ns + (o_.handshake_ms + o_.grace_ms) * kMs);
    c->want.not_before_ns = c->started_ns + (o_.handshake_ms - std::min(o_.handshake_ms, kEarlySlackMs)) * kMs;
  };
  switch (c->attack) {
    case Attack::Garbage: {
      std::vector<uint8_t> b;
      bool complete = true;
      DecodeError e = DecodeError::None;
      for (int i = 0; i < 32 && complete; ++i) {  // a valid frame by chance: draw again
        b.resize(1 + rnd() % 4096);
        fill_random(b.data(), b.size());
        e = judge(b, &complete);
      }
      if (complete) {  // 32 valid frames in a row: send a zero length header instead
        b.assign({0, 0, 0, 0});
        e = DecodeError::ZeroLength;
      }
      if (e != DecodeError::None) arm(c, to_error_code(e), true, now + grace);
      else arm_handshake();  // a header or body still incomplete: the server waits
      write(c, std::move(b));
      break;
    }
    case Attack::Truncated: {
      const uint32_t n = 16 + uint32_t(rnd() % (o_.handshake_frame_bytes - 15));
      std::vector<uint8_t> b(4 + rnd() % n);  // the header and fewer than n body bytes
      fill_random(b.data(), b.size());
      put_le32(b.data(), n);
      arm_handshake();
      write(c, std::move(b));
      break;
    }
    case Attack::Huge:
      arm(c, ErrorCode::FrameTooLarge, true, now + grace);
      write(c, {0xFF, 0xFF, 0xFF, 0xFF});
      break;
    case Attack::Unverifiable: {
      std::vector<uint8_t> b;
      bool complete = true;
      DecodeError e = DecodeError::None;
      for (int i = 0; i < 32 && complete; ++i) {
        const uint32_t n = 8 + uint32_t(rnd() % (o_.handshake_frame_bytes - 7));
        b.resize(4 + n);
        fill_random(b.data(), b.size());
        put_le32(b.data(), n);
        std::memcpy(b.data() + 8, kFileIdentifier, 4);
        e = judge(b, &complete);
      }
      if (complete) {  // a root offset far outside the body
        b.assign({8, 0, 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 'S', 'K', 'R', 'M'});
        e = DecodeError::Unverifiable;
      }
      arm(c, to_error_code(e), true, now + grace);
      write(c, std::move(b));
      break;
    }
    case Attack::WrongState:
      if (c->variant == 0) {
        arm(c, ErrorCode::UnexpectedMessage, true, now + grace);
        write(c, frame_input(1));
      } else {
        c->step = 1;
        c->welcome_deadline_ns = now + grace;
        write(c, frame_hello());
      }
      break;
    case Attack::Flood:
    case Attack::NoRead:
    case Attack::BadInput:
      c->step = 1;
      c->welcome_deadline_ns = now + grace;
      write(c, frame_hello());
      break;
    case Attack::Slowloris:
      c->bytes = frame_hello();
      arm_handshake();
      c->next_ns = now;  // the first byte at the next tick, then one a second
      break;
    case Attack::ResetStorm: break;
  }
}

void Hostile::on_welcome(Conn* c) {
  if (c->step != 1) return unexpected(c, "Welcome without a valid Hello");
  c->step = 2;
  c->welcome_deadline_ns = 0;
  const uint64_t now = now_ns(), grace = o_.grace_ms * kMs;
  switch (c->attack) {
    case Attack::WrongState:
      if (c->variant == 1) {
        std::vector<uint8_t> b = frame_queue_join(), second = frame_queue_join();
        b.insert(b.end(), second.begin(), second.end());
        arm(c, ErrorCode::AlreadyInQueue, false, now + grace);
        write(c, std::move(b));
      } else {
        arm(c, ErrorCode::UnexpectedMessage, true, now + grace);
        write(c, frame_hello());
      }
      break;
    case Attack::Flood:
      arm(c, ErrorCode::RateLimited, true, now + grace);
      c->flooding = true;
      c->next_ns = now + grace;  // stop sending by then whatever happens
      flood_write(c);
      break;
    case Attack::NoRead:
      write(c, frame_queue_join());
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));  // and never read again
      c->next_ns = now + kNoReadInputMs * kMs;
      break;
    case Attack::BadInput:
      write(c, frame_queue_join());
      c->match_deadline_ns = now + o_.match_wait_ms * kMs;
      break;
    default: unexpected(c, "Welcome to an invalid client");
  }
}

// badinput: seated in a match, send the variant's bad Input.data; the
// server must answer Error(BadInput), not fatal, and keep the session.
void Hostile::on_match_found(Conn* c, const MatchFound& m) {
  if (c->step != 2) return unexpected(c, "MatchFound before Welcome");
  c->step = 4;
  c->match_deadline_ns = 0;
  const std::string game = m.game() != nullptr ? m.game()->str() : "";
  if (m.max_input_bytes() == 0) return unexpected(c, "MatchFound with max_input_bytes 0");
  const auto data = bad_data(c->variant, game, m.max_input_bytes());
  arm(c, ErrorCode::BadInput, false, now_ns() + o_.grace_ms * kMs);
  write(c, frame_input(++c->seq, data ? &*data : nullptr));
}

void Hostile::arm(Conn* c, ErrorCode code, bool fatal, uint64_t deadline_ns) {
  c->want = Expect{};
  c->want.armed = true;
  c->want.code = code;
  c->want.fatal = fatal;
  c->want.deadline_ns = deadline_ns;
}

}  // namespace skirmish::hostile::attacker
