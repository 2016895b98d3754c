// skirmish-echo-server: the baseline of the hand-off benchmark (bench/README.md).
//
// One process, one libuv loop: listen, accept, write every byte read back to
// its sender; no framing, no parsing, no timers per connection. It is what a
// single-process libuv server costs when it does nothing, so skirmish's
// figures divided by its figures say what the game server's accept path,
// hand-off, handshake and dispatch cost on top of libuv and the kernel.
//
// Same socket options as the game server's sessions (TCP_NODELAY, listen
// backlog 1024), so the comparison is of work done, not of tuning.
//
// Prints "listening on 127.0.0.1:PORT" on stdout once it listens (--port 0
// lets the OS pick). Loopback only. Stops on SIGTERM/SIGINT, or by itself
// after --max-seconds so a crashed benchmark script cannot leave it behind.
//
// Back-pressure: a peer that does not read what it is sent gets at most
// kMaxPendingBytes buffered; then the server stops reading from it until the
// backlog drains, so memory per connection stays bounded.
#include <arpa/inet.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr size_t kMaxPendingBytes = 256 * 1024;
constexpr int kBacklog = 1024;

struct Client {
  uv_tcp_t tcp;
  uv_write_t req;
  bool writing = false;
  bool reading = true;
  std::vector<char> inflight;  // handed to uv_write
  std::vector<char> pending;   // arrived while a write was in flight
};

struct Server {
  uv_loop_t* loop = nullptr;
  uv_tcp_t listener;
  uv_signal_t sigterm, sigint;
  uv_timer_t lifetime;
  uint64_t accepted = 0;
};

alignas(8) char g_read_buf[kReadBufferBytes];

void on_closed(uv_handle_t* h) { delete static_cast<Client*>(h->data); }

void close_client(Client* c) {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp)))
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
}

void on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf);

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(g_read_buf, sizeof g_read_buf); }

void start_write(Client* c);

void on_write_done(uv_write_t* req, int status) {
  auto* c = static_cast<Client*>(req->data);
  c->writing = false;
  c->inflight.clear();
  if (status < 0) {
    close_client(c);
    return;
  }
  if (!c->pending.empty()) {
    c->inflight.swap(c->pending);
    start_write(c);
    return;
  }
  if (!c->reading) {
    c->reading = true;
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read) != 0) close_client(c);
  }
}

void start_write(Client* c) {
  uv_buf_t b = uv_buf_init(c->inflight.data(), unsigned(c->inflight.size()));
  c->req.data = c;
  c->writing = true;
  if (uv_write(&c->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, on_write_done) != 0) {
    c->writing = false;
    close_client(c);
  }
}

void on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Client*>(st->data);
  if (nread == 0) return;
  if (nread < 0) {  // EOF or reset
    close_client(c);
    return;
  }
  if (c->writing) {
    c->pending.insert(c->pending.end(), buf->base, buf->base + nread);
    if (c->pending.size() + c->inflight.size() > kMaxPendingBytes) {
      c->reading = false;
      uv_read_stop(st);
    }
    return;
  }
  // The usual case: the kernel takes it all at once, nothing is copied.
  uv_buf_t b = uv_buf_init(buf->base, unsigned(nread));
  int n = uv_try_write(st, &b, 1);
  if (n < 0 && n != UV_EAGAIN) {
    close_client(c);
    return;
  }
  size_t done = n > 0 ? size_t(n) : 0;
  if (done == size_t(nread)) return;
  c->inflight.assign(buf->base + done, buf->base + nread);
  start_write(c);
}

void on_connection(uv_stream_t* listener, int status) {
  auto* s = static_cast<Server*>(listener->data);
  if (status < 0) {
    std::fprintf(stderr, "echo: accept: %s\n", uv_strerror(status));
    return;
  }
  auto* c = new Client();
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    close_client(c);
    return;
  }
  ++s->accepted;
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read) != 0) close_client(c);
}

void stop(Server* s) {
  // Closing every handle lets uv_run return.
  uv_walk(
      s->loop,
      [](uv_handle_t* h, void* arg) {
        auto* srv = static_cast<Server*>(arg);
        if (uv_is_closing(h)) return;
        if (h->type == UV_TCP && h != reinterpret_cast<uv_handle_t*>(&srv->listener)) {
          close_client(static_cast<Client*>(h->data));
        } else {
          uv_close(h, nullptr);
        }
      },
      s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  double max_seconds = 900;
  CLI::App app{"skirmish-echo-server: single-process libuv echo server, the benchmark's baseline"};
  app.add_option("--host", host, "listen address; loopback only (127.0.0.0/8)");
  app.add_option("--port", port, "listen port; 0 = the OS picks");
  app.add_option("--max-seconds", max_seconds, "exit after this long whatever happens")
      ->check(CLI::Range(1.0, 86400.0));
  CLI11_PARSE(app, argc, argv);

  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "skirmish-echo-server: --host %s refused: only IPv4 loopback (127.0.0.0/8)\n",
                 host.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  Server s;
  s.loop = uv_default_loop();
  uv_tcp_init(s.loop, &s.listener);
  s.listener.data = &s;
  sockaddr_in addr{};
  uv_ip4_addr(host.c_str(), port, &addr);
  int r = uv_tcp_bind(&s.listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&s.listener), kBacklog, on_connection);
  if (r != 0) {
    std::fprintf(stderr, "skirmish-echo-server: cannot listen on %s:%u: %s\n", host.c_str(), port, uv_strerror(r));
    return 1;
  }
  sockaddr_in got{};
  int len = sizeof got;
  uv_tcp_getsockname(&s.listener, reinterpret_cast<sockaddr*>(&got), &len);
  std::printf("listening on %s:%u\n", host.c_str(), unsigned(ntohs(got.sin_port)));
  std::fflush(stdout);

  for (uv_signal_t* sig : {&s.sigterm, &s.sigint}) {
    uv_signal_init(s.loop, sig);
    sig->data = &s;
  }
  auto on_signal = [](uv_signal_t* sig, int) { stop(static_cast<Server*>(sig->data)); };
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_timer_init(s.loop, &s.lifetime);
  s.lifetime.data = &s;
  uv_timer_start(
      &s.lifetime,
      [](uv_timer_t* t) {
        std::fprintf(stderr, "skirmish-echo-server: --max-seconds reached; exiting\n");
        stop(static_cast<Server*>(t->data));
      },
      uint64_t(max_seconds * 1000), 0);

  uv_run(s.loop, UV_RUN_DEFAULT);
  uv_loop_close(s.loop);
  std::fprintf(stderr, "skirmish-echo-server: stopped after %llu connections\n",
               static_cast<unsigned long long>(s.accepted));
  return 0;
}
