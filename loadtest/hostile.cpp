// skirmish-hostile: hostile clients against a skirmish-server, each attack
// checked against what protocol/PROTOCOL.md says the server must answer.
//
// One libuv loop, one thread. Every attacker socket is bound to one of the
// --sources loopback addresses (round robin), so the server's per-address
// cap applies to the attackers and not to well-behaved bots on 127.0.0.1.
// One 10 ms tick opens connections, sends the timed bytes (slowloris,
// noread) and judges deadlines; nothing runs past --duration, and every
// count that drives a loop is bounded (per tick, per connection, in all).
//
// Each connection ends in exactly one verdict: expected (the server did
// what PROTOCOL.md says), unexpected (it did not: a reason is kept),
// capped (Error TooManyConnections or ServerFull at accept), connect_failed,
// or unfinished (the run ended first). What the server must answer to a
// random frame is not guessed: the bytes are run through the server's own
// decoder (proto::FrameDecoder with the handshake limits) first.
//
// Protocol v2: the tool knows no game but what MatchFound says (game name,
// max_input_bytes). Its inputs are the arena's bytes where it must send a
// valid one without having read MatchFound (noread: three zero bytes, a
// standing arena player; another game answers BadInput, which is not fatal
// and never read), and the badinput attack's bytes follow MatchFound.
//
// Exit codes: 0 = no unexpected outcome; 1 = at least one, or no attack
// connection was ever established; 2 = bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "games/arena/arena.h"
#include "loadtest/hostile.h"

namespace skirmish::hostile {
namespace {

using namespace skirmish::proto;

// The attacks that --rate spreads its new connections over.
constexpr Attack kRateAttacks[] = {Attack::Garbage,      Attack::Truncated,  Attack::Huge,
                                   Attack::Unverifiable, Attack::WrongState, Attack::ResetStorm};

constexpr uint64_t kMs = 1000000;            // ns
constexpr uint64_t kTickMs = 10;
constexpr uint64_t kConnectTimeoutMs = 3000;
constexpr uint64_t kEarlySlackMs = 100;      // a handshake close this much before the deadline is early
constexpr uint64_t kHoldMs = 200;            // a non-fatal Error: the connection must stay open this long
constexpr uint32_t kMaxSpawnPerTick = 100;   // new connections per tick per kind; a backlog is dropped
constexpr uint64_t kFloodPauseMs = 100;      // between two new flood connections
constexpr uint64_t kBadInputPauseMs = 250;   // between two new badinput connections: each takes a seat
                                             // in a match that lingers, so a few a second is plenty
constexpr uint64_t kRefusedPauseMs = 1000;   // kept-open attacks: no reopen for this long after a refusal
constexpr size_t kFloodBatch = 64;           // pings per write
constexpr uint64_t kFloodMaxBytes = 16 << 20;
constexpr uint64_t kNoReadInputMs = 33;
constexpr int kNoReadRcvbuf = 4096;
constexpr size_t kMaxSamples = 20;           // unexpected reasons kept for the report

// What a connection waits for: an Error with `code` by `deadline_ns`. A
// fatal one must be followed by the server's close within the grace (and,
// for a handshake deadline, by `deadline_ns` too: the whole connection
// lasts at most handshake + grace); a non-fatal one must leave the
// connection open for kHoldMs.
struct Expect {
  bool armed = false;
  ErrorCode code = ErrorCode::None;
  bool fatal = true;
  uint64_t deadline_ns = 0;    // the Error by then
  uint64_t not_before_ns = 0;  // and not before (handshake deadlines only)
  bool got = false;
  uint64_t got_ns = 0;

  uint64_t close_by_ns(uint64_t grace_ns) const {
    return not_before_ns != 0 ? std::min(deadline_ns, got_ns + grace_ns) : got_ns + grace_ns;
  }
};

class Hostile;

struct Conn {
  Conn* prev = nullptr;
  Conn* next = nullptr;
  Hostile* h = nullptr;
  Attack attack{};
  uint8_t variant = 0;
  uint32_t source = 0;  // index into Options::sources
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  bool inited = false, connected = false, closing = false, done = false;
  uint8_t step = 0;  // attack progress: 1 = waiting for Welcome, 2 = after it, 3 = QueueStatus seen
                     // (wrongstate), 4 = MatchFound seen (badinput)
  uint64_t started_ns = 0;
  uint64_t next_ns = 0;   // next timed action (slowloris byte, noread input, flood end)
  uint64_t welcome_deadline_ns = 0;
  uint64_t match_deadline_ns = 0;  // badinput: MatchFound by then
  Expect want;
  FrameDecoder dec{DecodeLimits{.max_frame_bytes = 1u << 20}};
  std::vector<uint8_t> bytes;  // slowloris: the Hello it trickles
  size_t sent = 0;
  uint32_t seq = 0;
  bool flooding = false;
  uint64_t flood_bytes = 0;
};

struct WriteReq {
  uv_write_t req;
  Conn* c;
  std::vector<uint8_t> data;
};

uint64_t now_ns() { return uv_hrtime(); }

void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

std::string error_name(ErrorCode code, bool fatal) {
  return std::string("Error(") + EnumNameErrorCode(code) + (fatal ? ", fatal)" : ")");
}

class Hostile {
 public:
  explicit Hostile(const Options& o) : o_(o), rng_(o.seed * 0x9E3779B97F4A7C15ull + 1) {
    for (Attack a : kRateAttacks)
      if (o_.enabled[size_t(a)]) rate_attacks_.push_back(a);
    std::vector<uint8_t> ping = frame_ping(0);
    for (size_t i = 0; i < kFloodBatch; ++i) flood_batch_.insert(flood_batch_.end(), ping.begin(), ping.end());
    held_.assign(o_.sources.size(), 0);
    rlimit rl{};
    max_open_ = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 200 ? uint64_t(rl.rlim_cur) - 100 : 100;
  }

  int run() {
    uv_loop_init(&loop_);
    start_ns_ = now_ns();
    tty_ = isatty(STDOUT_FILENO) != 0;
    auto init = [this](uv_timer_t& t) {
      uv_timer_init(&loop_, &t);
      t.data = this;
    };
    init(tick_);
    init(status_);
    init(end_);
    uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<Hostile*>(t->data)->on_tick(); }, 0, kTickMs);
    uv_timer_start(
        &status_, [](uv_timer_t* t) { static_cast<Hostile*>(t->data)->print_status(false); }, 1000, 1000);
    uv_timer_start(&end_, [](uv_timer_t* t) { static_cast<Hostile*>(t->data)->stop(); },
                   uint64_t(o_.duration_s * 1000), 0);
    for (int i = 0; i < 2; ++i) {
      uv_signal_init(&loop_, &signals_[i]);
      signals_[i].data = this;
      uv_signal_start(&signals_[i], [](uv_signal_t* s, int) { static_cast<Hostile*>(s->data)->stop(); },
                      i == 0 ? SIGINT : SIGTERM);
    }
    std::printf("skirmish-hostile: -> %s for %.0f s from %zu source address(es), attacks %s, rate %.0f/s, "
                "slowloris %u, flood %u, noread %u, handshake %llu ms\n",
                o_.target.c_str(), o_.duration_s, o_.sources.size(), o_.attacks_text.c_str(), o_.rate,
                o_.slowloris, o_.flood, o_.noread, (unsigned long long)o_.handshake_ms);
    std::fflush(stdout);
    uv_run(&loop_, UV_RUN_DEFAULT);  // returns once stop() has closed every handle
    uv_loop_close(&loop_);
    r_.elapsed_s = double(now_ns() - start_ns_) / 1e9;
    print_table(o_, r_);
    return finish();
  }

 private:
  // ---- frames ----
  std::vector<uint8_t> copy(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }
  std::vector<uint8_t> frame_hello() {
    auto& b = enc_.builder();
    auto name = b.CreateString("hostile" + std::to_string(++names_ % 1000000));
    return copy(enc_.finish(CreateHello(b, ProtocolVersion::Current, name)));
  }
  std::vector<uint8_t> frame_ping(uint32_t nonce) {
    auto& b = enc_.builder();
    return copy(enc_.finish(CreatePing(b, 0, nonce)));
  }
  std::vector<uint8_t> frame_queue_join() {
    auto& b = enc_.builder();
    return copy(enc_.finish(CreateQueueJoin(b, 0, 0, 1)));
  }
  // An Input with `data` as Input.data; nullptr = no data field at all.
  std::vector<uint8_t> frame_input(uint32_t seq, const std::vector<uint8_t>* data) {
    auto& b = enc_.builder();
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> d;
    if (data != nullptr) d = b.CreateVector(data->data(), data->size());
    return copy(enc_.finish(CreateInput(b, seq, seq, 0, d)));
  }
  // A standing arena player (arena_input {0, 0, 0}).
  std::vector<uint8_t> frame_input(uint32_t seq) {
    static const std::vector<uint8_t> still(ARENA_INPUT_BYTES, 0);
    return frame_input(seq, &still);
  }
  // The Input.data of badinput variant v (kBadInputNames), for a game
  // named `game` taking at most `max_input` bytes. nullopt: no data field.
  std::optional<std::vector<uint8_t>> bad_data(uint8_t v, const std::string& game, uint32_t max_input) {
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

  uint64_t rnd() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545F4914F6CDD1Dull;
  }
  void fill_random(uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = uint8_t(rnd() >> 32);
  }

  // What the server's decoder, with the handshake limits, makes of `bytes`:
  // its first error, or None with `*complete` false when it waits for more,
  // or true when the bytes hold a whole valid frame.
  DecodeError judge(const std::vector<uint8_t>& bytes, bool* complete) {
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
  void open(Attack a, uint8_t variant = 0) {
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

  static void on_connect_cb(uv_connect_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    c->h->on_connect(c, status);
  }

  void on_connect(Conn* c, int status) {
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

  void on_welcome(Conn* c) {
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
  void on_match_found(Conn* c, const MatchFound& m) {
    if (c->step != 2) return unexpected(c, "MatchFound before Welcome");
    c->step = 4;
    c->match_deadline_ns = 0;
    const std::string game = m.game() != nullptr ? m.game()->str() : "";
    if (m.max_input_bytes() == 0) return unexpected(c, "MatchFound with max_input_bytes 0");
    const auto data = bad_data(c->variant, game, m.max_input_bytes());
    arm(c, ErrorCode::BadInput, false, now_ns() + o_.grace_ms * kMs);
    write(c, frame_input(++c->seq, data ? &*data : nullptr));
  }

  void arm(Conn* c, ErrorCode code, bool fatal, uint64_t deadline_ns) {
    c->want = Expect{};
    c->want.armed = true;
    c->want.code = code;
    c->want.fatal = fatal;
    c->want.deadline_ns = deadline_ns;
  }

  // ---- I/O ----
  void write(Conn* c, std::vector<uint8_t> bytes) {
    if (c->closing || bytes.empty()) return;
    auto* w = new WriteReq{{}, c, std::move(bytes)};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->data.data()), unsigned(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, write_cb) != 0) {
      delete w;
      write_failed(c);
    }
  }

  static void write_cb(uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    Conn* c = w->c;
    delete w;
    if (status == UV_ECANCELED || c->closing) return;  // our close; the Conn lives until its close callback
    if (status < 0) return c->h->write_failed(c);
    if (c->flooding) c->h->flood_write(c);
  }

  // The peer is gone. For a reading connection the read side says so (with
  // the frames that came before); a noread one only learns it here.
  void write_failed(Conn* c) {
    c->flooding = false;
    if (c->attack != Attack::NoRead || c->step < 2) return;
    ++k(c).server_closes;
    note_close_time(c);
    verdict(c, Verdict::Expected);
    close(c);
  }

  void flood_write(Conn* c) {
    if (!c->flooding || c->closing || now_ns() >= c->next_ns || c->flood_bytes >= kFloodMaxBytes) {
      c->flooding = false;
      return;
    }
    c->flood_bytes += flood_batch_.size();
    write(c, flood_batch_);
  }

  static void alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) {
    // One thread, and on_read consumes the buffer before the next read.
    alignas(8) static char read_buf[64 * 1024];
    *buf = uv_buf_init(read_buf, sizeof read_buf);
  }

  static void read_cb(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(st->data);
    if (n > 0) c->h->on_bytes(c, reinterpret_cast<const uint8_t*>(buf->base), size_t(n));
    else if (n < 0) c->h->on_peer_closed(c);
  }

  void on_bytes(Conn* c, const uint8_t* p, size_t n) {
    if (c->closing) return;
    DecodeError e = c->dec.feed(p, n, [&](const Frame& f) {
      on_frame(c, f);
      return !c->closing;
    });
    if (e != DecodeError::None && !c->closing)
      unexpected(c, std::string("the server sent an undecodable frame: ") + to_string(e));
  }

  void on_frame(Conn* c, const Frame& f) {
    switch (f.type) {
      case Message::Error: {
        const auto* m = f.envelope->msg_as_Error();
        const size_t code = size_t(m->code());
        if (code < kErrorCodes) ++k(c).errors[code];
        if (c->done) return;
        // The master refuses at accept, before the connection says anything.
        const bool cap = m->code() == ErrorCode::TooManyConnections || m->code() == ErrorCode::ServerFull;
        if (cap && c->step <= 1 && !c->want.got) {
          // Refused by address while we hold far fewer than the cap from
          // it: the server's per-address count has leaked.
          const uint64_t held = held_[c->source];
          if (m->code() == ErrorCode::TooManyConnections && held < o_.per_address_cap / 4)
            return unexpected(c, "Error(TooManyConnections) while this tool held " + std::to_string(held) +
                                     " connection(s) from " + ip_text(o_.sources[c->source]) + " (cap " +
                                     std::to_string(o_.per_address_cap) + ")");
          verdict(c, Verdict::Capped);
          return close(c);
        }
        Expect& w = c->want;
        const std::string got = error_name(m->code(), m->fatal());
        if (!w.armed || w.got) return unexpected(c, got + " unasked");
        // Two QueueJoins back to back: the coordinator (another process)
        // may match the first ticket before the second is read, and then
        // the answer is "already in a match", as PROTOCOL.md allows.
        const bool matched_meanwhile = c->attack == Attack::WrongState && c->variant == 1 &&
                                       m->code() == ErrorCode::UnexpectedMessage && !m->fatal();
        if (matched_meanwhile) {
          verdict(c, Verdict::Expected);
          return close(c);
        }
        if (m->code() != w.code || m->fatal() != w.fatal)
          return unexpected(c, got + " where PROTOCOL.md says " + error_name(w.code, w.fatal));
        const uint64_t now = now_ns();
        if (now < w.not_before_ns)
          return unexpected(c, got + " " + std::to_string((w.not_before_ns + kEarlySlackMs * kMs - now) / kMs) +
                                   " ms before the handshake deadline");
        w.got = true;
        w.got_ns = now;
        return;
      }
      case Message::Welcome:
        if (!c->done) on_welcome(c);
        return;
      case Message::QueueStatus:
        if (c->attack == Attack::WrongState && c->variant == 1 && c->step == 2) c->step = 3;
        return;
      case Message::MatchFound:
        if (c->attack == Attack::BadInput && !c->done) on_match_found(c, *f.envelope->msg_as_MatchFound());
        return;  // else: the double QueueJoin may be matched before we close
      case Message::Pong:
      case Message::Snapshot:
      case Message::MatchEnd: return;
      default:
        if (!c->done) unexpected(c, std::string("unexpected ") + EnumNameMessage(f.type));
    }
  }

  void on_peer_closed(Conn* c) {
    if (c->closing) return;
    ++k(c).server_closes;
    note_close_time(c);
    if (!c->done) {
      const Expect& w = c->want;
      if (w.armed && w.got && w.fatal) {
        if (now_ns() <= w.close_by_ns(o_.grace_ms * kMs)) verdict(c, Verdict::Expected);
        else unexpected(c, "closed late after the fatal " + error_name(w.code, true));
      } else if (w.armed && w.got) {
        unexpected(c, "closed by the server after the non-fatal " + error_name(w.code, false));
      } else if (w.armed) {
        unexpected(c, "closed by the server without " + error_name(w.code, w.fatal));
      } else {
        unexpected(c, "closed by the server unasked");
      }
    }
    close(c);
  }

  void note_close_time(Conn* c) {
    Counters& x = k(c);
    const uint64_t ms = (now_ns() - c->started_ns) / kMs;
    x.close_ms_min = std::min(x.close_ms_min, ms);
    x.close_ms_max = std::max(x.close_ms_max, ms);
  }

  void close(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    c->flooding = false;
    if (c->inited) uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed_cb);
    else forget(c);
  }

  static void on_closed_cb(uv_handle_t* hd) {
    auto* c = static_cast<Conn*>(hd->data);
    c->h->forget(c);
  }

  void forget(Conn* c) {
    --open_[size_t(c->attack)];
    --held_[c->source];
    unlink(c);
    delete c;
  }

  void fail_connect(Conn* c, const std::string& why) {
    if (c->done) return close(c);
    c->done = true;
    ++k(c).connect_failed;
    paused_until_[size_t(c->attack)] = now_ns() + kRefusedPauseMs * kMs;
    if (r_.first_connect_error.empty()) r_.first_connect_error = why;
    close(c);
  }

  // ---- verdicts ----
  enum class Verdict { Expected, Unexpected, Capped, Unfinished, StillOpen };

  void verdict(Conn* c, Verdict v) {
    if (c->done) return;
    c->done = true;
    Counters& x = k(c);
    switch (v) {
      case Verdict::Expected:
        ++x.expected;
        if (c->attack == Attack::WrongState || c->attack == Attack::BadInput) ++x.variant_expected[c->variant];
        break;
      case Verdict::Unexpected: ++x.unexpected; break;
      case Verdict::Capped:
        ++x.capped;
        paused_until_[size_t(c->attack)] = now_ns() + kRefusedPauseMs * kMs;  // no reconnect storm
        break;
      case Verdict::Unfinished: ++x.unfinished; break;
      case Verdict::StillOpen: ++x.still_open; break;
    }
  }

  void unexpected(Conn* c, const std::string& why) {
    if (c->done) return close(c);
    verdict(c, Verdict::Unexpected);
    if (r_.samples.size() < kMaxSamples) {
      std::string r = why;
      if (c->attack == Attack::WrongState) r = std::string(kWrongStateNames[c->variant]) + ": " + r;
      if (c->attack == Attack::BadInput) r = std::string(kBadInputNames[c->variant]) + ": " + r;
      r_.samples.push_back({double(now_ns() - start_ns_) / 1e9, c->attack, r});
    }
    close(c);
  }

  // ---- the tick: open, send timed bytes, judge deadlines ----
  void on_tick() {
    const uint64_t now = now_ns();
    spawn(now);
    for (Conn* c = head_.next; c != &head_;) {
      Conn* next = c->next;  // a close frees c only in its close callback, never here
      if (!c->closing) tick_conn(c, now);
      c = next;
    }
  }

  uint64_t live() const {
    uint64_t n = 0;
    for (uint64_t x : open_) n += x;
    return n;
  }

  void spawn(uint64_t now) {
    const double secs = double(now - start_ns_) / 1e9;
    if (!rate_attacks_.empty()) {
      const uint64_t due = uint64_t(o_.rate * secs);
      if (due > rate_spawned_ + kMaxSpawnPerTick) {
        r_.rate_skipped += due - rate_spawned_ - kMaxSpawnPerTick;  // behind: skip, not burst
        rate_spawned_ = due - kMaxSpawnPerTick;
      }
      for (; rate_spawned_ < due && live() < max_open_; ++rate_spawned_) {
        const Attack a = rate_attacks_[rate_next_++ % rate_attacks_.size()];
        open(a, a == Attack::WrongState ? uint8_t(wrongstate_next_++ % 3) : 0);
      }
    }
    auto top_up = [&](Attack a, uint32_t want) {
      if (!o_.enabled[size_t(a)] || now < paused_until_[size_t(a)]) return;
      for (uint32_t i = 0; i < kMaxSpawnPerTick && open_[size_t(a)] < want && live() < max_open_; ++i) open(a);
    };
    top_up(Attack::Slowloris, o_.slowloris);
    top_up(Attack::NoRead, o_.noread);
    if (o_.enabled[size_t(Attack::BadInput)] && now >= paused_until_[size_t(Attack::BadInput)] &&
        open_[size_t(Attack::BadInput)] < o_.badinput && now >= badinput_next_ns_ && live() < max_open_) {
      open(Attack::BadInput, uint8_t(badinput_next_++ % 4));
      badinput_next_ns_ = now + kBadInputPauseMs * kMs;
    }
    if (o_.enabled[size_t(Attack::Flood)] && open_[size_t(Attack::Flood)] < o_.flood && now >= flood_next_ns_ &&
        live() < max_open_) {
      open(Attack::Flood);
      flood_next_ns_ = now + kFloodPauseMs * kMs;
    }
  }

  void tick_conn(Conn* c, uint64_t now) {
    if (!c->connected) {
      if (now > c->started_ns + kConnectTimeoutMs * kMs) fail_connect(c, "connect timed out");
      return;
    }
    if (c->done) return;
    const Expect& w = c->want;
    if (c->welcome_deadline_ns != 0 && now > c->welcome_deadline_ns)
      return unexpected(c, "no Welcome to a valid Hello");
    if (c->match_deadline_ns != 0 && now > c->match_deadline_ns)
      return unexpected(c, "no MatchFound within " + ms_since(c, c->match_deadline_ns) + " of a QueueJoin");
    if (w.armed && !w.got && now > w.deadline_ns)
      return unexpected(c, "no " + error_name(w.code, w.fatal) + " within " + ms_since(c, w.deadline_ns));
    if (w.armed && w.got && w.fatal && now > w.close_by_ns(o_.grace_ms * kMs))
      return unexpected(c, "not closed within " + ms_since(c, w.close_by_ns(o_.grace_ms * kMs)) + " after " +
                               error_name(w.code, true));
    if (w.armed && w.got && !w.fatal && now > w.got_ns + kHoldMs * kMs) {
      // Still open after a non-fatal Error, as PROTOCOL.md says: we close.
      if (c->attack == Attack::WrongState && c->step != 3)
        return unexpected(c, "AlreadyInQueue without a QueueStatus first");
      verdict(c, Verdict::Expected);
      return close(c);
    }
    if (c->attack == Attack::Slowloris && now >= c->next_ns && c->sent + 1 < c->bytes.size()) {
      write(c, {c->bytes[c->sent++]});  // never the last byte: the Hello never completes
      c->next_ns += 1000 * kMs;
    } else if (c->attack == Attack::NoRead && c->step == 2 && now >= c->next_ns) {
      c->next_ns += kNoReadInputMs * kMs;
      if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp)) < 64 * 1024)
        write(c, frame_input(++c->seq));  // valid inputs: the server's read side stays happy
    }
  }

  static std::string ms_since(const Conn* c, uint64_t t_ns) {
    return std::to_string((t_ns - c->started_ns) / kMs) + " ms of the connect";
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    for (Conn* c = head_.next; c != &head_;) {
      Conn* next = c->next;
      const bool held = c->attack == Attack::NoRead && c->step >= 2;
      if (!c->done) verdict(c, held ? Verdict::StillOpen : Verdict::Unfinished);
      close(c);
      c = next;
    }
    print_status(true);
    for (uv_timer_t* t : {&tick_, &status_, &end_}) uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    for (uv_signal_t& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  }

  // ---- output ----
  void print_status(bool last) {
    if (last && !tty_) return;
    const Counters t = r_.total();
    char line[320];
    std::snprintf(line, sizeof line,
                  "[%5.1fs] open %llu (slowloris %llu) | opened %llu expected %llu unexpected %llu capped %llu "
                  "connect_failed %llu | server closes %llu",
                  double(now_ns() - start_ns_) / 1e9, (unsigned long long)live(),
                  (unsigned long long)open_[size_t(Attack::Slowloris)], (unsigned long long)t.opened,
                  (unsigned long long)t.expected, (unsigned long long)t.unexpected, (unsigned long long)t.capped,
                  (unsigned long long)t.connect_failed, (unsigned long long)t.server_closes);
    if (tty_) std::printf("\r%s\033[K%s", line, last ? "\n" : "");
    else std::printf("%s\n", line);
    std::fflush(stdout);
  }

  int finish() const {
    const Counters t = r_.total();
    const uint64_t connected = t.opened - t.connect_failed;
    int rc = t.unexpected == 0 && connected > 0 ? 0 : 1;
    if (connected == 0) std::printf("no attack connection was established\n");
    if (!o_.report.empty()) {
      std::string error;
      if (write_report(o_, r_, rc, error)) {
        std::printf("report: %s\n", o_.report.c_str());
      } else {
        std::fprintf(stderr, "report: %s\n", error.c_str());
        rc = 1;
      }
    }
    std::printf("%s\n", rc == 0 ? "OK: the server answered every attack as PROTOCOL.md says"
                                : "FAILED: see the unexpected outcomes above");
    return rc;
  }

  // ---- bookkeeping ----
  Counters& k(Attack a) { return r_.by_attack[size_t(a)]; }
  Counters& k(const Conn* c) { return r_.by_attack[size_t(c->attack)]; }
  void link(Conn* c) {
    c->prev = head_.prev;
    c->next = &head_;
    head_.prev->next = c;
    head_.prev = c;
  }
  static void unlink(Conn* c) {
    c->prev->next = c->next;
    c->next->prev = c->prev;
  }

  Options o_;
  uint64_t rng_;
  uv_loop_t loop_{};
  uv_timer_t tick_{}, status_{}, end_{};
  uv_signal_t signals_[2]{};
  FrameEncoder enc_;
  std::vector<uint8_t> flood_batch_;
  std::vector<Attack> rate_attacks_;
  Conn head_{.prev = &head_, .next = &head_};
  Results r_;
  std::array<uint64_t, kAttacks> open_{};
  std::array<uint64_t, kAttacks> paused_until_{};  // ns; top-ups wait after a refusal
  std::vector<uint64_t> held_;                     // open connections by source address
  uint64_t start_ns_ = 0, flood_next_ns_ = 0, badinput_next_ns_ = 0;
  uint64_t rate_spawned_ = 0, rate_next_ = 0, wrongstate_next_ = 0, badinput_next_ = 0, names_ = 0;
  uint64_t next_source_ = 0, max_open_ = 0;
  bool stopping_ = false, tty_ = false;
};

}  // namespace

int run(const Options& o) {
  Hostile h(o);
  return h.run();
}

}  // namespace skirmish::hostile
