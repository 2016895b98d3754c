// SIGHUP reload, carried to children through their mailboxes.
//
// Only the keys that can change without a restart travel: one Reload event
// per key (a = key, b = value), then a Commit. Children never re-read the
// file themselves, so every process applies exactly what the master
// validated. Ports, worker count and table sizes need a restart.
//
// key_fields() names every key of the file, says whether it is live and
// prints its value, so SIGHUP reports each key that changed: applied (live)
// or not (restart-only, with a warning). A key missing from it fails
// tests/unit/test_live_config.cpp against config::known_keys().
#pragma once

#include <spdlog/spdlog.h>

#include <string>
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

// One key of the config file: its "table.key" name, whether a SIGHUP
// applies it (take_live_keys), and its value as text.
struct KeyField {
  const char* key;
  bool live;
  std::string (*text)(const config::Config&);
};

inline std::string key_text(const std::string& v) { return '"' + v + '"'; }
inline std::string key_text(uint32_t v) { return std::to_string(v); }
inline std::string key_text(uint16_t v) { return std::to_string(v); }
inline std::string key_text(bool v) { return v ? "true" : "false"; }

// Every key, in the order of config::known_keys(). Live means
// take_live_keys copies it; all others need a restart.
inline const std::vector<KeyField>& key_fields() {
#define SKIRMISH_KEY(table, field, live) \
  KeyField { #table "." #field, live, [](const config::Config& c) { return key_text(c.field); } }
  static const std::vector<KeyField> fields = {
      SKIRMISH_KEY(server, listen_host, false),
      SKIRMISH_KEY(server, listen_port, false),
      SKIRMISH_KEY(server, admin_host, false),
      SKIRMISH_KEY(server, admin_port, false),
      KeyField{"server.workers", false,
               [](const config::Config& c) {
                 return c.workers_auto ? "\"auto\" (" + std::to_string(c.workers) + ")" : std::to_string(c.workers);
               }},
      SKIRMISH_KEY(server, shm_name, false),
      SKIRMISH_KEY(server, log_level, true),
      SKIRMISH_KEY(server, io_quantum_ms, false),
      SKIRMISH_KEY(limits, max_players, false),
      SKIRMISH_KEY(limits, max_matches, false),
      SKIRMISH_KEY(limits, max_connections, false),
      SKIRMISH_KEY(limits, max_connections_per_ip, false),
      SKIRMISH_KEY(limits, max_frame_bytes_handshake, false),
      SKIRMISH_KEY(limits, max_frame_bytes, false),
      SKIRMISH_KEY(limits, write_queue_bytes, false),
      SKIRMISH_KEY(limits, socket_send_buffer_bytes, false),
      SKIRMISH_KEY(limits, messages_per_second, true),
      SKIRMISH_KEY(limits, message_burst, true),
      SKIRMISH_KEY(limits, mailbox_depth, false),
      SKIRMISH_KEY(limits, reserved_fds, false),
      SKIRMISH_KEY(limits, max_inputs_queued, true),
      SKIRMISH_KEY(timeouts, handshake_timeout_ms, true),
      SKIRMISH_KEY(timeouts, idle_timeout_ms, true),
      SKIRMISH_KEY(timeouts, resume_grace_ms, true),
      SKIRMISH_KEY(timeouts, drain_timeout_ms, true),
      SKIRMISH_KEY(timeouts, upgrade_timeout_ms, true),
      SKIRMISH_KEY(timeouts, heartbeat_timeout_ms, false),
      SKIRMISH_KEY(timeouts, respawn_backoff_max_ms, false),
      KeyField{"game.module", false, [](const config::Config& c) { return key_text(c.game_module); }},
      SKIRMISH_KEY(game, tick_rate_hz, false),
      SKIRMISH_KEY(game, match_size, false),
      SKIRMISH_KEY(game, max_state_bytes, false),
      SKIRMISH_KEY(game, step_budget_us, false),
      KeyField{"game.record_dir", false, [](const config::Config& c) { return key_text(c.record_dir); }},
      SKIRMISH_KEY(game, record_max_bytes, false),
      SKIRMISH_KEY(game, record_hash_every, false),
      SKIRMISH_KEY(game, record_ring_bytes, false),
      SKIRMISH_KEY(matchmaking, window_initial, false),
      SKIRMISH_KEY(matchmaking, window_widen_per_s, false),
      SKIRMISH_KEY(matchmaking, max_wait_ms, false),
      SKIRMISH_KEY(matchmaking, interval_ms, false),
      SKIRMISH_KEY(matchmaking, rating_initial, false),
      // The module's params: a new value needs a restart (a running match
      // keeps the rules it started with, and the module checks them once).
      KeyField{"game.params", false,
               [](const config::Config& c) {
                 std::string out = "{";
                 for (const module::GameParam& p : c.game_params) {
                   skirmish_param v{p.key.c_str(), std::uint32_t(p.type), 0, p.i, p.f, p.s.c_str()};
                   out += (out.size() > 1 ? ", " : "") + p.key + " = " + module::param_text(v);
                 }
                 return out + "}";
               }},
      KeyField{"agones.health_interval_ms", false,
               [](const config::Config& c) { return key_text(c.agones_health_interval_ms); }},
      KeyField{"agones.request_timeout_ms", false,
               [](const config::Config& c) { return key_text(c.agones_request_timeout_ms); }},
      // [auth] and [store]: read once at start (main.cpp), so restart-only.
      // The secret itself never appears here: only where it is read from.
#define SKIRMISH_KEY2(table, name, field) \
  KeyField { #table "." #name, false, [](const config::Config& c) { return key_text(c.field); } }
      SKIRMISH_KEY2(auth, required, auth_required),
      SKIRMISH_KEY2(auth, issuer, auth_issuer),
      SKIRMISH_KEY2(auth, audience, auth_audience),
      SKIRMISH_KEY2(auth, hs256_secret_env, auth_hs256_secret_env),
      SKIRMISH_KEY2(auth, hs256_secret_file, auth_hs256_secret_file),
      SKIRMISH_KEY2(auth, rs256_public_key_file, auth_rs256_public_key_file),
      SKIRMISH_KEY2(auth, leeway_s, auth_leeway_s),
      SKIRMISH_KEY2(auth, max_token_bytes, auth_max_token_bytes),
      SKIRMISH_KEY2(store, path, store_path),
      SKIRMISH_KEY2(store, busy_timeout_ms, store_busy_timeout_ms),
      SKIRMISH_KEY2(fleet, redis, fleet_redis),
      SKIRMISH_KEY2(fleet, redis_password_env, fleet_redis_password_env),
      SKIRMISH_KEY2(fleet, redis_password_file, fleet_redis_password_file),
      SKIRMISH_KEY2(fleet, key_prefix, fleet_key_prefix),
      SKIRMISH_KEY2(fleet, redis_timeout_ms, fleet_redis_timeout_ms),
#undef SKIRMISH_KEY2
  };
#undef SKIRMISH_KEY
  return fields;
}

}  // namespace skirmish::core
