// SIGHUP reload, carried to children through their mailboxes.
//
// Only the keys that can change without a restart travel: one Reload event
// per key (a = key, b = value), then a Commit. Children never re-read the
// file themselves, so every process applies exactly what the master
// validated. Ports, worker count and table sizes need a restart.
#pragma once

#include <spdlog/spdlog.h>

#include <vector>

#include "config/config.h"
#include "core/log.h"
#include "shm/mailbox.h"

namespace skirmish::core {

enum class LiveKey : uint32_t {
  LogLevel = 1,
  HandshakeTimeoutMs,
  IdleTimeoutMs,
  ResumeGraceMs,
  DrainTimeoutMs,
  MessagesPerSecond,
  MessageBurst,
  MaxInputsQueued,
  Commit = 0xFFFF,
};

inline uint64_t log_level_index(const std::string& s) {
  auto lvl = log::parse_level(s);
  return lvl ? uint64_t(*lvl) : uint64_t(spdlog::level::info);
}

inline std::vector<shm::Event> reload_events(const config::Config& c, uint16_t from) {
  auto ev = [&](LiveKey k, uint64_t v) { return shm::make_event(shm::EventType::Reload, from, uint32_t(k), v); };
  return {ev(LiveKey::LogLevel, log_level_index(c.log_level)),
          ev(LiveKey::HandshakeTimeoutMs, c.handshake_timeout_ms),
          ev(LiveKey::IdleTimeoutMs, c.idle_timeout_ms),
          ev(LiveKey::ResumeGraceMs, c.resume_grace_ms),
          ev(LiveKey::DrainTimeoutMs, c.drain_timeout_ms),
          ev(LiveKey::MessagesPerSecond, c.messages_per_second),
          ev(LiveKey::MessageBurst, c.message_burst),
          ev(LiveKey::MaxInputsQueued, c.max_inputs_queued),
          ev(LiveKey::Commit, 0)};
}

// Applies one Reload event to `c`. Returns true when it changed something
// the caller must pass on (every key, and Commit).
inline bool apply_live_key(config::Config& c, const shm::Event& e) {
  const auto v = e.b;
  switch (static_cast<LiveKey>(e.a)) {
    case LiveKey::LogLevel: {
      auto lvl = spdlog::level::level_enum(std::min<uint64_t>(v, spdlog::level::off));
      c.log_level = std::string(spdlog::level::to_string_view(lvl).data(),
                                spdlog::level::to_string_view(lvl).size());
      if (c.log_level == "warning") c.log_level = "warn";
      spdlog::set_level(lvl);
      return true;
    }
    case LiveKey::HandshakeTimeoutMs: c.handshake_timeout_ms = uint32_t(v); return true;
    case LiveKey::IdleTimeoutMs: c.idle_timeout_ms = uint32_t(v); return true;
    case LiveKey::ResumeGraceMs: c.resume_grace_ms = uint32_t(v); return true;
    case LiveKey::DrainTimeoutMs: c.drain_timeout_ms = uint32_t(v); return true;
    case LiveKey::MessagesPerSecond: c.messages_per_second = uint32_t(v); return true;
    case LiveKey::MessageBurst: c.message_burst = uint32_t(v); return true;
    case LiveKey::MaxInputsQueued: c.max_inputs_queued = uint32_t(v); return true;
    case LiveKey::Commit: return true;
  }
  return false;
}

// Copies the live keys of `fresh` onto `c` (the master's own copy).
inline void take_live_keys(config::Config& c, const config::Config& fresh) {
  c.log_level = fresh.log_level;
  c.handshake_timeout_ms = fresh.handshake_timeout_ms;
  c.idle_timeout_ms = fresh.idle_timeout_ms;
  c.resume_grace_ms = fresh.resume_grace_ms;
  c.drain_timeout_ms = fresh.drain_timeout_ms;
  c.upgrade_timeout_ms = fresh.upgrade_timeout_ms;  // the master's alone
  c.messages_per_second = fresh.messages_per_second;
  c.message_burst = fresh.message_burst;
  c.max_inputs_queued = fresh.max_inputs_queued;
}

}  // namespace skirmish::core
