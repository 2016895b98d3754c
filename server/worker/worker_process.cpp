#include "worker/worker_process.h"

#include <spdlog/spdlog.h>
#include <uv.h>

#include <dirent.h>
#include <sys/resource.h>

#include "core/child_loop.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "worker/worker.h"

namespace skirmish::worker {

namespace {

// Connections this process can hold: its descriptor limit, less what it
// holds now (stdio, eventfds, IPC, the loop's), less the reserve kept for
// the unexpected (logs, a handoff in flight).
uint64_t fd_capacity(uint32_t reserved) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  uint64_t open = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++open;
    closedir(d);
  }
  const uint64_t used = open + reserved;
  return rl.rlim_cur > used ? rl.rlim_cur - used : 0;
}

// The worker on the child skeleton (core/child_loop.h): connections from
// the IPC pipe, match events from the mailbox, and the leaving mechanism
// (Worker::shutdown_all / hand_over) on SIGTERM and SIGUSR2, whose end this
// only watches: the matches tick on while seated players finish them.
class WorkerRole final : public core::ChildRole {
 public:
  WorkerRole(core::ChildLoop& loop, Worker& w) : loop_(loop), w_(w) {}

  void on_start() override {
    const uint64_t capacity = fd_capacity(loop_.config().reserved_fds);
    shm::shared_store(loop_.row().fd_capacity, capacity);
    if (capacity < 16)
      spdlog::warn("room for only {} connections: raise the descriptor limit (ulimit -n) or lower reserved_fds",
                   capacity);
    w_.take_owned_matches();
  }
  void on_shutdown(uint32_t drain_ms) override { leave(false, drain_ms); }
  void on_hand_over(uint32_t drain_ms) override { leave(true, drain_ms); }
  void on_config(const config::Config& cfg) override { w_.apply_config(cfg); }
  void on_event(const shm::Event& e) override { w_.on_event(e); }
  void on_heartbeat() override {
    w_.publish_stats(loop_.row());
    if (w_.left()) {
      spdlog::info("drained; exiting ({} sessions, {} matches left)", w_.session_count(), w_.owned_matches());
      loop_.stop();
    }
  }
  void on_ipc_readable(uv_pipe_t* ipc) override {
    // During a drain one that crossed the Shutdown in flight is taken and
    // told at once (ServerShutdown): Worker::accept_session.
    while (uv_pipe_pending_count(ipc) > 0 && uv_pipe_pending_type(ipc) == UV_TCP)
      w_.accept_handoff(reinterpret_cast<uv_stream_t*>(ipc));
  }
  void on_pass(bool quantum) override { w_.on_pass(quantum); }
  void on_stop() override { w_.close_all(); }

 private:
  void leave(bool upgrade, uint32_t drain_ms) {
    if (w_.leaving()) return;
    shm::shared_store(loop_.row().state, shm::ProcessState::Draining);
    const size_t before = w_.session_count();
    if (upgrade) {
      const size_t sent = w_.hand_over(drain_ms);
      spdlog::info("handing over: {} sessions sent to the new generation, {} seated, {} matches to finish", sent,
                   before - sent, w_.owned_matches());
    } else {
      const size_t sent = w_.shutdown_all(drain_ms);
      spdlog::info("draining: {} sessions sent away, {} seated, {} matches to finish (up to {} ms)", sent,
                   before - sent, w_.owned_matches(), drain_ms);
    }
    if (w_.left()) loop_.stop();
  }

  core::ChildLoop& loop_;
  Worker& w_;
};

}  // namespace

int run_worker_process(const core::ChildContext& ctx) {
  core::ChildLoop loop(ctx, "worker-" + std::to_string(ctx.index), "worker " + std::to_string(ctx.index),
                       /*carries_handles=*/true);
  Worker w(loop.loop(), loop.config(), uint16_t(ctx.index), ctx.start_ms, ctx.seg, ctx.game, ctx.jwt);
  w.set_report_stream(loop.ipc());
  WorkerRole role(loop, w);
  if (!loop.start(&role)) return 1;
  spdlog::info("worker {} up", ctx.index);
  // On the I/O quantum ([server] io_quantum_ms; 0 = off) while it has
  // sessions: one pass per quantum however many sockets have traffic, and
  // the clients' writes between passes wake nobody (README "I/O quantum"). With no session a pass waits for anything (a
  // connection from the master wakes it at once), so an idle worker does
  // not wake 1000/quantum times a second.
  loop.run_on_quantum([&] { return w.session_count() == 0 ? 0u : loop.config().io_quantum_ms; });
  w.publish_stats(loop.row());
  const Stats& st = w.stats();
  const uint64_t passes = st.tick_drift_us.count;
  spdlog::info("worker {}: {} ticks in {} passes (late {}, skipped {}, drift mean {} us), {} matches ended, "
               "snapshots {} full / {} delta, inputs {} (dropped {}, rejected {})",
               ctx.index, st.ticks, passes, st.ticks_late, st.ticks_skipped,
               passes ? st.tick_drift_us.sum / passes : 0, st.matches_ended, st.snapshots_full, st.snapshots_delta,
               st.inputs, st.inputs_dropped, st.inputs_rejected);
  return 0;
}

}  // namespace skirmish::worker
