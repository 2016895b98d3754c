// The Agones SDK REST client. See agones.h for the contract.
//
// One call is one short HTTP/1.1 exchange on its own connection
// ("Connection: close"): connect, write the whole request, read until the
// status line, close. The status line is all we need (2xx or not), and a
// fresh connection per call leaves no keep-alive state to get wrong; calls
// come once every couple of seconds.
#include "master/agones.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>

#include "core/process.h"

namespace skirmish::master {

namespace {

// How often the poll timer looks at serving(), the health deadline and
// the player count: Ready goes out within this of the last worker coming
// up. Ten wakes a second of the master, which does nothing else then.
constexpr uint64_t kPollMs = 100;
constexpr int64_t kFailureLogEveryMs = 10'000;
// A status line is "HTTP/1.1 200 OK\r\n"; anything much longer is not one.
constexpr size_t kMaxStatusLine = 512;

template <typename T>
uv_handle_t* H(T* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

}  // namespace

struct AgonesSdk::Call {
  AgonesSdk* sdk = nullptr;
  Kind kind = Kind::Health;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t connect;
  uv_write_t write;
  std::string out;
  char in[kMaxStatusLine];
  size_t in_len = 0;
  int open_handles = 0;
  bool done = false;  // answered, failed, timed out or abandoned: callbacks ignored
};

bool AgonesSdk::port_from_env(uint16_t* port, std::string& error) {
  *port = 0;
  const char* v = std::getenv("AGONES_SDK_HTTP_PORT");
  if (v == nullptr) return true;
  const std::string s(v);
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos ||
      std::strtol(s.c_str(), nullptr, 10) < 1 || std::strtol(s.c_str(), nullptr, 10) > 65535) {
    error = "AGONES_SDK_HTTP_PORT = \"" + s.substr(0, 20) + "\" is not a port (allowed: 1..65535)";
    return false;
  }
  *port = uint16_t(std::strtol(s.c_str(), nullptr, 10));
  return true;
}

AgonesSdk::AgonesSdk(uv_loop_t* loop, const Options& opts, Hooks hooks)
    : loop_(loop), opts_(opts), hooks_(std::move(hooks)) {}

AgonesSdk::~AgonesSdk() = default;  // every handle is closed by shutdown()/close() before the loop ends

const char* AgonesSdk::name(Kind k) {
  switch (k) {
    case Kind::Ready: return "Ready";
    case Kind::Health: return "Health";
    case Kind::Counter: return "players Counter";
    case Kind::Shutdown: return "Shutdown";
  }
  return "?";
}

void AgonesSdk::start() {
  started_ms_ = core::monotonic_ms();
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<AgonesSdk*>(t->data)->poll(); }, 0, kPollMs);
  spdlog::info("agones: SDK server at 127.0.0.1:{}: Ready when every worker is up{}, Health every {} ms, "
               "calls time out after {} ms",
               opts_.port, opts_.send_ready ? "" : " (not sent: an upgrade's new master)",
               opts_.health_interval_ms, opts_.request_timeout_ms);
}

void AgonesSdk::poll() {
  const int64_t now = core::monotonic_ms();
  // Not while a Ready is in flight: it may yet be accepted, and a second
  // one after it would be sent for nothing.
  const bool ready_in_flight = inflight_ != nullptr && inflight_->kind == Kind::Ready;
  if (opts_.send_ready && !ready_done_ && !ready_due_ && !ready_in_flight && now >= next_ready_ms_ &&
      hooks_.serving && hooks_.serving())
    ready_due_ = true;
  if (now >= next_health_ms_) {
    health_due_ = true;
    next_health_ms_ = now + opts_.health_interval_ms;
  }
  if (hooks_.players && !counter_due_ && now >= next_counter_ms_) {
    const uint32_t n = hooks_.players();
    if (n != players_sent_) {
      counter_due_ = true;
      players_pending_ = n;
      next_counter_ms_ = now + opts_.health_interval_ms;  // at most one update per interval
    }
  }
  pump();
}

void AgonesSdk::pump() {
  if (inflight_ != nullptr) return;
  if (shutdown_due_) {
    shutdown_due_ = false;
    begin(Kind::Shutdown);
  } else if (closing_) {
    return;
  } else if (ready_due_) {
    ready_due_ = false;
    begin(Kind::Ready);
  } else if (health_due_) {
    health_due_ = false;
    begin(Kind::Health);
  } else if (counter_due_) {
    counter_due_ = false;
    begin(Kind::Counter);
  }
}

void AgonesSdk::begin(Kind kind) {
  auto* c = new Call;
  c->sdk = this;
  c->kind = kind;
  const char* method = "POST";
  const char* path = "/health";
  std::string body = "{}";
  switch (kind) {
    case Kind::Ready: path = "/ready"; break;
    case Kind::Health: break;
    case Kind::Shutdown: path = "/shutdown"; break;
    case Kind::Counter:
      // int64 fields travel as JSON strings (proto3's JSON mapping), as
      // Agones' own examples write them.
      method = "PATCH";
      path = "/v1beta1/counters/players";
      body = "{\"count\":\"" + std::to_string(players_pending_) + "\",\"capacity\":\"" +
             std::to_string(opts_.player_capacity) + "\"}";
      break;
  }
  c->out = std::string(method) + " " + path + " HTTP/1.1\r\nHost: localhost:" + std::to_string(opts_.port) +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  inflight_ = c;
  ++stats_.calls;

  uv_tcp_init(loop_, &c->tcp);
  uv_timer_init(loop_, &c->timer);
  c->open_handles = 2;
  c->tcp.data = c;
  c->timer.data = c;
  c->connect.data = c;
  c->write.data = c;
  uv_timer_start(
      &c->timer,
      [](uv_timer_t* t) {
        auto* call = static_cast<Call*>(t->data);
        call->sdk->finished(call, -2, "no answer in time");
      },
      opts_.request_timeout_ms, 0);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", opts_.port, &addr);
  const int r = uv_tcp_connect(&c->connect, &c->tcp, reinterpret_cast<const sockaddr*>(&addr), [](uv_connect_t* req,
                                                                                                  int status) {
    auto* call = static_cast<Call*>(req->data);
    if (call->done) return;
    if (status < 0) {
      call->sdk->finished(call, -1, uv_strerror(status));
      return;
    }
    auto* stream = reinterpret_cast<uv_stream_t*>(&call->tcp);
    uv_buf_t buf = uv_buf_init(call->out.data(), unsigned(call->out.size()));
    const int w = uv_write(&call->write, stream, &buf, 1, [](uv_write_t* wr, int st) {
      auto* cl = static_cast<Call*>(wr->data);
      if (!cl->done && st < 0) cl->sdk->finished(cl, -1, uv_strerror(st));
    });
    if (w < 0) {
      call->sdk->finished(call, -1, uv_strerror(w));
      return;
    }
    uv_read_start(
        stream,
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* cl = static_cast<Call*>(h->data);
          *b = uv_buf_init(cl->in + cl->in_len, unsigned(sizeof cl->in - cl->in_len));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
          auto* cl = static_cast<Call*>(s->data);
          if (cl->done || n == 0) return;
          if (n < 0) {
            cl->sdk->finished(cl, -1, n == UV_EOF ? "closed before answering" : uv_strerror(int(n)));
            return;
          }
          cl->in_len += size_t(n);
          const char* eol = static_cast<const char*>(std::memchr(cl->in, '\n', cl->in_len));
          if (eol == nullptr) {
            if (cl->in_len == sizeof cl->in) cl->sdk->finished(cl, -1, "not an HTTP answer");
            return;
          }
          // "HTTP/1.1 200 OK": the three digits after the first space.
          int code = -1;
          const std::string line(cl->in, size_t(eol - cl->in));
          const auto sp = line.find(' ');
          if (line.rfind("HTTP/1.", 0) == 0 && sp != std::string::npos && sp + 4 <= line.size() &&
              line.find_first_not_of("0123456789", sp + 1) >= sp + 4)
            code = std::atoi(line.c_str() + sp + 1);
          cl->sdk->finished(cl, code < 100 || code > 999 ? -1 : code, code < 100 ? "not an HTTP answer" : nullptr);
        });
  });
  if (r < 0) finished(c, -1, uv_strerror(r));
}

void AgonesSdk::finished(Call* c, int status, const char* why) {
  if (c->done) return;
  c->done = true;
  if (inflight_ == c) inflight_ = nullptr;
  uv_timer_stop(&c->timer);
  const auto on_close = [](uv_handle_t* h) {
    auto* call = static_cast<Call*>(h->data);
    if (--call->open_handles == 0) delete call;
  };
  uv_close(H(&c->tcp), on_close);
  uv_close(H(&c->timer), on_close);

  const Kind kind = c->kind;
  const int64_t now = core::monotonic_ms();
  if (status == -3) {
    // Abandoned by shutdown()/close(): neither an answer nor a failure.
  } else if (status >= 200 && status < 300) {
    ++stats_.ok;
    if (failing_) {
      spdlog::info("agones: the SDK server answers again ({} failed and {} timed-out calls in all)", stats_.failed,
                   stats_.timed_out);
      failing_ = false;
      fails_since_log_ = 0;
    }
    switch (kind) {
      case Kind::Ready:
        ++stats_.ready_ok;
        ready_done_ = true;
        spdlog::info("agones: Ready accepted {} ms after start", now - started_ms_);
        break;
      case Kind::Health: ++stats_.health_ok; break;
      case Kind::Counter:
        ++stats_.counter_ok;
        players_sent_ = players_pending_;
        break;
      case Kind::Shutdown:
        ++stats_.shutdown_ok;
        spdlog::info("agones: Shutdown accepted");
        break;
    }
  } else {
    std::string text = why != nullptr ? why : "answered HTTP " + std::to_string(status);
    if (status == -2)
      ++stats_.timed_out;
    else
      ++stats_.failed;
    // Ready is tried again one interval later; Health and the Counter come
    // round again by themselves.
    if (kind == Kind::Ready) next_ready_ms_ = now + opts_.health_interval_ms;
    log_failure(kind, text.c_str());
  }

  if (kind == Kind::Shutdown) {
    close_timer();
    return;
  }
  if (!closing_) pump();
}

void AgonesSdk::log_failure(Kind kind, const char* why) {
  ++fails_since_log_;
  failing_ = true;
  const int64_t now = core::monotonic_ms();
  // Shutdown is the last call: always said.
  if (kind != Kind::Shutdown && now - last_fail_log_ms_ < kFailureLogEveryMs) return;
  last_fail_log_ms_ = now;
  spdlog::warn("agones: {} to 127.0.0.1:{} failed: {} ({} failures since the last such line; {} calls, {} ok, {} "
               "failed, {} timed out in all)",
               name(kind), opts_.port, why, fails_since_log_, stats_.calls, stats_.ok, stats_.failed,
               stats_.timed_out);
  fails_since_log_ = 0;
}

void AgonesSdk::shutdown() {
  if (closing_) return;
  closing_ = true;
  ready_due_ = health_due_ = counter_due_ = false;
  if (timer_ != nullptr) uv_timer_stop(timer_);
  if (inflight_ != nullptr) finished(inflight_, -3, nullptr);
  shutdown_due_ = true;
  pump();
}

void AgonesSdk::close() {
  if (closing_) return;
  closing_ = true;
  ready_due_ = health_due_ = counter_due_ = shutdown_due_ = false;
  if (inflight_ != nullptr) finished(inflight_, -3, nullptr);
  close_timer();
}

void AgonesSdk::close_timer() {
  if (timer_ == nullptr) return;
  uv_close(H(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_ = nullptr;
}

}  // namespace skirmish::master
