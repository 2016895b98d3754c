// The run's record: a JSON file with every figure, and one self-contained
// HTML page (no script, no network: the charts are inline SVG drawn here).
#pragma once

#include <string>
#include <vector>

#include "loadtest/metrics.h"
#include "loadtest/options.h"
#include "loadtest/proc_stats.h"
#include "loadtest/shard.h"

namespace skirmish::loadtest {

// One second of the run.
struct Sample {
  double t = 0;  // seconds since the start
  Gauges gauges;
  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;  // during this second
  uint64_t errors = 0, drops = 0, matches_ended = 0;
  double input_snapshot_ms[4] = {};  // p50, p90, p99, max of this second
  double ping_p99_ms = 0;
  double server_cpu_cores = -1;  // -1: not sampled
  uint64_t server_pss_kib = 0;
  double self_cpu_cores = 0;
};

struct Run {
  Options opts;
  Machine machine;
  std::string server_version;  // from Welcome, "" if none came
  std::vector<GameInfo> games; // the games MatchFound named, as loaded here
  std::string started_at;      // UTC, ISO 8601
  double elapsed_s = 0;
  Metrics total;   // the whole run
  Metrics steady;  // after the warm-up (latency SLOs are judged on this)
  std::vector<Sample> series;
  // Server resources over the steady part (when --server-pid is given).
  double server_cpu_cores = -1;
  double server_cores_per_1000_bots = -1;
  uint64_t server_pss_idle_kib = 0;
  uint64_t server_pss_kib = 0;
  double server_pss_per_bot_kib = -1;
  double self_cpu_cores = 0;
  // SLO verdicts.
  double error_rate = 0;
  std::vector<std::string> slo_failures;
};

// Percentile summary of a histogram of nanoseconds, in milliseconds.
std::string summary_ms(const Histogram& h);
// "arena 1.0.0 (build/games/arena.so): inputs from its bot_input", or what
// kept the bots from playing it.
std::string describe_game(const GameInfo& g);
// Snapshots full and delta: counts and mean bytes per frame, the mean view.
std::string snapshot_summary(const Metrics& m);

// Which receive clock the latency figures use and how the bots read, with
// the reads that carried more than one snapshot.
std::string rx_clock_summary(const Run& run);
const char* rx_clock_name(const Options& o);  // "kernel" or "read"
const char* read_mode_name(const Options& o);  // "slots-all", "slots-own", "readable-epoll", "readable-libuv"

bool write_json(const Run& run, const std::string& path, std::string& error);
bool write_html(const Run& run, const std::string& path, std::string& error);

}  // namespace skirmish::loadtest
