// skirmish-hostile's command line (loadtest/README.md): flags into
// Options, checked (loopback only, known attacks), then run() (hostile.cpp).
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

// "A" or "A-B" (inclusive, at most 256 addresses), every one in 127.0.0.0/8.
bool parse_sources(const std::string& s, std::vector<uint32_t>& out) {
  const auto dash = s.find('-');
  in_addr a{}, b{};
  if (inet_pton(AF_INET, s.substr(0, dash).c_str(), &a) != 1) return false;
  b = a;
  if (dash != std::string::npos && inet_pton(AF_INET, s.substr(dash + 1).c_str(), &b) != 1) return false;
  const uint32_t lo = ntohl(a.s_addr), hi = ntohl(b.s_addr);
  if (hi < lo || hi - lo >= 256 || (lo >> 24) != 127 || (hi >> 24) != 127) return false;
  for (uint32_t ip = lo; ip <= hi; ++ip) out.push_back(ip);
  return true;
}

}  // namespace
}  // namespace skirmish::hostile

int main(int argc, char** argv) {
  using namespace skirmish::hostile;
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"skirmish-hostile: hostile clients against a skirmish-server, checked against PROTOCOL.md"};
  Options o;
  app.add_option("--target", o.target, "the server, a loopback IPv4 address:port")->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds of attack; everything is closed by then")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  app.add_option("--sources", o.sources_text, "loopback source addresses, A or A-B, bound round robin")
      ->capture_default_str();
  app.add_option("--attacks", o.attacks_text,
                 "comma list or all: garbage,truncated,huge,unverifiable,wrongstate,flood,slowloris,"
                 "resetstorm,noread,badinput")
      ->capture_default_str();
  app.add_option("--slowloris", o.slowloris, "slowloris connections kept open")
      ->check(CLI::Range(0u, 20000u))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "new short-lived connections per second (garbage..wrongstate, resetstorm)")
      ->check(CLI::Range(0.0, 20000.0))
      ->capture_default_str();
  app.add_option("--flood", o.flood, "concurrent flood connections")
      ->check(CLI::Range(0u, 1000u))
      ->capture_default_str();
  app.add_option("--noread", o.noread, "connections that stop reading")
      ->check(CLI::Range(0u, 10000u))
      ->capture_default_str();
  app.add_option("--badinput", o.badinput,
                 "connections kept queued or in a match that send Input.data the game must refuse")
      ->check(CLI::Range(0u, 1000u))
      ->capture_default_str();
  app.add_option("--match-wait-ms", o.match_wait_ms, "badinput: MatchFound within this long of QueueJoin")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--handshake-ms", o.handshake_ms, "the server's timeouts.handshake_timeout_ms")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--grace-ms", o.grace_ms, "slack on every expected Error and close, ms")
      ->check(CLI::Range(100, 60000))
      ->capture_default_str();
  app.add_option("--handshake-frame-bytes", o.handshake_frame_bytes, "the server's limits.max_frame_bytes_handshake")
      ->check(CLI::Range(64u, 65536u))
      ->capture_default_str();
  app.add_option("--per-address-cap", o.per_address_cap,
                 "the server's limits.max_connections_per_ip: Error(TooManyConnections) while holding fewer than "
                 "a quarter of it from that address is unexpected (a leaked count); 0 = no check")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the random bytes")->capture_default_str();
  app.add_option("--report", o.report, "write a JSON summary to PATH");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  const auto colon = o.target.rfind(':');
  in_addr ta{};
  const long port = colon == std::string::npos ? 0 : std::strtol(o.target.c_str() + colon + 1, nullptr, 10);
  if (colon == std::string::npos || inet_pton(AF_INET, o.target.substr(0, colon).c_str(), &ta) != 1 ||
      (ntohl(ta.s_addr) >> 24) != 127 || port < 1 || port > 65535) {
    std::fprintf(stderr, "--target: expected a loopback IPv4 address:port (127.x.y.z:PORT), got \"%s\"\n",
                 o.target.c_str());
    return 2;
  }
  o.target_ip = ntohl(ta.s_addr);
  o.port = uint16_t(port);
  if (!parse_sources(o.sources_text, o.sources)) {
    std::fprintf(stderr, "--sources: expected A or A-B of at most 256 addresses in 127.0.0.0/8, got \"%s\"\n",
                 o.sources_text.c_str());
    return 2;
  }
  for (size_t start = 0; start <= o.attacks_text.size();) {
    size_t end = o.attacks_text.find(',', start);
    if (end == std::string::npos) end = o.attacks_text.size();
    const std::string name = o.attacks_text.substr(start, end - start);
    bool found = false;
    for (size_t i = 0; i < kAttacks; ++i)
      if (name == "all" || name == kAttackNames[i]) {
        o.enabled[i] = true;
        found = true;
      }
    if (!found) {
      std::fprintf(stderr, "--attacks: unknown attack \"%s\"\n", name.c_str());
      return 2;
    }
    start = end + 1;
  }
  // Slowloris, truncated and noread hold sockets for seconds: raise the
  // descriptor limit to the hard one.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  return run(o);
}
