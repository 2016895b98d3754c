// The child skeleton (server/core/child_loop.h) that the worker and the
// coordinator both run: a real segment, a real eventfd and mailbox, a real
// socketpair as the IPC pipe to the "master" (this test). Every wait is a
// libuv timer with a deadline.
#include <catch2/catch.hpp>

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/child_loop.h"
#include "core/live_config.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"

using namespace skirmish;

namespace {

constexpr shm::Sizes kSizes{2, 16, 16, 8, 64};

// A segment, the eventfd of worker slot 0, and the socketpair to it.
struct Rig {
  std::string name = "skirmish-test-childloop-" + std::to_string(getpid());
  std::optional<shm::Segment> seg;
  config::Config cfg;
  int master_end = -1;
  int child_end = -1;
  int efd = -1;
  core::ChildContext ctx{};

  Rig() {
    shm::Segment::unlink_name(name);
    std::string error;
    seg = shm::Segment::create(name, kSizes, error);
    INFO(error);
    REQUIRE(seg);
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    REQUIRE(efd >= 0);
    seg->process(0).event_fd = efd;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    master_end = sv[0];
    child_end = sv[1];
    cfg.log_level = "warn";
    ctx = core::ChildContext{&cfg, &*seg, 0, child_end, getpid(), 0};
  }
  ~Rig() {
    if (master_end >= 0) close(master_end);
    close(efd);
    shm::Segment::unlink_name(name);
  }
  void post(const shm::Event& e) { REQUIRE(seg->post(seg->master_index(), 0, e) == 0); }
};

// Records every hook; stops when told, or at a deadline.
struct Recorder final : core::ChildRole {
  core::ChildLoop* loop = nullptr;
  uv_timer_t deadline;
  bool timed_out = false;
  int starts = 0, stops = 0, heartbeats = 0, wakes = 0;
  std::vector<uint32_t> shutdowns, hand_overs;
  std::vector<config::Config> configs;
  std::vector<shm::Event> events;
  bool stop_on_shutdown = true;

  void arm(int ms) {
    uv_timer_init(loop->loop(), &deadline);
    deadline.data = this;
    uv_timer_start(
        &deadline,
        [](uv_timer_t* t) {
          auto* r = static_cast<Recorder*>(t->data);
          r->timed_out = true;
          r->loop->stop();
        },
        uint64_t(ms), 0);
  }
  void on_start() override { ++starts; }
  void on_shutdown(uint32_t ms) override {
    shutdowns.push_back(ms);
    if (stop_on_shutdown) loop->stop();
  }
  void on_hand_over(uint32_t ms) override { hand_overs.push_back(ms); }
  void on_config(const config::Config& c) override { configs.push_back(c); }
  void on_event(const shm::Event& e) override { events.push_back(e); }
  void on_wake() override { ++wakes; }
  void on_heartbeat() override { ++heartbeats; }
  void on_stop() override {
    ++stops;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&deadline)))
      uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  }
};

}  // namespace

TEST_CASE("child loop: start marks the row Up and drains events that waited, and Shutdown stops it") {
  Rig rig;
  // Posted before the child runs, as while a worker is respawned.
  rig.post(shm::make_event(shm::EventType::MatchTicked, 7, 0x10002, 5));
  rig.post(shm::make_event(shm::EventType::HandOver, 7, 1234));
  rig.post(shm::make_event(shm::EventType::Shutdown, 7, 2500));
  rig.post(shm::make_event(shm::EventType::MatchEnded, 7, 0x10003));  // after the stop: dropped
  core::ChildLoop loop(rig.ctx, "test-child", "test child", false);
  Recorder r;
  r.loop = &loop;
  r.arm(5000);
  REQUIRE(loop.start(&r));
  REQUIRE(r.starts == 1);
  REQUIRE(shm::shared_load(rig.seg->process(0).state) == shm::ProcessState::Up);
  REQUIRE(shm::shared_load(rig.seg->process(0).heartbeat_ms) > 0);
  loop.run();
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.events.size() == 1);
  REQUIRE(r.events[0].type == uint16_t(shm::EventType::MatchTicked));
  REQUIRE(r.hand_overs == std::vector<uint32_t>{1234});
  REQUIRE(r.shutdowns == std::vector<uint32_t>{2500});
  REQUIRE(r.stops == 1);
}

TEST_CASE("child loop: a Reload reaches the role once, whole, at its Commit") {
  Rig rig;
  core::ChildLoop loop(rig.ctx, "test-child", "test child", false);
  Recorder r;
  r.loop = &loop;
  r.arm(5000);
  REQUIRE(loop.start(&r));
  config::Config fresh = rig.cfg;
  fresh.idle_timeout_ms = 4321;
  fresh.handshake_timeout_ms = 777;
  fresh.messages_per_second = 55;
  fresh.message_burst = 66;
  fresh.max_inputs_queued = 3;
  fresh.resume_grace_ms = 999;
  fresh.drain_timeout_ms = 12345;
  const auto evs = core::reload_events(fresh, 7);
  // Every key but the Commit: nothing reaches the role yet.
  for (size_t i = 0; i + 1 < evs.size(); ++i) rig.post(evs[i]);
  loop.drain_mailbox();
  REQUIRE(r.configs.empty());
  rig.post(evs.back());
  rig.post(shm::make_event(shm::EventType::Shutdown, 7, 0));
  loop.run();
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.configs.size() == 1);
  const config::Config& got = r.configs[0];
  REQUIRE(got.idle_timeout_ms == 4321);
  REQUIRE(got.handshake_timeout_ms == 777);
  REQUIRE(got.messages_per_second == 55);
  REQUIRE(got.message_burst == 66);
  REQUIRE(got.max_inputs_queued == 3);
  REQUIRE(got.resume_grace_ms == 999);
  REQUIRE(got.drain_timeout_ms == 12345);
  REQUIRE(loop.config().idle_timeout_ms == 4321);
}

TEST_CASE("child loop: EOF on the pipe (the master gone) stops the loop, and heartbeats beat meanwhile") {
  Rig rig;
  core::ChildLoop loop(rig.ctx, "test-child", "test child", false);
  Recorder r;
  r.loop = &loop;
  r.arm(5000);
  REQUIRE(loop.start(&r));
  // Closed by a timer once a few heartbeats went by.
  uv_timer_t closer;
  uv_timer_init(loop.loop(), &closer);
  closer.data = &rig;
  uv_timer_start(
      &closer,
      [](uv_timer_t* t) {
        auto* rg = static_cast<Rig*>(t->data);
        close(rg->master_end);
        rg->master_end = -1;
        uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
      },
      3 * core::ChildLoop::kHeartbeatMs + 50, 0);
  loop.run();
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.heartbeats >= 2);
  REQUIRE(r.stops == 1);
  REQUIRE(r.shutdowns.empty());
}

TEST_CASE("child loop: a pipe that cannot be opened fails start, every handle closed") {
  Rig rig;
  // No descriptor at all: the coordinator used to run on without its pipe
  // (uv_pipe_open's result ignored), deaf to the master's death.
  close(rig.child_end);
  rig.ctx.ipc_fd = -1;
  core::ChildLoop loop(rig.ctx, "test-child", "test child", false);
  Recorder r;
  r.loop = &loop;
  r.arm(5000);
  REQUIRE_FALSE(loop.start(&r));
  REQUIRE(r.starts == 0);
  REQUIRE(r.stops == 1);
  REQUIRE(shm::shared_load(rig.seg->process(0).state) != shm::ProcessState::Up);
  REQUIRE(uv_loop_alive(loop.loop()) == 0);
}
