// What a child process (worker or coordinator) receives from the master at
// fork: everything it needs, nothing it must look up. The segment mapping,
// the eventfds and the IPC socket are inherited; every other inherited fd is
// closed by prepare_child().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "config/config.h"
#include "module/module.h"

namespace skirmish::shm {
class Segment;
}

namespace skirmish::auth {
class JwtVerifier;
}

namespace skirmish::core {

struct ChildContext {
  const config::Config* cfg;
  shm::Segment* seg;
  uint32_t index;        // process index in the segment (worker i, or coordinator)
  int ipc_fd;            // this child's end of its socketpair with the master
  pid_t master_pid;
  int64_t start_ms;      // server start (monotonic), for server_time_ms
  const module::Game* game;  // the hosted game, loaded by the master before the fork
  const auth::JwtVerifier* jwt = nullptr;  // [auth] on: made by main() before the fork; else null
};

// Runs in the child right after fork, before any loop or logger exists:
// parent-death signal (and the fork race check), default signal handlers,
// closes every fd that is not stdin/out/err, `ipc_fd` or an eventfd in
// `keep`. Returns false if the master is already gone.
bool prepare_child(pid_t master_pid, int ipc_fd, const std::vector<int>& keep);

}  // namespace skirmish::core
