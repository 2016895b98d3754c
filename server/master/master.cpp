// The master (master.h): start-up, run, drain, reload and the admin
// port's answers; the accept path, the children and the binary upgrade are
// in acceptor.cpp, supervisor.cpp and upgrade.cpp.
#include "master/master.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

#include "core/live_config.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/process.h"
#include "master/metrics.h"
#include "master/net.h"
#include "shm/atomic_field.h"

namespace skirmish::master {

namespace {

// A child still alive this long after the drain deadline is killed.
constexpr uint64_t kDrainGraceMs = 2000;
constexpr int kBacklog = 4096;

template <class T>
uv_handle_t* H(T* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

}  // namespace

shm::Sizes Master::sizes_of(const config::Config& c, const module::Game& g) {
  // FNV-1a of "name version": an upgrade to another game is refused.
  uint32_t id = 2166136261u;
  for (const char* p : {g.table()->name, " ", g.table()->version})
    for (; *p != '\0'; ++p) id = (id ^ uint8_t(*p)) * 16777619u;
  return shm::Sizes{.max_workers = c.workers,
                    .max_players = c.max_players,
                    .max_tickets = c.max_players,
                    .max_matches = c.max_matches,
                    .mailbox_depth = c.mailbox_depth,
                    .state_bytes = g.table()->state_bytes,
                    .game_id = id,
                    .record_bytes = c.record_dir.empty() ? 0u : c.record_ring_bytes};
}

Master::Master(const config::Config& cfg, const module::Game& game, const auth::JwtVerifier* jwt)
    : game_(&game), jwt_(jwt), cfg_(cfg) {}

Master::~Master() {
  acceptor_.reset();
  supervisor_.reset();
  for (int fd : event_fds_) close(fd);
}

bool Master::start(std::string& error) {
  pid_ = getpid();
  start_ms_ = core::monotonic_ms();
  loop_ = uv_default_loop();
  // What the file says now, without the flags: a SIGHUP reports the keys
  // that changed in the file since (flags such as --port stay in force).
  {
    std::string ignored;
    auto file = config::load_file(cfg_.source, ignored);
    file_cfg_ = file ? *file : cfg_;
  }
  if (const char* env = std::getenv(kUpgradeEnv)) {
    const std::string e = env;
    unsetenv(kUpgradeEnv);  // not for our children, nor a later upgrade
    return start_inherited(e, error);
  }
  shm::Sizes sizes = sizes_of(cfg_, *game_);
  auto seg = shm::Segment::create(cfg_.shm_name, sizes, error);
  if (!seg) return false;
  seg_ = std::make_unique<shm::Segment>(std::move(*seg));
  if (!seg_->stale_replaced().empty())
    spdlog::warn("replaced a stale shared-memory segment /{}: {}", cfg_.shm_name, seg_->stale_replaced());
  spdlog::info("shared memory /{}: {} bytes ({} players, {} matches)", cfg_.shm_name, seg_->bytes(),
               cfg_.max_players, cfg_.max_matches);

  // One eventfd per process slot (both worker banks), made before any fork
  // so every process holds every number and can wake any other; a binary
  // upgrade passes them all on to the new master.
  for (uint32_t i = 0; i < seg_->process_count(); ++i) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
      error = std::string("eventfd: ") + strerror(errno);
      return false;
    }
    event_fds_.push_back(fd);
    shm::ProcessRow& row = seg_->process(i);
    row.index = i;
    row.event_fd = fd;
  }
  seg_->header().worker_bank = 0;
  seg_->process(seg_->master_index()).pid = pid_;

  uint16_t port = 0;
  int fd = -1;
  if (int r = net::listen_raw(cfg_.listen_host, cfg_.listen_port, kBacklog, &fd, &port)) {
    error = "cannot listen on " + cfg_.listen_host + ":" + std::to_string(cfg_.listen_port) + ": " + uv_strerror(r);
    return false;
  }
  admin_ = std::make_unique<admin::AdminServer>(loop_, [this](const std::string& t) { return admin_request(t); });
  uint16_t admin_port = 0;
  if (int r = admin_->listen(cfg_.admin_host, cfg_.admin_port, &admin_port)) {
    close(fd);
    error = "cannot listen on " + cfg_.admin_host + ":" + std::to_string(cfg_.admin_port) + " (admin): " +
            uv_strerror(r);
    return false;
  }
  if (!start_common(error)) return false;
  if (!acceptor_->start(fd)) {
    error = "cannot poll the listen socket";
    return false;
  }

  // Coordinator first, so the workers' first tickets find it up.
  if (!supervisor_->spawn(seg_->coordinator_index())) {
    error = "cannot fork the coordinator";
    return false;
  }
  for (uint32_t i = 0; i < cfg_.workers; ++i)
    if (!supervisor_->spawn(base_ + i)) {
      error = "cannot fork worker " + std::to_string(base_ + i);
      return false;
    }
  // Printed last: once a client can read it, every process is forked.
  spdlog::info("listening on {}:{}", cfg_.listen_host, port);
  spdlog::info("admin listening on {}:{}", cfg_.admin_host, admin_port);
  core::notify_service_manager("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(pid_));
  return true;
}

bool Master::start_common(std::string& error) {
  (void)error;
  for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_, &sigchld_, &sigusr2_}) {
    uv_signal_init(loop_, s);
    s->data = this;
  }
  auto term = [](uv_signal_t* s, int signum) { static_cast<Master*>(s->data)->begin_drain(strsignal(signum)); };
  uv_signal_start(&sigterm_, term, SIGTERM);
  uv_signal_start(&sigint_, term, SIGINT);
  uv_signal_start(&sighup_, [](uv_signal_t* s, int) { static_cast<Master*>(s->data)->reload(); }, SIGHUP);
  uv_signal_start(&sigchld_, [](uv_signal_t* s, int) { static_cast<Master*>(s->data)->supervisor_->reap(); }, SIGCHLD);
  uv_signal_start(&sigusr2_, [](uv_signal_t* s, int) { static_cast<Master*>(s->data)->begin_upgrade(); }, SIGUSR2);
  signal(SIGPIPE, SIG_IGN);

  for (uv_timer_t* t : {&drain_timer_, &upgrade_timer_, &takeover_timer_}) {
    uv_timer_init(loop_, t);
    t->data = this;
  }
  acceptor_ = std::make_unique<Acceptor>(loop_, cfg_, *seg_, stats_, base_);
  supervisor_ = std::make_unique<Supervisor>(loop_, cfg_, *seg_, stats_, static_cast<Supervisor::Listener&>(*this), pid_, start_ms_, event_fds_, base_, game_, jwt_);
  acceptor_->on_lost = [this](uint32_t index, const char* why) { supervisor_->lost(index, why); };
  return true;
}

void Master::begin_drain(const char* why) {
  if (draining_) {
    spdlog::warn("{} again: stopping now", why);
    supervisor_->kill_all(nullptr);
    return;
  }
  if (upgrade_pid_ != 0 && !handed_over_) upgrade_failed(std::string(why) + " during the upgrade");
  draining_ = true;
  drain_started_ms_ = core::monotonic_ms();
  spdlog::info("{}: draining (up to {} ms)", why, cfg_.drain_timeout_ms);
  core::notify_service_manager("STOPPING=1");
  acceptor_->stop();
  seg_->set_state(shm::SegmentState::Draining);
  supervisor_->stop_respawning();
  for (uint32_t i = 0; i < supervisor_->slots(); ++i)
    if (supervisor_->own(i))
      post(i, shm::make_event(shm::EventType::Shutdown, uint16_t(seg_->master_index()), cfg_.drain_timeout_ms));
  start_drain_timer();
  finish_if_drained();
}

void Master::start_drain_timer() {
  uv_timer_start(
      &drain_timer_,
      [](uv_timer_t* t) {
        static_cast<Master*>(t->data)->supervisor_->kill_all("still running after the drain");
      },
      cfg_.drain_timeout_ms + kDrainGraceMs, 0);
}

void Master::finish_if_drained() {
  if (stopping_ || supervisor_->any_alive()) return;
  stopping_ = true;
  uv_stop(loop_);
}

void Master::reload() {
  std::string error;
  auto fresh = config::load_file(cfg_.source, error);
  if (!fresh) {
    spdlog::error("SIGHUP: keeping the running config: {}", error);
    return;
  }
  // Each key that changed, before the new log level applies (a level
  // raised to warn would hide the lines). A live key is compared with what
  // runs (it may come from a flag: the file's value replaces it); a
  // restart-only key with what the file said before, so a flag such as
  // --port 0 is not reported as a change on every SIGHUP.
  uint32_t applied = 0, restart = 0;
  for (const core::KeyField& f : core::key_fields()) {
    if (f.live) {
      const std::string from = f.text(cfg_), to = f.text(*fresh);
      if (from == to) continue;
      ++applied;
      spdlog::info("SIGHUP: {}: {} -> {} (applied)", f.key, from, to);
    } else {
      const std::string from = f.text(file_cfg_), to = f.text(*fresh);
      if (from == to) continue;
      ++restart;
      spdlog::warn("SIGHUP: {}: {} -> {} in the file: not applied, it needs a restart (running with {})", f.key, from,
                   to, f.text(cfg_));
    }
  }
  spdlog::info("SIGHUP: reloaded {}: {} key(s) applied, {} need a restart (log level {})", cfg_.source, applied,
               restart, fresh->log_level);
  file_cfg_ = *fresh;
  core::take_live_keys(cfg_, *fresh);
  spdlog::set_level(*log::parse_level(cfg_.log_level));
  for (uint32_t i = 0; i < supervisor_->slots(); ++i)
    if (supervisor_->own(i))
      for (const shm::Event& e : core::reload_events(cfg_, uint16_t(seg_->master_index()))) post(i, e);
}

admin::Response Master::admin_request(const std::string& target) {
  if (target == "/healthz") {
    // Liveness, not readiness: a draining process is alive and finishing
    // its matches (up to drain_timeout_ms); failing here would have the
    // orchestrator kill the pod mid-drain. /readyz says "not accepting".
    auto alive = [&](uint32_t i) {
      const auto st = shm::shared_load(seg_->process(i).state);
      return st == shm::ProcessState::Up || st == shm::ProcessState::Draining;
    };
    bool coordinator = alive(seg_->coordinator_index());
    bool worker = false;
    for (uint32_t i = 0; i < seg_->worker_slots(); ++i) worker |= alive(i);
    if (coordinator && worker && !seg_->corrupt()) return {200, "text/plain", "ok\n"};
    return {503, "text/plain", "unhealthy\n"};
  }
  if (target == "/metrics" || target == "/status") {
    const AdminView view{&cfg_,     seg_.get(), &stats_, core::monotonic_ms(),
                         start_ms_, acceptor_->listening(), draining_, pid_,
                         processes_to_report(*seg_, base_, cfg_.workers, supervisor_->coordinator_started())};
    if (target == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(view)};
    return {200, "application/json", render_status(view)};
  }
  if (target == "/readyz") {
    if (acceptor_->listening() && !draining_) return {200, "text/plain", "ready\n"};
    return {503, "text/plain", "not accepting\n"};
  }
  return {404, "text/plain", "not found\n"};
}

void Master::start_agones(uint16_t port) {
  if (port == 0) return;
  AgonesSdk::Options o;
  o.port = port;
  o.health_interval_ms = cfg_.agones_health_interval_ms;
  o.request_timeout_ms = cfg_.agones_request_timeout_ms;
  o.player_capacity = cfg_.max_players;
  o.send_ready = predecessor_ == 0;  // an upgrade's pod is Ready (or Allocated) already
  AgonesSdk::Hooks hooks;
  hooks.serving = [this] {
    if (!acceptor_->listening() || draining_) return false;
    for (uint32_t i = base_; i < base_ + cfg_.workers; ++i)
      if (shm::shared_load(seg_->process(i).state) != shm::ProcessState::Up) return false;
    return true;
  };
  // Both banks: during an upgrade both masters report the same total.
  hooks.players = [this] {
    uint64_t n = 0;
    for (uint32_t i = 0; i < seg_->worker_slots(); ++i) n += shm::shared_load(seg_->process(i).counters.connections_open);
    return uint32_t(std::min<uint64_t>(n, UINT32_MAX));
  };
  agones_ = std::make_unique<AgonesSdk>(loop_, o, std::move(hooks));
  agones_->start();
}

int Master::run() {
  core::set_process_title("skirmish: master");
  std::string error;
  uint16_t agones_port = 0;
  if (!AgonesSdk::port_from_env(&agones_port, error) || !start(error)) {
    spdlog::critical("{}", error);
    if (supervisor_) supervisor_->kill_all(nullptr);
    if (ready_fd_ >= 0) close(ready_fd_);  // an upgrade's new master: the old one sees EOF
    if (seg_ && owner_) seg_->unlink();
    return 1;
  }
  start_agones(agones_port);
  uv_run(loop_, UV_RUN_DEFAULT);

  // Drained: close what is left so the loop can be closed cleanly. Agones
  // hears Shutdown from the master that owns the pod's server, not from
  // one that handed it over to its upgrade (the loop below runs the call).
  if (agones_ && owner_) agones_->shutdown();
  if (agones_ && !owner_) agones_->close();
  close_upgrade_pipe();
  for (uv_handle_t* h : {H(&sigterm_), H(&sigint_), H(&sighup_), H(&sigchld_), H(&sigusr2_), H(&drain_timer_),
                         H(&upgrade_timer_), H(&takeover_timer_)})
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  supervisor_->close();
  acceptor_->close();
  admin_->close();
  uv_run(loop_, UV_RUN_DEFAULT);
  uv_loop_close(loop_);
  if (!owner_) {
    // A binary upgrade: the segment is the new master's now.
    spdlog::info("stopped after the upgrade ({} ms of hand-over); shared memory /{} left to the new master",
                 core::monotonic_ms() - drain_started_ms_, cfg_.shm_name);
    return 0;
  }
  seg_->unlink();
  spdlog::info("stopped; shared memory /{} removed", cfg_.shm_name);
  return 0;
}

// Supervisor::Listener: the acceptor follows the supervisor's children.
void Master::on_worker_started(uint32_t index, uv_pipe_t* pipe) { acceptor_->add_worker(index, pipe); }

void Master::on_worker_gone(uint32_t index) { acceptor_->remove_worker(index); }

void Master::on_exit_while_draining() { finish_if_drained(); }

}  // namespace skirmish::master
