// systemd's readiness protocol without libsystemd: one datagram to
// $NOTIFY_SOCKET ("READY=1", "MAINPID=N", "STOPPING=1", ...). A no-op when
// the variable is unset (not under systemd's Type=notify). The binary
// upgrade needs it: the new master names itself MAINPID so systemd follows
// it when the old master exits (deploy/systemd/skirmish.service).
#pragma once

#include <string>

namespace skirmish::core {

// Returns false only when $NOTIFY_SOCKET is set and the send failed.
bool notify_service_manager(const std::string& state);

}  // namespace skirmish::core
