// The body of the coordinator process after fork: the matchmaker. Today it
// keeps the shared tables tidy (frees seats whose resume grace ran out) and
// answers its mailbox; the matchmaking issue forms matches here. Its state
// is all in shared memory, so a respawned coordinator just carries on.
#pragma once

#include "core/child.h"

namespace skirmish::coordinator {

int run_coordinator_process(const core::ChildContext& ctx);

}  // namespace skirmish::coordinator
