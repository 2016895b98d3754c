// skirmish-ping-example: the smallest complete program on skirmish_client.
//
// Connects to a Skirmish server on a loopback address, says Hello, sends
// --count Pings one after another (the next when the previous Pong is back),
// prints each round-trip time and a summary, and closes.
//
//   skirmish-ping-example --host 127.0.0.1 --port 7777
//
// Exit 0 when every Pong came back, 1 otherwise (refused, error, closed by
// the server, --timeout-s passed), 2 on bad flags.
#include <arpa/inet.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>

#include "client/lib/skirmish_client.h"

namespace sc = skirmish::client;
namespace proto = skirmish::proto;

namespace {

bool is_loopback_v4(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  uint16_t port = 7777;
  uint32_t count = 10;
  std::string name = "ping-example";
  double timeout_s = 10;
  CLI::App app{"skirmish-ping-example: Hello, a few Pings and their round-trip times"};
  app.add_option("--host", host, "server address; IPv4 loopback only (127.0.0.0/8)");
  app.add_option("--port", port, "server port")->check(CLI::Range(1, 65535));
  app.add_option("--count", count, "pings to send, one at a time")->check(CLI::Range(1, 1000));
  app.add_option("--name", name, "player name sent in Hello (1..32 bytes)");
  app.add_option("--timeout-s", timeout_s, "give up after this many seconds")->check(CLI::Range(0.1, 600.0));
  CLI11_PARSE(app, argc, argv);
  if (!is_loopback_v4(host)) {
    std::fprintf(stderr, "skirmish-ping-example: --host %s refused: only 127.0.0.0/8 is allowed\n", host.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // the library's contract: writes to a closed socket must not kill us

  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t deadline;
  uv_timer_init(&loop, &deadline);

  uint32_t received = 0;
  uint64_t rtt_sum = 0;
  uint32_t rtt_min = UINT32_MAX, rtt_max = 0;
  bool failed = false;

  sc::Client client(&loop, sc::Options{.name = name});
  auto& cb = client.callbacks();
  cb.on_connected = [&](int status) {
    if (status != 0) std::fprintf(stderr, "connect to %s:%u failed: %s\n", host.c_str(), port, uv_strerror(status));
  };
  cb.on_welcome = [&](const proto::Welcome& w) {
    std::printf("welcome: player %u on worker %u, tick rate %u Hz\n", w.player_id(), w.worker_index(),
                w.tick_rate_hz());
    client.ping();
  };
  cb.on_pong = [&](uint32_t rtt_us, uint32_t nonce) {
    ++received;
    rtt_sum += rtt_us;
    rtt_min = std::min(rtt_min, rtt_us);
    rtt_max = std::max(rtt_max, rtt_us);
    std::printf("pong %u: rtt %u us\n", nonce, rtt_us);
    if (received < count)
      client.ping();
    else
      client.close();
  };
  cb.on_error = [&](proto::ErrorCode code, std::string_view text, bool fatal) {
    std::fprintf(stderr, "server error %s%s: %.*s\n", proto::EnumNameErrorCode(code), fatal ? " (fatal)" : "",
                 int(text.size()), text.data());
    if (fatal) failed = true;
  };
  cb.on_server_shutdown = [&](const proto::ServerShutdown&) {
    std::fprintf(stderr, "server is shutting down\n");
    failed = true;
  };
  cb.on_closed = [&](int reason) {
    if (reason != 0) {
      failed = true;
      std::fprintf(stderr, "connection closed: %s\n",
                   reason == sc::kClosedDecodeError ? proto::to_string(client.decode_error()) : uv_strerror(reason));
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  };

  int r = client.connect(host.c_str(), port);
  if (r != 0) {
    std::fprintf(stderr, "connect: %s\n", uv_strerror(r));
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  } else {
    deadline.data = &client;
    uv_timer_start(
        &deadline,
        [](uv_timer_t* t) {
          std::fprintf(stderr, "timed out\n");
          static_cast<sc::Client*>(t->data)->close();
        },
        uint64_t(timeout_s * 1000), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  if (received > 0)
    std::printf("%u of %u pongs: rtt min %u us, avg %llu us, max %u us\n", received, count, rtt_min,
                static_cast<unsigned long long>(rtt_sum / received), rtt_max);
  return r == 0 && !failed && received == count ? 0 : 1;
}
