// /metrics (Prometheus text exposition format 0.0.4) and /status (JSON),
// rendered by the master from shared memory: every process keeps its
// counters in its own row of the segment (copied in a few times a second,
// never per frame), so a scrape takes no lock on a hot path and sends no
// message to any process. Only the table counts take a scan of the rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "shm/segment.h"

namespace skirmish::master {

struct MasterStats;

struct AdminView {
  const config::Config* cfg;
  const shm::Segment* seg;
  const MasterStats* stats;
  int64_t now_ms;        // CLOCK_MONOTONIC
  int64_t start_ms;      // server start, CLOCK_MONOTONIC
  bool listening;
  bool draining;
  // Worker slots to report: this master's bank, plus the other bank's
  // slots still alive during a binary upgrade.
  std::vector<uint32_t> workers;
};

std::string render_metrics(const AdminView& v);
std::string render_status(const AdminView& v);

}  // namespace skirmish::master
