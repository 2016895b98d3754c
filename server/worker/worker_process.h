// The body of a worker process after fork, on the child skeleton
// (core/child_loop.h: its loop, the IPC pipe from the master, on which
// connections arrive with SCM_RIGHTS, its mailbox woken by its eventfd, a
// heartbeat in its process row). Returns the exit code: 0 after a drain, 1
// if it could not start.
#pragma once

#include "core/child.h"

namespace skirmish::worker {

int run_worker_process(const core::ChildContext& ctx);

}  // namespace skirmish::worker
