#include "worker/worker_process.h"

#include <spdlog/spdlog.h>
#include <uv.h>

#include <dirent.h>
#include <sys/resource.h>

#include "core/log.h"
#include "core/process.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "core/live_config.h"
#include "worker/worker.h"

namespace skirmish::worker {

namespace {

constexpr uint64_t kHeartbeatMs = 250;

struct Proc {
  const core::ChildContext* ctx;
  config::Config cfg;
  uv_loop_t loop;
  uv_pipe_t ipc;
  uv_poll_t event_poll;
  uv_timer_t heartbeat;
  Worker* worker = nullptr;
  shm::ProcessRow* row = nullptr;
  char ipc_byte[64];
};

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

void stop(Proc* p) {
  p->worker->close_all();
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&p->ipc), reinterpret_cast<uv_handle_t*>(&p->event_poll),
                         reinterpret_cast<uv_handle_t*>(&p->heartbeat)})
    if (!uv_is_closing(h)) uv_close(h, nullptr);
}

// SIGTERM (Shutdown) and SIGUSR2 (HandOver): the worker's leaving
// mechanism (Worker::shutdown_all / hand_over); this loop only watches it
// end. Its matches tick on while seated players finish them.
void begin_leaving(Proc* p, shm::EventType why, uint32_t drain_ms) {
  if (p->worker->leaving()) return;
  shm::shared_store(p->row->state, shm::ProcessState::Draining);
  const size_t before = p->worker->session_count();
  if (why == shm::EventType::HandOver) {
    const size_t sent = p->worker->hand_over(drain_ms);
    spdlog::info("handing over: {} sessions sent to the new generation, {} seated, {} matches to finish", sent,
                 before - sent, p->worker->owned_matches());
  } else {
    const size_t sent = p->worker->shutdown_all(drain_ms);
    spdlog::info("draining: {} sessions sent away, {} seated, {} matches to finish (up to {} ms)", sent,
                 before - sent, p->worker->owned_matches(), drain_ms);
  }
  if (p->worker->left()) stop(p);
}

void on_heartbeat(uv_timer_t* t) {
  auto* p = static_cast<Proc*>(t->data);
  shm::shared_store(p->row->heartbeat_ms, core::monotonic_ms());
  p->worker->publish_stats(*p->row);
  if (p->worker->left()) {
    spdlog::info("drained; exiting ({} sessions, {} matches left)", p->worker->session_count(),
                 p->worker->owned_matches());
    stop(p);
  }
}

void on_event(uv_poll_t* h, int status, int) {
  auto* p = static_cast<Proc*>(h->data);
  if (status < 0) return;
  shm::drain_eventfd(p->ctx->seg->process(p->ctx->index).event_fd);
  shm::Mailbox mb = p->ctx->seg->mailbox(p->ctx->index);
  shm::Event evs[64];
  while (size_t n = mb.pop_batch(evs, 64)) {
    for (size_t i = 0; i < n; ++i) {
      const shm::Event& e = evs[i];
      switch (static_cast<shm::EventType>(e.type)) {
        case shm::EventType::Shutdown:
        case shm::EventType::HandOver:
          begin_leaving(p, static_cast<shm::EventType>(e.type), uint32_t(e.a));
          break;
        case shm::EventType::Reload:
          if (core::apply_live_key(p->cfg, e)) {
            p->worker->apply_config(p->cfg);
            if (e.a == uint32_t(core::LiveKey::Commit)) spdlog::info("config reloaded");
          }
          break;
        default:
          p->worker->on_event(e);
          break;
      }
    }
  }
}

void on_ipc_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* p = static_cast<Proc*>(s->data);
  if (nread < 0) {
    // EOF: the master is gone. Nothing here may outlive it.
    spdlog::warn("master gone ({}); exiting", uv_strerror(int(nread)));
    stop(p);
    return;
  }
  auto* pipe = reinterpret_cast<uv_pipe_t*>(s);
  while (uv_pipe_pending_count(pipe) > 0) {
    if (uv_pipe_pending_type(pipe) != UV_TCP) break;
    // During a drain one that crossed the Shutdown in flight is taken and
    // told (ServerShutdown) at the next sweep, like every other handshake.
    p->worker->accept_handoff(s);
  }
}

}  // namespace

int run_worker_process(const core::ChildContext& ctx) {
  Proc p;
  p.ctx = &ctx;
  p.cfg = *ctx.cfg;
  log::init_logging("worker-" + std::to_string(ctx.index), *log::parse_level(p.cfg.log_level));
  core::set_process_title("skirmish: worker " + std::to_string(ctx.index));
  p.row = &ctx.seg->process(ctx.index);

  uv_loop_init(&p.loop);
  Worker w(&p.loop, p.cfg, uint16_t(ctx.index), ctx.start_ms, ctx.seg);
  p.worker = &w;

  uv_pipe_init(&p.loop, &p.ipc, 1);
  p.ipc.data = &p;
  if (int r = uv_pipe_open(&p.ipc, ctx.ipc_fd)) {
    spdlog::critical("ipc pipe: {}", uv_strerror(r));
    return 1;
  }
  w.set_report_stream(reinterpret_cast<uv_stream_t*>(&p.ipc));
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&p.ipc),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* pp = static_cast<Proc*>(h->data);
        *buf = uv_buf_init(pp->ipc_byte, sizeof pp->ipc_byte);
      },
      on_ipc_read);

  uv_poll_init(&p.loop, &p.event_poll, p.row->event_fd);
  p.event_poll.data = &p;
  uv_poll_start(&p.event_poll, UV_READABLE, on_event);

  uv_timer_init(&p.loop, &p.heartbeat);
  p.heartbeat.data = &p;
  uv_timer_start(&p.heartbeat, on_heartbeat, 0, kHeartbeatMs);

  const uint64_t capacity = fd_capacity(p.cfg.reserved_fds);
  shm::shared_store(p.row->fd_capacity, capacity);
  if (capacity < 16)
    spdlog::warn("room for only {} connections: raise the descriptor limit (ulimit -n) or lower reserved_fds",
                 capacity);
  shm::shared_store(p.row->heartbeat_ms, core::monotonic_ms());
  shm::shared_store(p.row->state, shm::ProcessState::Up);
  w.take_owned_matches();
  // Events posted while we were down (a respawn) wait in the ring.
  on_event(&p.event_poll, 0, UV_READABLE);
  spdlog::info("worker {} up", ctx.index);

  uv_run(&p.loop, UV_RUN_DEFAULT);
  w.publish_stats(*p.row);
  const Stats& st = w.stats();
  spdlog::info("worker {}: {} ticks in {} passes (late {}, skipped {}, drift mean {} us max {} us), {} matches ended, "
               "snapshots {} full / {} delta, inputs {} (dropped {}, rejected {})",
               ctx.index, st.ticks, st.tick_passes, st.ticks_late, st.ticks_skipped,
               st.tick_passes ? st.tick_drift_sum_us / st.tick_passes : 0, st.tick_drift_max_us, st.matches_ended,
               st.snapshots_full, st.snapshots_delta, st.inputs, st.inputs_dropped, st.inputs_rejected);
  uv_loop_close(&p.loop);
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace skirmish::worker
