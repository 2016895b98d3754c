// What a process costs, read from /proc/<pid> as the Prometheus clients'
// process collector reads it (process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds,
// process_start_time_seconds). The master reads it for each of its
// processes when /metrics or /status is requested: a few small reads per
// process per scrape, never on the accept or tick path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace skirmish::master {

struct ProcStats {
  double cpu_seconds;         // utime + stime
  std::uint64_t rss_bytes;    // resident pages x page size
  std::uint64_t open_fds;     // entries of /proc/<pid>/fd
  double start_time_seconds;  // unix time the process started (boot time + its start in clock ticks)
};

// Nothing when the process is gone, a zombie, or its /proc is unreadable.
std::optional<ProcStats> read_proc_stats(pid_t pid);

}  // namespace skirmish::master
