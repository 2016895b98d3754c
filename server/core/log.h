// Logging: one spdlog format for every process.
//
//   2026-11-25T07:49:00.123Z worker-3[4242] info: listening on 127.0.0.1:7777
//
// The name in front is the process role and index, so interleaved lines from
// the master, the coordinator and the workers on one stderr stay readable.
// Lines go to stderr, unbuffered, one write per line (atomic on a pipe up to
// PIPE_BUF), so a supervisor (systemd, Docker, Kubernetes) collects them.
//
// Fork discipline: call init_logging() again in the child right after fork,
// never share a logger across fork; flush before forking.
#pragma once

#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <string_view>

namespace skirmish::log {

// Installs the default logger named `role` (e.g. "master", "worker-3").
void init_logging(const std::string& role, spdlog::level::level_enum level);

// Parses "trace".."off"; nullopt for anything else.
std::optional<spdlog::level::level_enum> parse_level(std::string_view s);

}  // namespace skirmish::log
