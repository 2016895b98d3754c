// The supervisor: the master's child processes, from fork to reap.
//
// Promises:
// - spawn: a socketpair (the IPC pipe: SCM_RIGHTS handoffs to a worker, its
//   close reports back; EOF tells the child its master is gone), the
//   child's row reset to Starting *before* fork (the child writes Up into
//   it as soon as it runs, and a store from the parent after fork() could
//   overwrite that), fork, then the child runs its role and _exits.
// - SIGCHLD reaps (reap). A dead child is respawned with exponential
//   back-off: a death within 10 s of starting is a quick one and doubles
//   the delay from 100 ms up to respawn_backoff_max_ms; five quick deaths
//   in a row are logged as critical (a crash loop); a child that lived
//   longer starts again at once. Exit code 2 (bad configuration) is not
//   respawned. While draining nothing is respawned.
// - A child whose heartbeat in its row is older than heartbeat_timeout_ms
//   (an endless loop, SIGSTOP, stuck on a lock) is killed with SIGKILL,
//   once per hang, and so replaced. Checked every 250 ms.
// - A dead worker is marked Down at once: its row (pid 0, no connections),
//   its Connected players Disconnected (their seats wait out the resume
//   grace), the coordinator told (WorkerDown) so its matches go on
//   elsewhere, except while draining. Worker rows of the other bank whose
//   process is gone (a failed upgrade, an old master killed mid-upgrade)
//   are marked Down the same way.
//
// Assumes: one thread (the master's loop); the Listener is told of every
// start and exit and decides what a child's death means beyond its slot
// (the acceptor's hand-off set, the drain's end, the upgrade's new master,
// which is a child of this process but not a slot).
#pragma once

#include <uv.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "master/stats.h"
#include "shm/segment.h"

namespace skirmish::auth {
class JwtVerifier;
}

namespace skirmish::master {

// "exited with status N", "killed by signal N (name)": for log lines.
std::string describe_status(int status);

class Supervisor {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // Worker `index` of this bank was forked; `pipe` is the master's end of
    // its IPC socketpair (the supervisor closes it when the worker dies).
    virtual void on_worker_started(uint32_t index, uv_pipe_t* pipe) = 0;
    // Worker `index` of this bank died; its pipe is closing, its row is Down.
    virtual void on_worker_gone(uint32_t index) = 0;
    // A reaped child that is no slot of ours; true if the listener knew it.
    virtual bool on_other_exit(pid_t pid, int status) = 0;
    // A child exited while draining, after its slot was cleaned up.
    virtual void on_exit_while_draining() = 0;
  };

  // `master_pid`, `start_ms` and `event_fds` go to every child; this
  // master's workers are slots [base, base + cfg.workers).
  Supervisor(uv_loop_t* loop, const config::Config& cfg, shm::Segment& seg, MasterStats& stats, Listener& listener,
             pid_t master_pid, int64_t start_ms, const std::vector<int>& event_fds, uint32_t base,
             const module::Game* game, const auth::JwtVerifier* jwt);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Forks the process of slot `index`. False (logged) if it could not.
  bool spawn(uint32_t index);
  // SIGCHLD: reaps every child that exited.
  void reap();
  // Worker `index`'s pipe says it is gone (EOF, a failed write) before its
  // exit is reaped: it leaves the hand-off set now (its pipe closed, the
  // listener told) and, unless draining (a drained worker closes its pipe
  // as it exits), is marked down at once so its players' tokens are free
  // for resume and its matches go to the coordinator. SIGCHLD later only
  // reaps and respawns. Idempotent.
  void lost(uint32_t index, const char* why);
  // No respawn from now on (a drain, a hand-over); pending ones cancelled.
  void stop_respawning();
  bool draining() const { return draining_; }
  // SIGKILL to every live child; `why` (if not null) logged for each.
  void kill_all(const char* why);
  bool any_alive() const;
  pid_t pid(uint32_t index) const { return children_[index].pid; }

  bool own_worker(uint32_t index) const { return index >= base_ && index < base_ + cfg_.workers; }
  // A child slot this master runs: its workers, and the coordinator once
  // started (an upgrade's new master starts it after the old one exits).
  bool own(uint32_t index) const {
    return own_worker(index) || (index == seg_.coordinator_index() && coordinator_started_);
  }
  bool coordinator_started() const { return coordinator_started_; }
  size_t slots() const { return children_.size(); }

  // Posts `e` from the master to process `index`; a full mailbox is
  // counted (MasterStats::mailbox_full) and logged once per thousand.
  void post(uint32_t index, const shm::Event& e);
  std::string role_name(uint32_t index) const;

  // Closes every handle; call before the loop's last run.
  void close();

 private:
  struct Child {
    pid_t pid = 0;
    uv_pipe_t* pipe = nullptr;  // master end of the IPC socketpair
    uint32_t quick_deaths = 0;  // consecutive deaths soon after start
    int64_t started_ms = 0;
    bool respawn_pending = false;
    bool fatal = false;  // exited 2: not respawned
    bool lost = false;   // lost() ran for this process: its exit only reaps
    uv_timer_t* respawn_timer = nullptr;
  };

  void on_child_exit(uint32_t index, int status);
  void schedule_respawn(uint32_t index);
  void check_heartbeats();
  // A worker row of the other bank whose process is gone: mark it Down,
  // free its players for resume, tell the coordinator.
  void reap_foreign_rows();
  void mark_worker_down(uint32_t index, bool tell_coordinator);

  uv_loop_t* loop_;
  const config::Config& cfg_;
  const module::Game* game_;
  const auth::JwtVerifier* jwt_;
  shm::Segment& seg_;
  MasterStats& stats_;
  Listener& listener_;
  pid_t master_pid_;
  int64_t start_ms_;
  const std::vector<int>& event_fds_;
  uint32_t base_;
  uv_timer_t heartbeat_timer_;
  std::vector<Child> children_;  // by process index; this master's bank and the coordinator
  bool coordinator_started_ = false;
  bool draining_ = false;
  bool closed_ = false;
};

}  // namespace skirmish::master
