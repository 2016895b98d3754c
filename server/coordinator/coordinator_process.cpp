#include "coordinator/coordinator_process.h"

#include <spdlog/spdlog.h>
#include <uv.h>

#include "coordinator/coordinator.h"
#include "core/child_loop.h"
#include "core/process.h"
#include "shm/atomic_field.h"
#include "shm/histogram_field.h"
#include "shm/segment.h"

namespace skirmish::coordinator {

namespace {

// Housekeeping scans whole tables (every player row): once a second is
// plenty for grace periods counted in seconds, and keeps an idle
// coordinator at ~0 CPU with large tables.
constexpr int64_t kSweepEveryMs = 1000;

// A drain (SIGTERM): no more matches, but the coordinator stays until the
// workers are gone, so a worker that dies meanwhile has its matches
// adopted by another. Past the drain (plus the workers' time to deliver
// the deadline's MatchEnds, below the master's kill at +2 s) it goes.
constexpr int64_t kDrainExitGraceMs = 1500;

// The coordinator on the child skeleton (core/child_loop.h): a round on
// every wake (TicketChanged) and on its own timer (windows widen with
// time, so a round can form matches with no new ticket).
class CoordinatorRole final : public core::ChildRole {
 public:
  CoordinatorRole(core::ChildLoop& loop, Coordinator& c) : loop_(loop), coord_(c) {
    uv_timer_init(loop_.loop(), &tick_);
    tick_.data = this;
  }

  void on_start() override {
    const uint64_t every = loop_.config().interval_ms;
    uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<CoordinatorRole*>(t->data)->work(true); }, every, every);
  }
  void on_shutdown(uint32_t drain_ms) override {
    if (drain_ms == 0) {
      // A binary upgrade: the new master starts its own coordinator.
      spdlog::info("shutdown; exiting");
      loop_.stop();
      return;
    }
    if (coord_.draining()) return;
    coord_.begin_drain();
    drain_deadline_ms_ = core::monotonic_ms() + int64_t(drain_ms) + kDrainExitGraceMs;
    shm::shared_store(loop_.row().state, shm::ProcessState::Draining);
    spdlog::info("draining: no more matches; staying until the workers are gone (up to {} ms)", drain_ms);
  }
  void on_config(const config::Config& cfg) override { coord_.apply_config(cfg); }
  void on_event(const shm::Event& e) override {
    if (static_cast<shm::EventType>(e.type) == shm::EventType::WorkerDown) {
      coord_.adopt_orphaned_matches();
      coord_.announce_ended(e.a);
    }
  }
  void on_wake() override { work(false); }
  void on_heartbeat() override {
    // Counters for /metrics, a few times a second.
    coord_.publish_stats(loop_.row());
  }
  void on_stop() override {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&tick_)))
      uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  }

 private:
  void work(bool timer) {
    const int64_t now = core::monotonic_ms();
    if (coord_.draining() && timer && (workers_gone() || now >= drain_deadline_ms_)) {
      coord_.record(now);  // every match has ended: their files are finished
      spdlog::info("drained; exiting");
      loop_.stop();
      return;
    }
    if (timer && now - last_sweep_ms_ >= kSweepEveryMs) {
      last_sweep_ms_ = now;
      coord_.sweep(now);
    }
    if (timer) coord_.record(now);
    // A round scans the ticket rows: only when there are tickets.
    if (loop_.context().seg->tickets().size() > 0) coord_.round(now);
  }
  bool workers_gone() const {
    const shm::Segment& seg = *loop_.context().seg;
    for (uint32_t w = 0; w < seg.worker_slots(); ++w)
      if (shm::shared_load(seg.process(w).state) != shm::ProcessState::Down) return false;
    return true;
  }

  core::ChildLoop& loop_;
  Coordinator& coord_;
  uv_timer_t tick_;
  int64_t last_sweep_ms_ = 0;
  int64_t drain_deadline_ms_ = 0;
};

}  // namespace

int run_coordinator_process(const core::ChildContext& ctx) {
  core::ChildLoop loop(ctx, "coordinator", "coordinator", /*carries_handles=*/false);
  Coordinator coord(loop.config(), ctx.seg, ctx.index, ctx.game);
  coord.recover();
  CoordinatorRole role(loop, coord);
  if (!loop.start(&role)) return 1;
  spdlog::info("coordinator up");
  loop.run();
  return 0;
}

}  // namespace skirmish::coordinator
