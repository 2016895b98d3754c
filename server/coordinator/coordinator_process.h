// The body of the coordinator process after fork, on the child skeleton
// (core/child_loop.h): the matchmaker. Rounds on every wake and on its
// timer, housekeeping once a second (seats past the resume grace, released
// tickets and ended matches), adoption of a dead worker's matches. During
// a drain it forms no match and stays until the workers are gone. Its state
// is all in shared memory, so a respawned coordinator just carries on.
#pragma once

#include "core/child.h"

namespace skirmish::coordinator {

int run_coordinator_process(const core::ChildContext& ctx);

}  // namespace skirmish::coordinator
