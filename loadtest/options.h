// skirmish-loadtest's options (flags in main.cpp; every one in the report).
#pragma once

#include <cstdint>
#include <string>

namespace skirmish::loadtest {

struct Options {
  std::string host = "127.0.0.1";  // numeric address of the server
  uint16_t port = 7777;
  uint32_t bots = 100;
  double ramp = 500;          // bots connected per second (all threads together)
  double duration_s = 30;     // from the first connect to the stop
  uint64_t seed = 1;          // the bots' generators (bot_input rng)
  uint32_t threads = 1;       // one libuv loop (and a share of the bots) each
  double rate = 0;            // inputs per second per bot on a clock (open model); 0 = one per snapshot
  double ping_interval_s = 1; // each bot pings this often (Ping RTT histogram)
  double churn_per_min = 0;   // share of the bots that leave each minute and come back as new players
  double max_p99_ms = 0;      // SLO on input->snapshot p99; 0 = none
  double max_error_rate = -1; // SLO on (errors + failed connects + drops) / messages sent; < 0 = none
  double warmup_s = 0;        // excluded from the latency summary (ramp settling)
  std::string report;         // path prefix: <report>.json and <report>.html; empty = none
  int server_pid = 0;         // sample this process tree's CPU and memory from /proc; 0 = none
  std::string name_prefix = "bot";
  // How the bots read (loadtest/slot_reader.h), resolved by main:
  bool read_at_slots = false; // read at the input phase slots (open model only), not on readability
  bool rx_kernel = false;     // latency from the kernel's RX timestamps, not from the read time
  bool slot_reads_own = false;  // at a slot read only that slot's bots (no epoll set)
  bool progress_tty = false;  // set by main from isatty(stdout)
};

}  // namespace skirmish::loadtest
