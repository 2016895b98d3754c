// skirmish-bench: the load side of the hand-off benchmark (bench/README.md).
//
// One process, one libuv loop, non-blocking sockets, the real frame codec.
// Two measurements, against a skirmish-server or against the plain echo
// server (bench/echo_server.cpp, flag --echo):
//
//   --mode handoff  opens --total connections, at most --conns open at any
//                   moment (a sliding window: a finished one makes room for
//                   the next). Each sends Hello, waits for Welcome, closes.
//                   Figures: completed handshakes per second over the whole
//                   run, and connect->Welcome latency p50/p99 (the clock
//                   starts just before connect(), so it includes the accept
//                   queue, the hand-off to a worker and the Hello/Welcome
//                   round trip).
//   --mode ping     opens --conns connections, handshakes them all, then each
//                   keeps exactly one Ping in flight (send, wait for the Pong
//                   with the same nonce, send the next). After --warmup-s the
//                   round trips of --duration-s are counted. Figures: round
//                   trips per second and RTT p50/p99.
//
// Against the echo server the echoed Hello frame stands for Welcome and the
// echoed Ping frame for Pong, so both servers answer each request with one
// frame in one round trip.
//
// Output: one line on stdout, "result key=value ...", for the script to
// tabulate; one human line on stderr. Exit 0 when the run measured something
// (failed connections are counted, not fatal), 1 when it could not (nothing
// completed, the deadline hit), 2 on bad flags.
//
// Bounds: only loopback hosts (127.0.0.0/8); at most --total connections are
// ever attempted; --timeout-s stops everything; each socket closes on the
// first unexpected frame, decode error, EOF or failure.
#include <arpa/inet.h>
#include <sys/resource.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/codec.h"
#include "loadtest/histogram.h"

namespace proto = skirmish::proto;
using LatencyHistogram = skirmish::loadtest::Histogram;

namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr int kMaxErrorLines = 5;  // Error frames printed to stderr, then counted only
// Ping mode: connections not through their handshake by then are dropped
// (counted in setup_failed) and the measurement starts with the rest.
constexpr uint64_t kSetupTimeoutMs = 15000;

enum class Mode { Handoff, Ping };
enum class Phase { Setup, Warmup, Measure, Done };
enum class ConnState { Connecting, Handshaking, Ready, Closing };

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string mode_name = "handoff";
  Mode mode = Mode::Handoff;
  uint32_t conns = 1000;
  uint32_t total = 20000;
  double duration_s = 5.0;
  double warmup_s = 0.5;
  double timeout_s = 0;  // 0 = derived from the mode
  std::string label = "skirmish";
  bool echo = false;
};

struct Bench;

struct Conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  Bench* bench = nullptr;
  proto::FrameDecoder dec;
  ConnState state = ConnState::Connecting;
  uint64_t t_connect_ns = 0;  // just before connect()
  uint64_t t_sent_ns = 0;     // the Ping in flight
  uint32_t nonce = 0;         // its nonce
  bool in_flight = false;
  bool writing = false;
  std::vector<uint8_t> inflight;  // bytes handed to uv_write
  std::vector<uint8_t> queued;    // bytes waiting for that write to finish
  size_t index = 0;               // slot in Bench::conns (ping mode)
};

struct Stats {
  uint64_t attempted = 0;
  uint64_t completed = 0;  // handshakes (handoff) or round trips (ping)
  uint64_t failed = 0;     // connections that ended before their work was done
  uint64_t connect_errors = 0;
  uint64_t error_frames = 0;
  uint64_t decode_errors = 0;
  uint64_t early_eof = 0;
  LatencyHistogram latency_ns;
};

struct Bench {
  Options opt;
  uv_loop_t* loop = nullptr;
  sockaddr_in addr{};
  proto::FrameEncoder enc{256};
  std::vector<uint8_t> hello_frame;
  proto::Message handshake_reply = proto::Message::Welcome;
  proto::Message ping_reply = proto::Message::Pong;

  Phase phase = Phase::Setup;
  uint64_t alive = 0;        // Conn objects not yet freed (each may hold an fd)
  uint64_t ready = 0;        // ping mode: connections past the handshake
  uint64_t setup_failed = 0; // ping mode: connections lost before the measurement
  std::vector<Conn*> conns;  // ping mode: every connection, nullptr once closed
  uint32_t next_nonce = 1;
  int error_lines = 0;
  bool timed_out = false;

  uint64_t t_start_ns = 0, t_end_ns = 0;
  rusage ru_start{}, ru_end{};
  Stats stats;

  uv_timer_t phase_timer;   // warm-up end, measurement end
  uv_timer_t deadline;      // --timeout-s
  bool timers_closed = false;
};

uint64_t now_ns() { return uv_hrtime(); }

double cpu_seconds(const rusage& r) {
  return double(r.ru_utime.tv_sec) + double(r.ru_utime.tv_usec) / 1e6 + double(r.ru_stime.tv_sec) +
         double(r.ru_stime.tv_usec) / 1e6;
}

// ---- connections ----

void on_closed(uv_handle_t* h);
void on_connect(uv_connect_t* req, int status);
void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf);
void on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf);
void refill(Bench* b);
void maybe_finish(Bench* b);
void start_measurement(Bench* b);

// Ping mode: every connection has been opened and has either finished its
// handshake or failed, so the measurement can start.
bool setup_complete(const Bench* b) {
  return b->phase == Phase::Setup && b->conns.size() == b->opt.conns && b->ready + b->setup_failed >= b->opt.conns;
}

void close_conn(Conn* c) {
  if (c->state == ConnState::Closing) return;
  c->state = ConnState::Closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
}

// A connection that ended before its work was done.
void fail_conn(Conn* c) {
  Bench* b = c->bench;
  if (c->state == ConnState::Closing) return;
  if (b->opt.mode == Mode::Handoff) {
    ++b->stats.failed;
  } else if (b->phase == Phase::Setup) {
    ++b->setup_failed;
  } else if (b->phase != Phase::Done) {
    ++b->stats.failed;
  }
  close_conn(c);
  if (b->opt.mode == Mode::Ping && setup_complete(b)) start_measurement(b);
}

void on_write_done(uv_write_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  c->writing = false;
  c->inflight.clear();
  if (c->state == ConnState::Closing) return;
  if (status < 0) {
    fail_conn(c);
    return;
  }
  if (!c->queued.empty()) {
    c->inflight.swap(c->queued);
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(c->inflight.data()), unsigned(c->inflight.size()));
    c->write_req.data = c;
    c->writing = true;
    if (uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, on_write_done) < 0) {
      c->writing = false;
      fail_conn(c);
    }
  }
}

// Sends a frame: straight to the socket when nothing is queued (the usual
// case: one small frame in flight), else behind what is.
bool send_frame(Conn* c, std::span<const uint8_t> frame) {
  if (c->writing) {
    c->queued.insert(c->queued.end(), frame.begin(), frame.end());
    return true;
  }
  uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(frame.data())), unsigned(frame.size()));
  int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1);
  if (n < 0 && n != UV_EAGAIN) return false;
  size_t done = n > 0 ? size_t(n) : 0;
  if (done == frame.size()) return true;
  c->inflight.assign(frame.begin() + ptrdiff_t(done), frame.end());
  buf = uv_buf_init(reinterpret_cast<char*>(c->inflight.data()), unsigned(c->inflight.size()));
  c->write_req.data = c;
  c->writing = true;
  if (uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, on_write_done) < 0) {
    c->writing = false;
    return false;
  }
  return true;
}

bool send_ping(Conn* c) {
  Bench* b = c->bench;
  c->nonce = b->next_nonce++;
  c->t_sent_ns = now_ns();
  c->in_flight = true;
  auto& fb = b->enc.builder();
  auto frame = b->enc.finish(proto::CreatePing(fb, uint32_t(c->t_sent_ns / 1000), c->nonce));
  return send_frame(c, frame);
}

void open_conn(Bench* b) {
  auto* c = new Conn();
  c->bench = b;
  c->tcp.data = c;
  c->connect_req.data = c;
  ++b->alive;
  ++b->stats.attempted;
  if (b->opt.mode == Mode::Ping) {
    c->index = b->conns.size();
    b->conns.push_back(c);
  }
  int r = uv_tcp_init(b->loop, &c->tcp);
  if (r != 0) {  // no handle to close
    ++b->stats.connect_errors;
    if (b->opt.mode == Mode::Ping) {
      b->conns[c->index] = nullptr;
      ++b->setup_failed;
    } else {
      ++b->stats.failed;
    }
    --b->alive;
    delete c;
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->t_connect_ns = now_ns();
  r = uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<const sockaddr*>(&b->addr), on_connect);
  if (r != 0) {
    ++b->stats.connect_errors;
    if (b->error_lines < kMaxErrorLines) {
      ++b->error_lines;
      std::fprintf(stderr, "[%s] connect: %s\n", b->opt.label.c_str(), uv_strerror(r));
    }
    fail_conn(c);
  }
}

void on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  Bench* b = c->bench;
  if (c->state == ConnState::Closing) return;  // closed under us (deadline)
  if (status < 0) {
    ++b->stats.connect_errors;
    if (b->error_lines < kMaxErrorLines) {
      ++b->error_lines;
      std::fprintf(stderr, "[%s] connect: %s\n", b->opt.label.c_str(), uv_strerror(status));
    }
    fail_conn(c);
    return;
  }
  c->state = ConnState::Handshaking;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read) != 0 ||
      !send_frame(c, b->hello_frame)) {
    fail_conn(c);
  }
}

// One read buffer for the whole loop: libuv calls read right after alloc for
// the same stream, and on_read consumes it completely (the decoder copies a
// split frame into its own buffer).
alignas(8) uint8_t g_read_buf[kReadBufferBytes];

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(reinterpret_cast<char*>(g_read_buf), sizeof g_read_buf);
}

// Returns false when the connection is done with (closed or failing).
bool on_frame(Conn* c, const proto::Frame& f) {
  Bench* b = c->bench;
  if (f.type == proto::Message::Error) {
    ++b->stats.error_frames;
    if (b->error_lines < kMaxErrorLines) {
      ++b->error_lines;
      const auto* e = f.envelope->msg_as_Error();
      std::fprintf(stderr, "[%s] server sent Error %s: %s\n", b->opt.label.c_str(),
                   proto::EnumNameErrorCode(e->code()), e->text() ? e->text()->c_str() : "");
    }
    fail_conn(c);
    return false;
  }
  if (c->state == ConnState::Handshaking) {
    if (f.type != b->handshake_reply) return true;  // not ours; keep waiting
    if (b->opt.mode == Mode::Handoff) {
      b->stats.latency_ns.record(now_ns() - c->t_connect_ns);
      ++b->stats.completed;
      close_conn(c);
      return false;
    }
    c->state = ConnState::Ready;
    ++b->ready;
    if (setup_complete(b)) start_measurement(b);
    return true;
  }
  if (c->state != ConnState::Ready || f.type != b->ping_reply) return true;
  uint32_t nonce = b->ping_reply == proto::Message::Pong ? f.envelope->msg_as_Pong()->nonce()
                                                         : f.envelope->msg_as_Ping()->nonce();
  if (!c->in_flight || nonce != c->nonce) return true;  // stale; ignore
  c->in_flight = false;
  if (b->phase == Phase::Measure) {
    b->stats.latency_ns.record(now_ns() - c->t_sent_ns);
    ++b->stats.completed;
  }
  if (b->phase == Phase::Warmup || b->phase == Phase::Measure) {
    if (!send_ping(c)) {
      fail_conn(c);
      return false;
    }
  }
  return true;
}

void on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(st->data);
  Bench* b = c->bench;
  if (nread == 0 || c->state == ConnState::Closing) return;
  if (nread < 0) {
    ++b->stats.early_eof;
    fail_conn(c);
    return;
  }
  auto err = c->dec.feed(reinterpret_cast<const uint8_t*>(buf->base), size_t(nread),
                         [&](const proto::Frame& f) { return on_frame(c, f); });
  if (err != proto::DecodeError::None) {
    ++b->stats.decode_errors;
    if (b->error_lines < kMaxErrorLines) {
      ++b->error_lines;
      std::fprintf(stderr, "[%s] decode: %s\n", b->opt.label.c_str(), proto::to_string(err));
    }
    fail_conn(c);
  }
}

void on_closed(uv_handle_t* h) {
  auto* c = static_cast<Conn*>(h->data);
  Bench* b = c->bench;
  if (b->opt.mode == Mode::Ping) b->conns[c->index] = nullptr;
  delete c;
  --b->alive;
  refill(b);
  maybe_finish(b);
}

// ---- phases ----

void close_timers(Bench* b) {
  if (b->timers_closed) return;
  b->timers_closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&b->phase_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&b->deadline), nullptr);
}

void end_measurement(Bench* b) {
  if (b->phase == Phase::Done) return;
  if (b->t_start_ns == 0) {  // never started (deadline during set-up)
    b->t_start_ns = now_ns();
    getrusage(RUSAGE_SELF, &b->ru_start);
  }
  b->phase = Phase::Done;
  b->t_end_ns = now_ns();
  getrusage(RUSAGE_SELF, &b->ru_end);
  for (Conn* c : b->conns)
    if (c != nullptr) close_conn(c);
  maybe_finish(b);
}

void begin_measure(Bench* b) {
  b->phase = Phase::Measure;
  b->t_start_ns = now_ns();
  getrusage(RUSAGE_SELF, &b->ru_start);
  uv_timer_start(
      &b->phase_timer, [](uv_timer_t* t) { end_measurement(static_cast<Bench*>(t->data)); },
      uint64_t(b->opt.duration_s * 1000), 0);
}

void start_measurement(Bench* b) {
  if (b->phase != Phase::Setup) return;
  if (b->ready == 0) {  // every connection failed: nothing to measure
    end_measurement(b);
    return;
  }
  b->phase = Phase::Warmup;
  for (Conn* c : b->conns)
    if (c != nullptr && c->state == ConnState::Ready && !send_ping(c)) fail_conn(c);
  if (b->opt.warmup_s <= 0) {
    begin_measure(b);
    return;
  }
  uv_timer_start(
      &b->phase_timer,
      [](uv_timer_t* t) {
        auto* bb = static_cast<Bench*>(t->data);
        if (bb->phase == Phase::Warmup) begin_measure(bb);
      },
      uint64_t(b->opt.warmup_s * 1000), 0);
}

// Handoff mode: keep the window full until --total have been attempted.
void refill(Bench* b) {
  if (b->opt.mode != Mode::Handoff || b->phase == Phase::Done) return;
  while (b->alive < b->opt.conns && b->stats.attempted < b->opt.total) open_conn(b);
}

void maybe_finish(Bench* b) {
  if (b->opt.mode == Mode::Handoff && b->phase != Phase::Done && b->alive == 0 &&
      b->stats.attempted >= b->opt.total) {
    b->phase = Phase::Done;
    b->t_end_ns = now_ns();
    getrusage(RUSAGE_SELF, &b->ru_end);
  }
  if (b->phase == Phase::Done && b->alive == 0) close_timers(b);
}

void on_deadline(uv_timer_t* t) {
  auto* b = static_cast<Bench*>(t->data);
  b->timed_out = true;
  std::fprintf(stderr, "[%s] deadline of %.0f s reached; stopping\n", b->opt.label.c_str(), b->opt.timeout_s);
  if (b->opt.mode == Mode::Handoff) {
    if (b->phase != Phase::Done) {
      b->phase = Phase::Done;
      b->t_end_ns = now_ns();
      getrusage(RUSAGE_SELF, &b->ru_end);
    }
  } else {
    end_measurement(b);
  }
  // Close whatever is still open; handoff connections are not in b->conns.
  uv_walk(
      b->loop,
      [](uv_handle_t* h, void*) {
        if (h->type == UV_TCP && !uv_is_closing(h)) close_conn(static_cast<Conn*>(h->data));
      },
      nullptr);
  close_timers(b);
}

// ---- self-check of the histogram (no I/O) ----

int self_test() {
  LatencyHistogram h;
  std::vector<uint64_t> v;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 200000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t s = (x % 5000000) + (i % 3 == 0 ? 0 : x % 100);  // 0..5 ms in ns
    v.push_back(s);
    h.record(s);
  }
  std::sort(v.begin(), v.end());
  int bad = 0;
  for (double q : {0.5, 0.9, 0.99, 0.999, 1.0}) {
    uint64_t exact = v[size_t(std::max(1.0, q * double(v.size()) + 0.999999)) - 1];
    uint64_t got = h.quantile(q);
    double rel = exact == 0 ? 0 : std::abs(double(got) - double(exact)) / double(exact);
    std::printf("q=%.3f exact=%" PRIu64 " got=%" PRIu64 " rel_err=%.4f\n", q, exact, got, rel);
    if (rel > 1.0 / 64) ++bad;
  }
  for (uint64_t s : {uint64_t(0), uint64_t(1), uint64_t(127), uint64_t(128), uint64_t(255), uint64_t(256),
                     uint64_t(1) << 40, ~uint64_t(0)}) {
    size_t i = LatencyHistogram::index_of(s);
    if (i >= LatencyHistogram::kBuckets || s < LatencyHistogram::lower_of(i) ||
        s - LatencyHistogram::lower_of(i) >= LatencyHistogram::width_of(i)) {
      std::printf("bucket of %" PRIu64 " wrong: index %zu\n", s, i);
      ++bad;
    }
  }
  std::printf(bad == 0 ? "histogram self-test ok\n" : "histogram self-test FAILED\n");
  return bad == 0 ? 0 : 1;
}

bool is_loopback_v4(const std::string& host, sockaddr_in* out, uint16_t port) {
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  if ((ntohl(a.s_addr) >> 24) != 127) return false;
  return uv_ip4_addr(host.c_str(), port, out) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  bool run_self_test = false;
  CLI::App app{"skirmish-bench: connection hand-off and ping-pong benchmark client (bench/README.md)"};
  app.add_option("--host", opt.host, "server address; loopback only (127.0.0.0/8)");
  app.add_option("--port", opt.port, "server port")->check(CLI::Range(1, 65535));
  app.add_option("--mode", opt.mode_name, "handoff | ping")->check(CLI::IsMember({"handoff", "ping"}));
  app.add_option("--conns", opt.conns, "handoff: most connections open at once; ping: connections")
      ->check(CLI::Range(1, 60000));
  app.add_option("--total", opt.total, "handoff: connections opened in all")->check(CLI::Range(1, 1000000));
  app.add_option("--duration-s", opt.duration_s, "ping: measured seconds")->check(CLI::Range(0.1, 600.0));
  app.add_option("--warmup-s", opt.warmup_s, "ping: seconds of pings before the measurement")
      ->check(CLI::Range(0.0, 60.0));
  app.add_option("--timeout-s", opt.timeout_s, "hard stop for the whole run (0 = mode default)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--label", opt.label, "name printed with the figures");
  app.add_flag("--echo", opt.echo, "the peer is the echo server: the echoed Hello/Ping stand for Welcome/Pong");
  app.add_flag("--self-test", run_self_test, "check the latency histogram and exit");
  CLI11_PARSE(app, argc, argv);
  if (run_self_test) return self_test();

  Bench b;
  b.opt = opt;
  b.opt.mode = opt.mode_name == "ping" ? Mode::Ping : Mode::Handoff;
  if (b.opt.port == 0) {
    std::fprintf(stderr, "skirmish-bench: --port is required\n");
    return 2;
  }
  if (!is_loopback_v4(b.opt.host, &b.addr, b.opt.port)) {
    std::fprintf(stderr, "skirmish-bench: --host %s refused: only IPv4 loopback (127.0.0.0/8) is allowed\n",
                 b.opt.host.c_str());
    return 2;
  }
  if (b.opt.timeout_s == 0)
    b.opt.timeout_s = b.opt.mode == Mode::Ping ? b.opt.warmup_s + b.opt.duration_s + 30 : 120;
  if (b.opt.echo) {
    b.handshake_reply = proto::Message::Hello;
    b.ping_reply = proto::Message::Ping;
  }
  {
    auto& fb = b.enc.builder();
    auto f = b.enc.finish(proto::CreateHelloDirect(fb, proto::ProtocolVersion::Current, "bot"));
    b.hello_frame.assign(f.begin(), f.end());
  }
  signal(SIGPIPE, SIG_IGN);

  b.loop = uv_default_loop();
  uv_timer_init(b.loop, &b.phase_timer);
  uv_timer_init(b.loop, &b.deadline);
  b.phase_timer.data = &b;
  b.deadline.data = &b;
  uv_timer_start(&b.deadline, on_deadline, uint64_t(b.opt.timeout_s * 1000), 0);

  if (b.opt.mode == Mode::Handoff) {
    b.phase = Phase::Measure;
    b.t_start_ns = now_ns();
    getrusage(RUSAGE_SELF, &b.ru_start);
    refill(&b);
    maybe_finish(&b);
  } else {
    b.conns.reserve(b.opt.conns);
    uv_timer_start(
        &b.phase_timer,
        [](uv_timer_t* t) {
          auto* bb = static_cast<Bench*>(t->data);
          if (bb->phase != Phase::Setup) return;
          std::fprintf(stderr, "[%s] %" PRIu64 " of %u connections ready after %" PRIu64 " ms; starting with those\n",
                       bb->opt.label.c_str(), bb->ready, bb->opt.conns, kSetupTimeoutMs);
          for (Conn* c : bb->conns)
            if (c != nullptr && c->state != ConnState::Ready) fail_conn(c);
          start_measurement(bb);
        },
        kSetupTimeoutMs, 0);
    for (uint32_t i = 0; i < b.opt.conns; ++i) open_conn(&b);
    if (setup_complete(&b)) start_measurement(&b);
  }
  uv_run(b.loop, UV_RUN_DEFAULT);
  uv_loop_close(b.loop);

  const Stats& s = b.stats;
  double elapsed_s = double(b.t_end_ns - b.t_start_ns) / 1e9;
  double rate = elapsed_s > 0 ? double(s.completed) / elapsed_s : 0;
  double cpu_pct = elapsed_s > 0 ? 100.0 * (cpu_seconds(b.ru_end) - cpu_seconds(b.ru_start)) / elapsed_s : 0;
  uint64_t conns = b.opt.mode == Mode::Ping ? b.ready : b.opt.conns;
  auto us = [](uint64_t ns) { return double(ns) / 1000.0; };
  std::printf(
      "result label=%s mode=%s conns=%" PRIu64 " attempted=%" PRIu64 " completed=%" PRIu64 " failed=%" PRIu64
      " setup_failed=%" PRIu64 " connect_errors=%" PRIu64 " error_frames=%" PRIu64 " early_eof=%" PRIu64
      " decode_errors=%" PRIu64 " elapsed_s=%.3f rate_per_s=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f"
      " client_cpu_pct=%.0f timed_out=%d\n",
      b.opt.label.c_str(), b.opt.mode_name.c_str(), conns, s.attempted, s.completed, s.failed, b.setup_failed,
      s.connect_errors, s.error_frames, s.early_eof, s.decode_errors, elapsed_s, rate,
      us(s.latency_ns.quantile(0.50)), us(s.latency_ns.quantile(0.99)), us(s.latency_ns.max()), cpu_pct,
      b.timed_out ? 1 : 0);
  std::fflush(stdout);
  std::fprintf(stderr, "[%s] %s conns=%" PRIu64 ": %" PRIu64 " done in %.2f s = %.0f/s, p50 %.0f us, p99 %.0f us"
               ", %" PRIu64 " failed, client cpu %.0f%%\n",
               b.opt.label.c_str(), b.opt.mode_name.c_str(), conns, s.completed, elapsed_s, rate,
               us(s.latency_ns.quantile(0.50)), us(s.latency_ns.quantile(0.99)), s.failed + b.setup_failed,
               cpu_pct);
  if (b.timed_out || s.completed == 0) return 1;
  return 0;
}
