// /metrics (Prometheus text exposition format 0.0.4) and /status (JSON),
// rendered by the master from shared memory: every process keeps its
// counters in its own row of the segment (copied in a few times a second,
// never per frame), so a scrape takes no lock on a hot path and sends no
// message to any process. Only the table counts take a scan of the rows.
//
// Contract
// - Only processes that exist are described (processes_to_report): no
//   unstarted slot of the other worker bank; the master itself is up, with
//   its own pid.
// - Every series of one process carries the same labels, role and index
//   (its slot): skirmish_process_*, the standard process_* (cpu, resident
//   memory, open fds, start time; read from /proc/<pid> here, at scrape
//   time), every counter of the table in shm/counters.h, the histograms,
//   the mailboxes.
// - Every counter of the table is exported from the start at 0, every
//   Error code included.
// - Numbers are printed as the Prometheus Go client prints them
//   (master/exposition.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "shm/counters.h"
#include "shm/segment.h"

namespace skirmish::master {

struct AdminView {
  const config::Config* cfg;
  const shm::Segment* seg;
  // The master's own counters: in its memory, not its row (an upgrade's two
  // masters share that row).
  const shm::Counters* master_counters;
  int64_t now_ms;    // CLOCK_MONOTONIC
  int64_t start_ms;  // server start, CLOCK_MONOTONIC
  bool listening;
  bool draining;
  pid_t master_pid;
  // Process slots to describe, from processes_to_report.
  std::vector<uint32_t> processes;
};

// The slots that hold a process, or one this master is bound to restart:
// this master's own workers (own_first .. own_first + own_count - 1: up,
// starting, or down until their respawn, which an alert must see), the other
// bank's workers whose process still runs (during a binary upgrade), the
// coordinator when this master runs it or it still runs, and the master.
std::vector<uint32_t> processes_to_report(const shm::Segment& seg, uint32_t own_first, uint32_t own_count,
                                          bool own_coordinator);

std::string render_metrics(const AdminView& v);
std::string render_status(const AdminView& v);

}  // namespace skirmish::master
