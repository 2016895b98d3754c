// The master: the process that owns the listen sockets and the shared
// segment, forks every other process and outlives them. Its jobs are split
// by file, each with its own contract block:
//   master.cpp      start-up, run, drain, reload (SIGHUP), the admin port's
//                   /healthz /readyz /metrics /status
//   acceptor.h/cpp  the accept path: caps, EMFILE shedding, pick a worker,
//                   the SCM_RIGHTS hand-off (class Acceptor)
//   supervisor.h/cpp spawn, reap, respawn back-off, heartbeats, a dead
//                   worker marked Down (class Supervisor)
//   upgrade.cpp     the binary upgrade (SIGUSR2), old and new master's side
//   agones.h/cpp    the Agones SDK's REST calls, when run under Agones
//
// Start-up, in this order, so every failure is reported before anything is
// forked: create the shared segment (refusing if another live server owns
// the name), one eventfd per process slot, bind the game and admin ports,
// then fork the coordinator and N workers (prefork). A binary upgrade's new
// master starts instead from what it inherited (upgrade.cpp).
//
// Signals: SIGTERM/SIGINT drain (stop accepting, Shutdown to every mailbox,
// wait up to drain_timeout_ms, kill stragglers 2 s after that, unlink the
// segment, exit 0; a second signal kills every child at once); SIGHUP
// re-reads the file and reloads the live keys (core/live_config.h),
// passing them to every child through its mailbox, so every process
// applies exactly what the master validated; it logs each key that changed,
// "(applied)" for a live one and a warning for a restart-only one (kept as
// it runs); a bad new config is logged and the old one kept;
// SIGCHLD reaps (the supervisor); SIGUSR2 upgrades (upgrade.cpp).
//
// Assumes: one thread, the default libuv loop; run() is called once.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "master/admin.h"
#include "config/config.h"
#include "master/acceptor.h"
#include "master/agones.h"
#include "master/stats.h"
#include "master/supervisor.h"
#include "shm/segment.h"

namespace skirmish::auth {
class JwtVerifier;
}

namespace skirmish::master {

class Master : private Supervisor::Listener {
 public:
  // `jwt`: [auth]'s verifier, made in main() (null = auth off); lives as long as the Master.
  Master(const config::Config& cfg, const module::Game& game, const auth::JwtVerifier* jwt = nullptr);
  ~Master() override;
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Runs until drained. Returns the process exit code.
  int run();

 private:
  static constexpr const char* kUpgradeEnv = "SKIRMISH_UPGRADE";
  static shm::Sizes sizes_of(const config::Config& c, const module::Game& g);

  bool start(std::string& error);
  bool start_common(std::string& error);
  void start_agones(uint16_t port);  // agones.h; port 0 = not under Agones
  void start_drain_timer();
  // Binary upgrade, new side (upgrade.cpp): start from the inherited
  // sockets and segment; polled until this master owns the segment and
  // runs the coordinator.
  bool start_inherited(const std::string& env, std::string& error);
  void take_over_step();
  // Binary upgrade, old side (upgrade.cpp).
  void begin_upgrade();
  void on_upgrade_message(ssize_t nread, const char* data);
  void upgrade_failed(const std::string& why);
  void hand_over();
  void close_upgrade_pipe();

  // Supervisor::Listener.
  void on_worker_started(uint32_t index, uv_pipe_t* pipe) override;
  void on_worker_gone(uint32_t index) override;
  bool on_other_exit(pid_t pid, int status) override;  // upgrade.cpp: the new master
  void on_exit_while_draining() override;

  bool own_worker(uint32_t index) const { return index >= base_ && index < base_ + cfg_.workers; }
  void begin_drain(const char* why);
  void finish_if_drained();
  void reload();
  void post(uint32_t index, const shm::Event& e) { supervisor_->post(index, e); }
  admin::Response admin_request(const std::string& target);

  const module::Game* game_;  // loaded and checked in main() before anything else
  const auth::JwtVerifier* jwt_;  // [auth] on, else null; made in main()
  config::Config cfg_;       // what runs: the file at start, flags over it, live keys since
  config::Config file_cfg_;  // what the file said at start or the last SIGHUP
  std::unique_ptr<shm::Segment> seg_;
  uv_loop_t* loop_ = nullptr;
  std::unique_ptr<admin::AdminServer> admin_;
  uv_signal_t sigterm_, sigint_, sighup_, sigchld_, sigusr2_;
  uv_timer_t drain_timer_, upgrade_timer_, takeover_timer_;
  std::vector<int> event_fds_;
  uint32_t bank_ = 0;  // worker bank (0 or 1) of this generation
  uint32_t base_ = 0;  // its first worker slot
  // Upgrade, old side.
  pid_t upgrade_pid_ = 0;              // the new master, until it took over or failed
  uv_pipe_t* upgrade_pipe_ = nullptr;  // its "ready" pipe
  bool handed_over_ = false;
  bool upgrade_failing_ = false;  // failed; waiting to reap the new master
  // Upgrade, new side.
  pid_t predecessor_ = 0;
  int ready_fd_ = -1;
  bool owner_ = true;  // this master owns the segment (header pid)
  int64_t upgrade_started_ms_ = 0;
  int64_t start_ms_ = 0;
  pid_t pid_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
  int64_t drain_started_ms_ = 0;
  MasterStats stats_{};  // value-initialised: every count 0
  std::unique_ptr<AgonesSdk> agones_;  // set only under Agones
  // Made in start_common, once the bank is known; they refer to the
  // members above, so they are declared (and destroyed) after them.
  std::unique_ptr<Acceptor> acceptor_;
  std::unique_ptr<Supervisor> supervisor_;
};

}  // namespace skirmish::master
