// skirmish-loadtest: thousands of bots playing real matches against a
// skirmish-server, with latency histograms, a live progress line and a
// JSON + HTML report. See loadtest/README.md.
//
// Exit codes: 0 = ran and met every SLO given; 1 = an SLO was missed (or
// nothing connected); 2 = bad usage.
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "loadtest/report.h"
#include "loadtest/shard.h"

using namespace skirmish::loadtest;
using Clock = std::chrono::steady_clock;

namespace {

volatile sig_atomic_t g_interrupted = 0;

std::string utc_now() {
  char b[32];
  std::time_t t = std::time(nullptr);
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

double p(const Histogram& h, double q) { return double(h.quantile(q)) / 1e6; }

constexpr const char* kPerAddressHint =
    "bots refused with TooManyConnections: the server allows limits.max_connections_per_ip (64 in "
    "configs/skirmish.toml) connections from one address; for a load test from one machine start it with "
    "--config configs/loadtest.toml";

// The Error codes the bots got, by code, most frequent first: a refusal
// (ServerFull, TooManyConnections, RateLimited...) says at once what to fix.
void print_error_codes(const Metrics& m) {
  std::vector<std::pair<uint64_t, size_t>> seen;
  for (size_t i = 0; i < m.errors.size(); ++i)
    if (m.errors[i] > 0) seen.emplace_back(m.errors[i], i);
  if (seen.empty()) return;
  std::sort(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string line = "errors by code:";
  for (const auto& [n, code] : seen)
    line += std::string(" ") + skirmish::proto::EnumNameErrorCode(skirmish::proto::ErrorCode(code)) + " " + std::to_string(n) + ",";
  line.pop_back();
  std::printf("%s\n", line.c_str());
  if (m.errors[size_t(skirmish::proto::ErrorCode::TooManyConnections)] > 0) std::printf("%s\n", kPerAddressHint);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"skirmish-loadtest: bots playing real matches against a skirmish-server"};
  Options o;
  std::string target = "127.0.0.1:7777";
  app.add_option("--target", target, "server address, numeric host:port")->capture_default_str();
  app.add_option("--bots", o.bots, "bots to run")->check(CLI::Range(1u, 200000u))->capture_default_str();
  app.add_option("--ramp", o.ramp, "bots connected per second")->check(CLI::Range(1.0, 100000.0))->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds from the first connect to the stop")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the bots' generators (handed to the game's bot_input)")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads, one libuv loop each")->check(CLI::Range(1u, 64u))->capture_default_str();
  app.add_option("--rate", o.rate, "inputs per second per bot on a clock (open model); 0 = one per snapshot")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  app.add_option("--ping-interval", o.ping_interval_s, "seconds between a bot's pings")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "seconds left out of the steady-state latency figures")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--max-p99-ms", o.max_p99_ms, "SLO: input->snapshot p99 after the warm-up, ms (0 = none)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--max-error-rate", o.max_error_rate,
                 "SLO: (errors + failed connects + drops) / messages sent (unset = none)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--churn", o.churn_per_min,
                 "share of the bots that leave each minute (mid-match or not) and join again as new players")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  bool read_at_slots = false;
  auto* slots_flag = app.add_flag("--read-at-slots", read_at_slots,
                                  "open model: read the bots' sockets at the input phase slots, not on readability "
                                  "(default on with --rate > 0; --read-at-slots=false: on readability)");
  std::string rx_clock = "auto";
  app.add_option("--rx-clock", rx_clock,
                 "receive times: kernel (SO_TIMESTAMPING RX timestamps), read (when the bot read), auto (kernel "
                 "when reading at slots)")
      ->check(CLI::IsMember({"auto", "kernel", "read"}))
      ->capture_default_str();
  std::string slot_reads = "all";
  app.add_option("--slot-reads", slot_reads,
                 "reading at slots: all (every ready socket of the thread, one epoll_wait) or own (only the "
                 "slot's bots, one read each)")
      ->check(CLI::IsMember({"all", "own"}))
      ->capture_default_str();
  app.add_option("--report", o.report, "write PATH.json and PATH.html");
  app.add_option("--server-pid", o.server_pid, "sample this server's process tree (CPU, memory) from /proc");
  app.add_option("--name-prefix", o.name_prefix, "bot names are PREFIX<n>")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.read_at_slots = slots_flag->count() > 0 ? read_at_slots : o.rate > 0;
  if (o.read_at_slots && o.rate <= 0) {
    std::fprintf(stderr, "--read-at-slots: the slots are those of the open model; give --rate R\n");
    return 2;
  }
  o.rx_kernel = rx_clock == "kernel" || (rx_clock == "auto" && o.read_at_slots);
  o.slot_reads_own = slot_reads == "own";

  const auto colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    std::fprintf(stderr, "--target: expected host:port, got \"%s\"\n", target.c_str());
    return 2;
  }
  o.host = target.substr(0, colon);
  {
    // A name (a compose service, say) is resolved once, here, before any
    // bot starts; the bots connect to the numeric address.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(o.host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
      std::fprintf(stderr, "--target: cannot resolve \"%s\"\n", o.host.c_str());
      return 2;
    }
    char ip[INET6_ADDRSTRLEN] = {};
    if (res->ai_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, ip, sizeof ip);
    else
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, ip, sizeof ip);
    freeaddrinfo(res);
    o.host = ip;
  }
  const long port = std::strtol(target.c_str() + colon + 1, nullptr, 10);
  if (port < 1 || port > 65535) {
    std::fprintf(stderr, "--target: port must be 1..65535, got \"%s\"\n", target.c_str() + colon + 1);
    return 2;
  }
  o.port = uint16_t(port);
  o.threads = std::min(o.threads, o.bots);
  o.progress_tty = isatty(STDOUT_FILENO) != 0;
  signal(SIGINT, [](int) { g_interrupted = 1; });
  signal(SIGTERM, [](int) { g_interrupted = 1; });

  Run run;
  run.opts = o;
  run.machine = describe_machine();
  run.started_at = utc_now();
  const TreeSample idle = sample_tree(o.server_pid);
  run.server_pss_idle_kib = idle.pss_kib;

  Games games;  // the modules the bots play, loaded as MatchFound names them
  std::vector<std::unique_ptr<Shard>> shards;
  uint32_t first = 0;
  for (uint32_t i = 0; i < o.threads; ++i) {
    const uint32_t n = o.bots / o.threads + (i < o.bots % o.threads ? 1 : 0);
    shards.push_back(std::make_unique<Shard>(o, &games, i, first, n));
    first += n;
  }
  const auto t0 = Clock::now();
  for (auto& s : shards) s->start();

  std::printf("skirmish-loadtest: %u bots -> %s:%u, ramp %.0f/s, %.0f s, %u thread(s), inputs %s\n", o.bots,
              o.host.c_str(), o.port, o.ramp, o.duration_s, o.threads,
              o.rate > 0 ? (std::to_string(int(o.rate)) + "/s on a clock").c_str() : "one per snapshot");
  std::fflush(stdout);
  TreeSample prev_server = idle;
  double prev_self = self_cpu_s();
  auto prev_t = t0;
  const double ramp_s = double(o.bots) / o.ramp;
  double steady_server_cpu = 0, steady_self_cpu = 0, steady_secs = 0;
  uint64_t steady_pss = 0, steady_samples = 0;
  auto next = t0 + std::chrono::seconds(1);
  const auto end = t0 + std::chrono::milliseconds(int64_t(o.duration_s * 1000));
  bool done = false;
  bool hinted_per_address = false;
  while (!done) {
    auto wake = std::min(next, end);
    while (Clock::now() < wake && !g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = Clock::now();
    done = now >= end || g_interrupted;
    if (done) {
      for (auto& s : shards) s->stop();
      for (auto& s : shards) s->join();
    }
    next += std::chrono::seconds(1);
    const double t = std::chrono::duration<double>(now - t0).count();
    const double dt = std::chrono::duration<double>(now - prev_t).count();
    prev_t = now;
    Metrics iv;
    Gauges g;
    for (auto& s : shards) s->take(iv, g);
    for (auto& s : shards)
      if (run.server_version.empty()) run.server_version = s->server_version();
    run.total.merge(iv);
    const bool steady = t > std::max(o.warmup_s, ramp_s) && !done;
    if (t > o.warmup_s) run.steady.merge(iv);

    Sample smp;
    smp.t = t;
    smp.gauges = g;
    smp.frames_in = iv.frames_in;
    smp.frames_out = iv.frames_out;
    smp.bytes_in = iv.bytes_in;
    smp.bytes_out = iv.bytes_out;
    smp.errors = iv.error_total();
    smp.drops = iv.drops;
    smp.matches_ended = iv.matches_ended;
    smp.input_snapshot_ms[0] = p(iv.input_snapshot, 0.5);
    smp.input_snapshot_ms[1] = p(iv.input_snapshot, 0.9);
    smp.input_snapshot_ms[2] = p(iv.input_snapshot, 0.99);
    smp.input_snapshot_ms[3] = double(iv.input_snapshot.max()) / 1e6;
    smp.ping_p99_ms = p(iv.ping_rtt, 0.99);
    const double self = self_cpu_s();
    smp.self_cpu_cores = dt > 0 ? (self - prev_self) / dt : 0;
    prev_self = self;
    if (o.server_pid > 0) {
      const TreeSample ts = sample_tree(o.server_pid);
      if (ts.processes > 0 && dt > 0) {
        smp.server_cpu_cores = std::max(0.0, ts.cpu_s - prev_server.cpu_s) / dt;
        smp.server_pss_kib = ts.pss_kib;
        prev_server = ts;
      }
    }
    if (steady && dt > 0) {
      steady_self_cpu += smp.self_cpu_cores * dt;
      if (smp.server_cpu_cores >= 0) {
        steady_server_cpu += smp.server_cpu_cores * dt;
        steady_pss += smp.server_pss_kib;
        ++steady_samples;
      }
      steady_secs += dt;
    }
    run.series.push_back(smp);

    char line[400];
    std::snprintf(line, sizeof line,
                  "[%6.1fs] bots %u conn %u queue %u match %u | in %llu/s out %llu/s | in->snap p50 %.1f p99 %.1f "
                  "ms (run p99 %.1f) | ping p99 %.1f ms | errors %llu drops %llu",
                  t, o.bots, g.connected(), g.queued, g.in_match, (unsigned long long)(dt > 0 ? iv.frames_in / dt : 0),
                  (unsigned long long)(dt > 0 ? iv.frames_out / dt : 0), smp.input_snapshot_ms[0],
                  smp.input_snapshot_ms[2], p(run.steady.input_snapshot, 0.99), smp.ping_p99_ms,
                  (unsigned long long)run.total.error_total(), (unsigned long long)run.total.drops);
    if (o.progress_tty) {
      std::printf("\r%s\033[K", line);
      if (done) std::printf("\n");
    } else {
      std::printf("%s\n", line);
    }
    // Said once, as soon as it happens: a server on its default config
    // refuses all but 64 bots from one address, and the run would
    // otherwise go on with the rest silently idle.
    if (!hinted_per_address && run.total.errors[size_t(skirmish::proto::ErrorCode::TooManyConnections)] > 0) {
      hinted_per_address = true;
      std::printf("%s%s\n", o.progress_tty ? "\n" : "", kPerAddressHint);
    }
    std::fflush(stdout);
  }
  run.elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  run.games = games.list();
  if (steady_secs > 0) {
    run.self_cpu_cores = steady_self_cpu / steady_secs;
    if (steady_samples > 0) {
      run.server_cpu_cores = steady_server_cpu / steady_secs;
      run.server_cores_per_1000_bots = run.server_cpu_cores / (double(o.bots) / 1000.0);
      run.server_pss_kib = steady_pss / steady_samples;
      run.server_pss_per_bot_kib =
          (double(run.server_pss_kib) - double(run.server_pss_idle_kib)) / double(o.bots);
    }
  }
  const Metrics& m = run.total;
  run.error_rate = double(m.error_total() + m.connect_failures + m.drops) / double(std::max<uint64_t>(1, m.frames_out));
  if (o.max_p99_ms > 0 && p(run.steady.input_snapshot, 0.99) > o.max_p99_ms)
    run.slo_failures.push_back("input->snapshot p99 " + std::to_string(p(run.steady.input_snapshot, 0.99)) +
                               " ms > " + std::to_string(o.max_p99_ms) + " ms");
  if (o.max_p99_ms > 0 && run.steady.input_snapshot.count() == 0)
    run.slo_failures.push_back("no input->snapshot sample after the warm-up");
  if (o.max_error_rate >= 0 && run.error_rate > o.max_error_rate)
    run.slo_failures.push_back("error rate " + std::to_string(run.error_rate) + " > " +
                               std::to_string(o.max_error_rate));
  if (m.connect_welcome.count() == 0) run.slo_failures.push_back("no bot ever got Welcome");

  for (const GameInfo& g : run.games) std::printf("game:                            %s\n", describe_game(g).c_str());
  if (run.games.empty()) std::printf("game:                            none (no MatchFound)\n");
  std::printf("snapshots:                       %s\n", snapshot_summary(m).c_str());
  if (m.matches_without_bot > 0)
    std::printf("note: %llu matches of a game without bot_input (or without its module here): no input sent in "
                "them, so they add nothing to input->snapshot\n",
                (unsigned long long)m.matches_without_bot);
  std::printf("input->snapshot (after warm-up): %s\n", summary_ms(run.steady.input_snapshot).c_str());
  std::printf("receive clock:                   %s\n", rx_clock_summary(run).c_str());
  if (o.rx_kernel) {
    std::printf("  ... by read time instead:      %s\n", summary_ms(run.steady.input_snapshot_read).c_str());
    std::printf("  read delay (read - kernel rx): %s\n", summary_ms(run.steady.read_delay).c_str());
  }
  std::printf("ping RTT:                        %s\n", summary_ms(run.steady.ping_rtt).c_str());
  std::printf("connect->Welcome:                %s\n", summary_ms(m.connect_welcome).c_str());
  std::printf("queue->MatchFound:               %s\n", summary_ms(m.queue_match).c_str());
  std::printf("snapshot rate per bot and match:  p50 %.1f Hz, min %.1f Hz (%llu matches ended)\n",
              double(m.snapshot_rate.quantile(0.5)) / 1000.0, double(m.snapshot_rate.min()) / 1000.0,
              (unsigned long long)m.matches_ended);
  std::printf("frames in/out %llu/%llu, bytes in/out %llu/%llu, errors %llu, failed connects %llu, drops %llu, "
              "error rate %.2e\n",
              (unsigned long long)m.frames_in, (unsigned long long)m.frames_out, (unsigned long long)m.bytes_in,
              (unsigned long long)m.bytes_out, (unsigned long long)m.error_total(),
              (unsigned long long)m.connect_failures, (unsigned long long)m.drops, run.error_rate);
  print_error_codes(m);
  if (run.server_cpu_cores >= 0)
    std::printf("server: %.3f cores (%.3f per 1,000 bots), PSS %.1f MiB (%.2f KiB per bot above idle); load test "
                "%.3f cores\n",
                run.server_cpu_cores, run.server_cores_per_1000_bots, double(run.server_pss_kib) / 1024.0,
                run.server_pss_per_bot_kib, run.self_cpu_cores);
  if (!o.report.empty()) {
    std::string error;
    if (!write_json(run, o.report + ".json", error) || !write_html(run, o.report + ".html", error)) {
      std::fprintf(stderr, "report: %s\n", error.c_str());
      return 1;
    }
    std::printf("report: %s.json, %s.html\n", o.report.c_str(), o.report.c_str());
  }
  for (const std::string& f : run.slo_failures) std::printf("SLO missed: %s\n", f.c_str());
  return run.slo_failures.empty() ? 0 : 1;
}
