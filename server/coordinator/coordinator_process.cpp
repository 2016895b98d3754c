#include "coordinator/coordinator_process.h"

#include <spdlog/spdlog.h>
#include <uv.h>

#include <vector>

#include "core/live_config.h"
#include "core/log.h"
#include "core/process.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "shm/histogram_field.h"
#include "coordinator/coordinator.h"

namespace skirmish::coordinator {

namespace {

constexpr uint64_t kHeartbeatMs = 250;

struct Proc {
  const core::ChildContext* ctx;
  config::Config cfg;
  uv_loop_t loop;
  uv_pipe_t ipc;
  uv_poll_t event_poll;
  uv_timer_t heartbeat;
  uv_timer_t tick;
  shm::ProcessRow* row = nullptr;
  Coordinator* coord = nullptr;
  int64_t last_sweep_ms = 0;
  int64_t drain_deadline_ms = 0;
  char ipc_buf[64];
};

void stop(Proc* p) {
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&p->ipc), reinterpret_cast<uv_handle_t*>(&p->event_poll),
                         reinterpret_cast<uv_handle_t*>(&p->heartbeat), reinterpret_cast<uv_handle_t*>(&p->tick)})
    if (!uv_is_closing(h)) uv_close(h, nullptr);
}

// A round on every wake (TicketChanged) and on the timer (windows widen
// with time, so a round can form matches with no new ticket).
// Housekeeping scans whole tables (every player row): once a second is
// plenty for grace periods counted in seconds, and keeps an idle
// coordinator at ~0 CPU with large tables.
constexpr int64_t kSweepEveryMs = 1000;

// A drain (SIGTERM): no more matches, but the coordinator stays until the
// workers are gone, so a worker that dies meanwhile has its matches
// adopted by another. Past the drain (plus the workers' time to deliver
// the deadline's MatchEnds, below the master's kill at +2 s) it goes.
constexpr int64_t kDrainExitGraceMs = 1500;

void begin_drain(Proc* p, uint32_t drain_ms) {
  if (p->coord->draining()) return;
  p->coord->begin_drain();
  p->drain_deadline_ms = core::monotonic_ms() + int64_t(drain_ms) + kDrainExitGraceMs;
  shm::shared_store(p->row->state, shm::ProcessState::Draining);
  spdlog::info("draining: no more matches; staying until the workers are gone (up to {} ms)", drain_ms);
}

bool workers_gone(const Proc* p) {
  for (uint32_t w = 0; w < p->ctx->seg->worker_slots(); ++w)
    if (shm::shared_load(p->ctx->seg->process(w).state) != shm::ProcessState::Down) return false;
  return true;
}

void work(Proc* p, bool timer) {
  const int64_t now = core::monotonic_ms();
  if (p->coord->draining() && timer && (workers_gone(p) || now >= p->drain_deadline_ms)) {
    spdlog::info("drained; exiting");
    stop(p);
    return;
  }
  if (timer && now - p->last_sweep_ms >= kSweepEveryMs) {
    p->last_sweep_ms = now;
    p->coord->sweep(now);
  }
  // A round scans the ticket rows: only when there are tickets.
  if (p->ctx->seg->tickets().size() > 0) p->coord->round(now);
}

void on_event(uv_poll_t* h, int status, int) {
  auto* p = static_cast<Proc*>(h->data);
  if (status < 0) return;
  shm::drain_eventfd(p->row->event_fd);
  shm::Mailbox mb = p->ctx->seg->mailbox(p->ctx->index);
  shm::Event evs[64];
  while (size_t n = mb.pop_batch(evs, 64)) {
    for (size_t i = 0; i < n; ++i) {
      switch (static_cast<shm::EventType>(evs[i].type)) {
        case shm::EventType::Shutdown:
          if (evs[i].a == 0) {
            // A binary upgrade: the new master starts its own coordinator.
            spdlog::info("shutdown; exiting");
            stop(p);
            return;
          }
          begin_drain(p, uint32_t(evs[i].a));
          break;
        case shm::EventType::Reload:
          core::apply_live_key(p->cfg, evs[i]);
          if (evs[i].a == uint32_t(core::LiveKey::Commit)) {
            p->coord->apply_config(p->cfg);
            spdlog::info("config reloaded");
          }
          break;
        case shm::EventType::WorkerDown:
          p->coord->adopt_orphaned_matches();
          break;
        default:
          break;
      }
    }
  }
  work(p, false);
}

}  // namespace

int run_coordinator_process(const core::ChildContext& ctx) {
  Proc p;
  p.ctx = &ctx;
  p.cfg = *ctx.cfg;
  log::init_logging("coordinator", *log::parse_level(p.cfg.log_level));
  core::set_process_title("skirmish: coordinator");
  p.row = &ctx.seg->process(ctx.index);

  Coordinator coord(p.cfg, ctx.seg, ctx.index);
  p.coord = &coord;
  coord.recover();

  uv_loop_init(&p.loop);
  uv_pipe_init(&p.loop, &p.ipc, 0);
  p.ipc.data = &p;
  uv_pipe_open(&p.ipc, ctx.ipc_fd);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&p.ipc),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* pp = static_cast<Proc*>(h->data);
        *buf = uv_buf_init(pp->ipc_buf, sizeof pp->ipc_buf);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        if (n < 0) {
          spdlog::warn("master gone; exiting");
          stop(static_cast<Proc*>(s->data));
        }
      });

  uv_poll_init(&p.loop, &p.event_poll, p.row->event_fd);
  p.event_poll.data = &p;
  uv_poll_start(&p.event_poll, UV_READABLE, on_event);

  uv_timer_init(&p.loop, &p.heartbeat);
  p.heartbeat.data = &p;
  uv_timer_start(
      &p.heartbeat,
      [](uv_timer_t* t) {
        auto* pp = static_cast<Proc*>(t->data);
        shm::shared_store(pp->row->heartbeat_ms, core::monotonic_ms());
        // Counters for /metrics, a few times a second.
        shm::shared_store(pp->row->matches_formed, pp->coord->stats().matches_formed);
        shm::shared_store(pp->row->matches_adopted, pp->coord->stats().adopted);
        shm::hist_publish(pp->row->matchmaking_wait_ms, pp->coord->stats().wait_ms);
      },
      0, kHeartbeatMs);

  uv_timer_init(&p.loop, &p.tick);
  p.tick.data = &p;
  uv_timer_start(&p.tick, [](uv_timer_t* t) { work(static_cast<Proc*>(t->data), true); }, p.cfg.interval_ms,
                 p.cfg.interval_ms);

  shm::shared_store(p.row->heartbeat_ms, core::monotonic_ms());
  shm::shared_store(p.row->state, shm::ProcessState::Up);
  on_event(&p.event_poll, 0, UV_READABLE);
  spdlog::info("coordinator up");
  uv_run(&p.loop, UV_RUN_DEFAULT);
  uv_loop_close(&p.loop);
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace skirmish::coordinator
