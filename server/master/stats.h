// The master's own counters: its entries of the table in shm/counters.h
// (what its acceptor, supervisor and mailbox posts count). Kept in the
// master's memory, not its row (two masters share that row during a binary
// upgrade), written only on the master's loop thread and read by /metrics
// and /status on that same thread (master/metrics.h), so no atomics. Its
// own header so the renderers need not see the Master.
#pragma once

#include "shm/counters.h"

namespace skirmish::master {

using MasterStats = shm::Counters;

}  // namespace skirmish::master
