// The supervisor (supervisor.h): spawn, reap, respawn with back-off,
// heartbeats, marking a dead worker Down.
#include "master/supervisor.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "coordinator/coordinator_process.h"
#include "core/child.h"
#include "core/log.h"
#include "core/process.h"
#include "shm/atomic_field.h"
#include "worker/worker_process.h"

namespace skirmish::master {

namespace {

constexpr uint64_t kHeartbeatCheckMs = 250;
// A child that dies within this long of starting counts as a quick death
// and doubles the respawn delay; one that lived longer resets it.
constexpr int64_t kQuickDeathMs = 10000;
constexpr uint64_t kFirstBackoffMs = 100;

template <class T>
uv_handle_t* H(T* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

}  // namespace

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "status " + std::to_string(status);
}


Supervisor::Supervisor(uv_loop_t* loop, const config::Config& cfg, shm::Segment& seg, MasterStats& stats,
                       Listener& listener, pid_t master_pid, int64_t start_ms, const std::vector<int>& event_fds,
                       uint32_t base, const module::Game* game, const auth::JwtVerifier* jwt)
    : loop_(loop),
      cfg_(cfg),
      game_(game),
      jwt_(jwt),
      seg_(seg),
      stats_(stats),
      listener_(listener),
      master_pid_(master_pid),
      start_ms_(start_ms),
      event_fds_(event_fds),
      base_(base),
      children_(seg.process_count()) {
  uv_timer_init(loop_, &heartbeat_timer_);
  heartbeat_timer_.data = this;
  uv_timer_start(&heartbeat_timer_, [](uv_timer_t* t) { static_cast<Supervisor*>(t->data)->check_heartbeats(); },
                 kHeartbeatCheckMs, kHeartbeatCheckMs);
  for (Child& c : children_) {
    c.respawn_timer = new uv_timer_t;
    uv_timer_init(loop_, c.respawn_timer);
    c.respawn_timer->data = this;
  }
}

std::string Supervisor::role_name(uint32_t index) const {
  return seg_.is_worker(index) ? "worker " + std::to_string(index) : "coordinator";
}

bool Supervisor::spawn(uint32_t index) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    spdlog::error("socketpair: {}", strerror(errno));
    return false;
  }
  // The row is reset before fork: the child writes Up into it as soon as it
  // runs, and a store from the parent after fork() could overwrite that.
  const int64_t now = core::monotonic_ms();
  shm::ProcessRow& row = seg_.process(index);
  shm::reset_counters(row.counters);
  shm::shared_store(row.handoffs_taken, uint64_t(0));
  shm::shared_store(row.heartbeat_ms, now);
  shm::shared_store(row.started_at_ms, now);
  shm::shared_store(row.fd_capacity, UINT64_MAX);
  shm::shared_store(row.state, shm::ProcessState::Starting);
  spdlog::default_logger()->flush();  // nothing buffered may be written twice
  pid_t pid = fork();
  if (pid < 0) {
    spdlog::error("fork: {}", strerror(errno));
    ::close(sv[0]);
    ::close(sv[1]);
    return false;
  }
  const bool worker = seg_.is_worker(index);
  if (pid == 0) {
    if (!core::prepare_child(master_pid_, sv[1], event_fds_)) _exit(0);
    core::ChildContext ctx{&cfg_, &seg_, index, sv[1], master_pid_, start_ms_, game_, jwt_};
    int code = worker ? worker::run_worker_process(ctx) : coordinator::run_coordinator_process(ctx);
    // _exit: the master's atexit handlers and static destructors are not ours.
    _exit(code);
  }
  ::close(sv[1]);
  Child& c = children_[index];
  c.pid = pid;
  c.started_ms = now;
  c.pipe = new uv_pipe_t;
  uv_pipe_init(loop_, c.pipe, worker ? 1 : 0);
  uv_pipe_open(c.pipe, sv[0]);
  if (worker) listener_.on_worker_started(index, c.pipe);
  if (index == seg_.coordinator_index()) coordinator_started_ = true;
  shm::shared_store(row.pid, int32_t(pid));
  spdlog::info("{} started (pid {})", role_name(index), pid);
  return true;
}

void Supervisor::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (listener_.on_other_exit(pid, status)) continue;
    for (uint32_t i = 0; i < children_.size(); ++i)
      if (children_[i].pid == pid) on_child_exit(i, status);
  }
}

void Supervisor::on_child_exit(uint32_t index, int status) {
  Child& c = children_[index];
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (draining_ && clean)
    spdlog::info("{} (pid {}) {}", role_name(index), c.pid, describe_status(status));
  else
    spdlog::error("{} (pid {}) {}", role_name(index), c.pid, describe_status(status));
  c.pid = 0;
  const bool was_lost = c.lost;
  c.lost = false;
  if (c.pipe != nullptr) {
    // Pending handoffs complete with UV_ECANCELED and go to another worker.
    uv_close(H(c.pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    c.pipe = nullptr;
  }
  shm::shared_store(seg_.process(index).last_exit_status, int32_t(status));
  if (seg_.is_worker(index)) {
    // A drained worker's matches have ended. One that died during a drain
    // is not respawned (a stopping master starts nothing, and its players
    // cannot come back: nothing listens), but the coordinator, which lives
    // until the workers are gone, hands its matches to a surviving worker,
    // so the players on other workers still finish them. One lost()
    // already marked down is marked again only if it was a drain's (its
    // rows were left alone then).
    if (!was_lost || draining_) mark_worker_down(index, !draining_ || !clean);
    listener_.on_worker_gone(index);
  } else {
    shm::ProcessRow& row = seg_.process(index);
    shm::shared_store(row.pid, int32_t(0));
    shm::shared_store(row.state, shm::ProcessState::Down);
  }

  if (draining_) {
    listener_.on_exit_while_draining();
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
    c.fatal = true;
    spdlog::critical("{} exited with status 2 (configuration): not respawning", role_name(index));
    return;
  }
  schedule_respawn(index);
}

void Supervisor::lost(uint32_t index, const char* why) {
  if (index >= children_.size() || !seg_.is_worker(index)) return;
  Child& c = children_[index];
  if (c.pid <= 0 || c.lost) return;
  c.lost = true;
  if (c.pipe != nullptr) {
    uv_close(H(c.pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    c.pipe = nullptr;
  }
  if (draining_) {
    SPDLOG_DEBUG("{} (pid {}) closed its pipe while draining ({})", role_name(index), c.pid, why);
  } else {
    spdlog::error("{} (pid {}) is gone ({}): marking it down before its exit is reaped", role_name(index), c.pid,
                  why);
    mark_worker_down(index, true);
  }
  listener_.on_worker_gone(index);
}

void Supervisor::mark_worker_down(uint32_t index, bool tell_coordinator) {
  shm::ProcessRow& row = seg_.process(index);
  shm::shared_store(row.pid, int32_t(0));
  shm::shared_store(row.state, shm::ProcessState::Down);
  shm::shared_store(row.counters.connections_open, uint64_t(0));
  // Its connections are gone; their seats wait out the resume grace.
  auto players = seg_.players();
  const int64_t now = core::monotonic_ms();
  {
    auto guard = players.lock();
    players.for_each_used([&](shm::Handle, shm::PlayerRow& p) {
      if (p.state == shm::PlayerState::Connected && p.worker == index) {
        p.worker = shm::kNoWorker;
        p.disconnected_at_ms = now;
        shm::shared_store(p.state, shm::PlayerState::Disconnected);
      }
    });
  }
  // Its matches go on elsewhere: the coordinator hands them to live workers.
  if (tell_coordinator)
    post(seg_.coordinator_index(), shm::make_event(shm::EventType::WorkerDown, uint16_t(seg_.master_index()), index));
}

void Supervisor::reap_foreign_rows() {
  // Worker slots of the other generation: after a failed upgrade (the new
  // master's workers died with it) or when the old master was killed
  // mid-upgrade (its workers died with it), their rows still say Up.
  const int64_t now = core::monotonic_ms();
  for (uint32_t i = 0; i < seg_.worker_slots(); ++i) {
    if (own_worker(i)) continue;
    const shm::ProcessRow& row = seg_.process(i);
    if (shm::shared_load(row.state) == shm::ProcessState::Down) continue;
    const int32_t pid = shm::shared_load(row.pid);
    // pid 0 and not Down: reset for a fork whose pid is not yet written;
    // stale only if it stays so.
    const bool gone = pid != 0 ? !shm::pid_alive(pid)
                               : now - shm::shared_load(row.started_at_ms) > int64_t(cfg_.heartbeat_timeout_ms);
    if (!gone) continue;
    spdlog::warn("worker slot {} (pid {}) of another generation is gone: marking it down", i, pid);
    mark_worker_down(i, true);
  }
}

void Supervisor::schedule_respawn(uint32_t index) {
  Child& c = children_[index];
  const int64_t lived = core::monotonic_ms() - c.started_ms;
  c.quick_deaths = lived < kQuickDeathMs ? c.quick_deaths + 1 : 0;
  uint64_t delay = 0;
  if (c.quick_deaths > 0) {
    uint32_t shift = std::min<uint32_t>(c.quick_deaths - 1, 20);
    delay = std::min<uint64_t>(cfg_.respawn_backoff_max_ms, kFirstBackoffMs << shift);
  }
  if (c.quick_deaths >= 5)
    spdlog::critical("{} is crash-looping: {} quick deaths in a row; next start in {} ms", role_name(index),
                     c.quick_deaths, delay);
  c.respawn_pending = true;
  ++stats_.respawns;
  uv_timer_start(
      c.respawn_timer,
      [](uv_timer_t* t) {
        auto* s = static_cast<Supervisor*>(t->data);
        for (uint32_t i = 0; i < s->children_.size(); ++i) {
          Child& ch = s->children_[i];
          if (ch.respawn_timer != t || !ch.respawn_pending) continue;
          ch.respawn_pending = false;
          if (s->draining_) return;
          shm::shared_add(s->seg_.process(i).respawns, uint32_t(1));
          if (!s->spawn(i)) s->schedule_respawn(i);
        }
      },
      delay, 0);
}

void Supervisor::check_heartbeats() {
  reap_foreign_rows();
  const int64_t now = core::monotonic_ms();
  for (uint32_t i = 0; i < children_.size(); ++i) {
    Child& c = children_[i];
    if (c.pid <= 0) continue;
    const shm::ProcessRow& row = seg_.process(i);
    int64_t age = now - shm::shared_load(row.heartbeat_ms);
    if (age > int64_t(cfg_.heartbeat_timeout_ms)) {
      // Hung (endless loop, SIGSTOP, stuck on a lock): replace it. SIGKILL
      // works on a stopped process too; the SIGCHLD path respawns it.
      ++stats_.heartbeat_kills;
      spdlog::error("{} (pid {}) missed its heartbeat for {} ms: killing it", role_name(i), c.pid, age);
      kill(c.pid, SIGKILL);
      shm::shared_store(seg_.process(i).heartbeat_ms, now);  // one kill per hang
    }
  }
}

void Supervisor::stop_respawning() {
  draining_ = true;
  for (Child& c : children_) {
    uv_timer_stop(c.respawn_timer);
    c.respawn_pending = false;
  }
}

void Supervisor::kill_all(const char* why) {
  for (uint32_t i = 0; i < children_.size(); ++i)
    if (children_[i].pid > 0) {
      if (why != nullptr) spdlog::error("{} (pid {}) {}: killing it", role_name(i), children_[i].pid, why);
      kill(children_[i].pid, SIGKILL);
    }
}

bool Supervisor::any_alive() const {
  for (const Child& c : children_)
    if (c.pid > 0) return true;
  return false;
}

void Supervisor::post(uint32_t index, const shm::Event& e) {
  const uint64_t refused = seg_.post(seg_.master_index(), index, e);
  if (refused == 0) return;
  ++stats_.mailbox_full;
  if (refused % 1000 == 1)
    spdlog::warn("mailbox of {} full: event {} not delivered ({} so far)", role_name(index), e.type, refused);
}

void Supervisor::close() {
  if (closed_) return;
  closed_ = true;
  uv_close(H(&heartbeat_timer_), nullptr);
  for (Child& c : children_) {
    if (c.pipe != nullptr) uv_close(H(c.pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    c.pipe = nullptr;
    uv_close(H(c.respawn_timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

}  // namespace skirmish::master
