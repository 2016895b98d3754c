// The master's own counters: what its acceptor, supervisor and mailbox
// posts count. Plain integers, written only on the master's loop thread and
// read by /metrics and /status on that same thread (master/metrics.h), so
// no atomics. Its own header so the renderers need not see the Master.
#pragma once

#include <cstdint>

namespace skirmish::master {

struct MasterStats {
  // Acceptor (master/acceptor.h).
  uint64_t accepted = 0;
  uint64_t handed_off = 0;
  uint64_t handoff_failed = 0;
  uint64_t refused_full = 0;
  uint64_t refused_no_worker = 0;  // no live worker, or none with descriptors to spare
  uint64_t refused_per_address = 0;
  uint64_t refused_fd_limit = 0;   // the master itself out of descriptors (EMFILE/ENFILE)
  uint64_t accept_pauses = 0;
  // Supervisor (master/supervisor.h).
  uint64_t respawns = 0;
  uint64_t heartbeat_kills = 0;
  // Events the master could not post: the receiver's mailbox was full.
  uint64_t mailbox_full = 0;
};

}  // namespace skirmish::master
