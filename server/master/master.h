// The master: acceptor and supervisor.
//
// Start-up, in this order, so every failure is reported before anything is
// forked: create the shared segment (refusing if another live server owns
// the name), the eventfds, bind the game and admin ports, then fork the
// coordinator and N workers (prefork).
//
// Accept path: accept in the master's libuv loop, pick the worker with the
// fewest connections (its open count in shared memory plus the handoffs
// still in flight to it; round robin among equals; down or draining
// workers skipped), send the socket over that worker's IPC pipe with
// uv_write2 (SCM_RIGHTS), close the master's copy once the write completes.
// The master never reads a client byte. Past max_connections it writes
// Error(ServerFull) itself and closes.
//
// Supervision: SIGCHLD reaps; a dead child is respawned with exponential
// back-off (a quick death doubles the delay, up to respawn_backoff_max_ms;
// a crash loop is logged loudly; exit code 2 = bad config = not respawned).
// A child whose heartbeat is older than heartbeat_timeout_ms is killed and
// so replaced. SIGTERM/SIGINT drain (Shutdown to every mailbox, wait up to
// drain_timeout_ms, kill stragglers, unlink the segment, exit 0); SIGHUP
// reloads the live keys and passes them to every child through its
// mailbox; a bad new config is logged and the old one kept.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "admin.h"
#include "config/config.h"
#include "shm/segment.h"

namespace skirmish::master {

struct MasterStats {
  uint64_t accepted = 0;
  uint64_t handed_off = 0;
  uint64_t handoff_failed = 0;
  uint64_t refused_full = 0;
  uint64_t refused_no_worker = 0;
  uint64_t respawns = 0;
  uint64_t heartbeat_kills = 0;
  uint64_t mailbox_full = 0;
};

class Master {
 public:
  explicit Master(const config::Config& cfg);
  ~Master();
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Runs until drained. Returns the process exit code.
  int run();

 private:
  struct Child {
    pid_t pid = 0;
    uv_pipe_t* pipe = nullptr;  // master end of the IPC socketpair
    uint64_t handed = 0;        // sockets sent since this child started
    uint32_t quick_deaths = 0;  // consecutive deaths soon after start
    int64_t started_ms = 0;
    bool respawn_pending = false;
    bool fatal = false;  // exited 2: not respawned
    uv_timer_t* respawn_timer = nullptr;
  };
  struct Handoff;

  bool start(std::string& error);
  bool spawn(uint32_t index);
  void on_connection(uv_stream_t* server, int status);
  void refuse(uv_tcp_t* client, int code, const char* text);
  int pick_worker();
  void reap();
  void on_child_exit(uint32_t index, int status);
  void schedule_respawn(uint32_t index);
  void check_heartbeats();
  void begin_drain(const char* why);
  void finish_if_drained();
  void reload();
  void post(uint32_t index, const shm::Event& e);
  bool is_worker(uint32_t index) const { return index < cfg_.workers; }
  std::string role_name(uint32_t index) const;
  admin::Response admin_request(const std::string& target);

  config::Config cfg_;
  std::unique_ptr<shm::Segment> seg_;
  uv_loop_t* loop_ = nullptr;
  uv_tcp_t listener_;
  bool listening_ = false;
  std::unique_ptr<admin::AdminServer> admin_;
  uv_signal_t sigterm_, sigint_, sighup_, sigchld_;
  uv_timer_t heartbeat_timer_, drain_timer_;
  std::vector<int> event_fds_;
  std::vector<Child> children_;  // by process index: workers, then coordinator
  uint32_t rr_ = 0;
  int64_t start_ms_ = 0;
  pid_t pid_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
  int64_t drain_started_ms_ = 0;
  MasterStats stats_;
};

}  // namespace skirmish::master
