// The master's client of the Agones SDK sidecar, over its REST API.
//
// Agones runs an SDK server beside the game server in the pod and puts its
// HTTP port in $AGONES_SDK_HTTP_PORT. A GameServer stays Scheduled until the
// game server says Ready, is marked Unhealthy when health pings stop, and
// goes away on Shutdown. Debian has no Agones SDK for C++, and the REST API
// is five small requests, so this is a few lines of HTTP/1.1 on libuv
// (https://agones.dev/site/docs/guides/client-sdks/rest/):
//
//   POST  /ready                      {}   once serving() is true (every worker Up)
//   POST  /health                     {}   every agones.health_interval_ms
//   PATCH /v1beta1/counters/players   {"count":"N","capacity":"M"}  when N changed
//   POST  /shutdown                   {}   at the end of a drain
//
// The "players" Counter (Agones' Counters and Lists, a beta feature: hence
// /v1beta1) is what a GameServerAllocation's `counters` selector and
// priorities read, so an allocator can pick or pack servers by players;
// the Fleet declares it. A cluster without the feature answers an error,
// which is counted and logged like any failure.
//
// Contract
//   - Never stalls the master's loop: non-blocking connect/write/read to
//     127.0.0.1 (the sidecar listens on localhost; a literal needs no DNS),
//     one request in flight, each abandoned after agones.request_timeout_ms.
//     Work that comes due meanwhile waits as a flag, not a queue (bounded:
//     at most one ready, one health, one counter update, one shutdown).
//   - Ready is retried at every health interval until the sidecar accepts
//     it (it may start after us, as Agones' docs warn); it is never sent by
//     an upgrade's new master (send_ready false): the GameServer is already
//     Ready or Allocated, and Ready on an Allocated one would put it back in
//     the pool.
//   - A failure (refused, timed out, a non-2xx answer, a malformed one) is
//     counted by call and logged at most once per 10 s with the counts; the
//     first success after failures is logged. Nothing here ends the server.
//   - shutdown() abandons a call in flight, sends POST /shutdown once, then
//     closes every handle it owns (so the master's last uv_run returns):
//     within request_timeout_ms. close() closes them without a call (an old
//     master that handed the pod over to its upgrade).
//   - No allocation per tick or per connection: a call allocates its buffers
//     once; calls come at most a few per second.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace skirmish::master {

struct AgonesStats {
  uint64_t calls = 0;     // requests started
  uint64_t ok = 0;        // 2xx answers
  uint64_t failed = 0;    // refused, reset, non-2xx, malformed
  uint64_t timed_out = 0; // no answer within request_timeout_ms
  uint64_t ready_ok = 0, health_ok = 0, counter_ok = 0, shutdown_ok = 0;
};

class AgonesSdk {
 public:
  struct Options {
    uint16_t port = 0;
    uint32_t health_interval_ms = 2000;
    uint32_t request_timeout_ms = 1000;
    uint32_t player_capacity = 0;  // the Counter's capacity (max_players)
    bool send_ready = true;
  };
  struct Hooks {
    std::function<bool()> serving;      // every worker Up and accepting
    std::function<uint32_t()> players;  // players connected now
  };

  // $AGONES_SDK_HTTP_PORT: false with `error` set when it is set but not a
  // port 1..65535; true with *port = 0 when it is unset (no Agones).
  static bool port_from_env(uint16_t* port, std::string& error);

  AgonesSdk(uv_loop_t* loop, const Options& opts, Hooks hooks);
  ~AgonesSdk();
  AgonesSdk(const AgonesSdk&) = delete;
  AgonesSdk& operator=(const AgonesSdk&) = delete;

  void start();     // the poll timer: ready, health, counter
  void shutdown();  // POST /shutdown, then close
  void close();     // close without a call

  const AgonesStats& stats() const { return stats_; }
  bool ready_sent() const { return ready_done_; }

  struct Call;  // one HTTP exchange (agones.cpp)

 private:
  enum class Kind : uint8_t { Ready, Health, Counter, Shutdown };

  void poll();
  void pump();
  void begin(Kind kind);
  void finished(Call* call, int status, const char* why);
  void log_failure(Kind kind, const char* why);
  void close_timer();
  static const char* name(Kind k);

  uv_loop_t* loop_;
  Options opts_;
  Hooks hooks_;
  uv_timer_t* timer_ = nullptr;  // heap: its close callback may outlive us
  Call* inflight_ = nullptr;
  bool ready_due_ = false, health_due_ = false, counter_due_ = false, shutdown_due_ = false;
  bool ready_done_ = false;
  bool closing_ = false;  // shutdown() or close() called
  uint32_t players_sent_ = UINT32_MAX;
  uint32_t players_pending_ = 0;
  int64_t next_health_ms_ = 0;
  int64_t next_ready_ms_ = 0;
  int64_t next_counter_ms_ = 0;
  int64_t started_ms_ = 0;
  int64_t last_fail_log_ms_ = -1'000'000;
  uint64_t fails_since_log_ = 0;
  bool failing_ = false;
  AgonesStats stats_;
};

}  // namespace skirmish::master
