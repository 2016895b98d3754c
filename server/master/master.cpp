#include "master/master.h"
#include "master/metrics.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "codec.h"
#include "coordinator/coordinator_process.h"
#include "core/child.h"
#include "core/live_config.h"
#include "core/log.h"
#include "core/process.h"
#include "net.h"
#include "shm/atomic_field.h"
#include "worker/worker_process.h"

namespace skirmish::master {

namespace {

constexpr uint64_t kHeartbeatCheckMs = 250;
// A child that dies within this long of starting counts as a quick death
// and doubles the respawn delay; one that lived longer resets it.
constexpr int64_t kQuickDeathMs = 10000;
constexpr uint64_t kFirstBackoffMs = 100;
// A child still alive this long after the drain deadline is killed.
constexpr uint64_t kDrainGraceMs = 2000;

template <class T>
uv_handle_t* H(T* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "status " + std::to_string(status);
}

}  // namespace

struct Master::Handoff {
  uv_write_t req;
  uv_tcp_t* client;
  Master* master;
  uint32_t worker;
};

Master::Master(const config::Config& cfg) : cfg_(cfg) {}

Master::~Master() {
  for (int fd : event_fds_) close(fd);
}

std::string Master::role_name(uint32_t index) const {
  return is_worker(index) ? "worker " + std::to_string(index) : "coordinator";
}

bool Master::start(std::string& error) {
  pid_ = getpid();
  start_ms_ = core::monotonic_ms();
  shm::Sizes sizes{.max_workers = cfg_.workers,
                   .max_players = cfg_.max_players,
                   .max_tickets = cfg_.max_players,
                   .max_matches = cfg_.max_matches,
                   .mailbox_depth = cfg_.mailbox_depth};
  auto seg = shm::Segment::create(cfg_.shm_name, sizes, error);
  if (!seg) return false;
  seg_ = std::make_unique<shm::Segment>(std::move(*seg));
  if (!seg_->stale_replaced().empty())
    spdlog::warn("replaced a stale shared-memory segment /{}: {}", cfg_.shm_name, seg_->stale_replaced());
  spdlog::info("shared memory /{}: {} bytes ({} players, {} matches)", cfg_.shm_name, seg_->bytes(),
               cfg_.max_players, cfg_.max_matches);

  // One eventfd per process, made before any fork so every process holds
  // every number and can wake any other.
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
    row.role = i < cfg_.workers ? shm::ProcessRole::Worker
               : i == seg_->coordinator_index() ? shm::ProcessRole::Coordinator
                                                : shm::ProcessRole::Master;
  }
  seg_->process(seg_->master_index()).pid = pid_;

  loop_ = uv_default_loop();
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  uint16_t port = 0;
  if (int r = net::listen_tcp(
          &listener_, cfg_.listen_host, cfg_.listen_port, 4096,
          [](uv_stream_t* s, int st) { static_cast<Master*>(s->data)->on_connection(s, st); }, &port)) {
    error = "cannot listen on " + cfg_.listen_host + ":" + std::to_string(cfg_.listen_port) + ": " + uv_strerror(r);
    return false;
  }
  listening_ = true;
  admin_ = std::make_unique<admin::AdminServer>(loop_, [this](const std::string& t) { return admin_request(t); });
  uint16_t admin_port = 0;
  if (int r = admin_->listen(cfg_.admin_host, cfg_.admin_port, &admin_port)) {
    error = "cannot listen on " + cfg_.admin_host + ":" + std::to_string(cfg_.admin_port) + " (admin): " +
            uv_strerror(r);
    return false;
  }

  for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_, &sigchld_}) {
    uv_signal_init(loop_, s);
    s->data = this;
  }
  auto term = [](uv_signal_t* s, int signum) { static_cast<Master*>(s->data)->begin_drain(strsignal(signum)); };
  uv_signal_start(&sigterm_, term, SIGTERM);
  uv_signal_start(&sigint_, term, SIGINT);
  uv_signal_start(&sighup_, [](uv_signal_t* s, int) { static_cast<Master*>(s->data)->reload(); }, SIGHUP);
  uv_signal_start(&sigchld_, [](uv_signal_t* s, int) { static_cast<Master*>(s->data)->reap(); }, SIGCHLD);
  signal(SIGPIPE, SIG_IGN);

  uv_timer_init(loop_, &heartbeat_timer_);
  heartbeat_timer_.data = this;
  uv_timer_start(&heartbeat_timer_, [](uv_timer_t* t) { static_cast<Master*>(t->data)->check_heartbeats(); },
                 kHeartbeatCheckMs, kHeartbeatCheckMs);
  uv_timer_init(loop_, &drain_timer_);
  drain_timer_.data = this;

  children_.resize(cfg_.workers + 1);
  for (uint32_t i = 0; i < children_.size(); ++i) {
    children_[i].respawn_timer = new uv_timer_t;
    uv_timer_init(loop_, children_[i].respawn_timer);
    children_[i].respawn_timer->data = this;
  }
  // Coordinator first, so the workers' first tickets find it up.
  if (!spawn(seg_->coordinator_index())) {
    error = "cannot fork the coordinator";
    return false;
  }
  for (uint32_t i = 0; i < cfg_.workers; ++i)
    if (!spawn(i)) {
      error = "cannot fork worker " + std::to_string(i);
      return false;
    }
  // Printed last: once a client can read it, every process is forked.
  spdlog::info("listening on {}:{}", cfg_.listen_host, port);
  spdlog::info("admin listening on {}:{}", cfg_.admin_host, admin_port);
  return true;
}

bool Master::spawn(uint32_t index) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    spdlog::error("socketpair: {}", strerror(errno));
    return false;
  }
  // The row is reset before fork: the child writes Up into it as soon as it
  // runs, and a store from the parent after fork() could overwrite that.
  const int64_t now = core::monotonic_ms();
  shm::ProcessRow& row = seg_->process(index);
  shm::shared_store(row.connections_open, uint64_t(0));
  shm::shared_store(row.connections_accepted, uint64_t(0));
  shm::shared_store(row.heartbeat_ms, now);
  shm::shared_store(row.started_at_ms, now);
  shm::shared_store(row.state, shm::ProcessState::Starting);
  spdlog::default_logger()->flush();  // nothing buffered may be written twice
  pid_t pid = fork();
  if (pid < 0) {
    spdlog::error("fork: {}", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return false;
  }
  if (pid == 0) {
    if (!core::prepare_child(pid_, sv[1], event_fds_)) _exit(0);
    core::ChildContext ctx{&cfg_, seg_.get(), index, sv[1], pid_, start_ms_};
    int code = is_worker(index) ? worker::run_worker_process(ctx) : coordinator::run_coordinator_process(ctx);
    // _exit: the master's atexit handlers and static destructors are not ours.
    _exit(code);
  }
  close(sv[1]);
  Child& c = children_[index];
  c.pid = pid;
  c.handed = 0;
  c.started_ms = now;
  c.pipe = new uv_pipe_t;
  uv_pipe_init(loop_, c.pipe, is_worker(index) ? 1 : 0);
  uv_pipe_open(c.pipe, sv[0]);
  shm::shared_store(row.pid, int32_t(pid));
  spdlog::info("{} started (pid {})", role_name(index), pid);
  return true;
}

void Master::on_connection(uv_stream_t* server, int status) {
  if (status < 0) {
    spdlog::warn("accept: {}", uv_strerror(status));
    return;
  }
  auto* client = new uv_tcp_t;
  uv_tcp_init(loop_, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(H(client), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  ++stats_.accepted;

  uint64_t open = 0;
  for (uint32_t i = 0; i < cfg_.workers; ++i) open += shm::shared_load(seg_->process(i).connections_open);
  if (open >= cfg_.max_connections) {
    ++stats_.refused_full;
    refuse(client, int(proto::ErrorCode::ServerFull), "server full");
    return;
  }
  int w = pick_worker();
  if (w < 0) {
    ++stats_.refused_no_worker;
    refuse(client, int(proto::ErrorCode::ServerFull), "no worker available");
    return;
  }
  auto* h = new Handoff{{}, client, this, uint32_t(w)};
  h->req.data = h;
  static char byte = 'c';  // uv_write2 needs at least one byte beside the fd
  uv_buf_t buf = uv_buf_init(&byte, 1);
  int r = uv_write2(&h->req, reinterpret_cast<uv_stream_t*>(children_[w].pipe), &buf, 1,
                    reinterpret_cast<uv_stream_t*>(client), [](uv_write_t* req, int st) {
                      auto* hh = static_cast<Handoff*>(req->data);
                      if (st < 0) {
                        ++hh->master->stats_.handoff_failed;
                        Child& c = hh->master->children_[hh->worker];
                        if (c.handed > 0) --c.handed;
                        SPDLOG_DEBUG("handoff to worker {} failed: {}", hh->worker, uv_strerror(st));
                      }
                      // The worker holds its own copy now (or the handoff
                      // failed and the client sees a close).
                      uv_close(H(hh->client), [](uv_handle_t* hd) { delete reinterpret_cast<uv_tcp_t*>(hd); });
                      delete hh;
                    });
  if (r != 0) {
    ++stats_.handoff_failed;
    uv_close(H(client), [](uv_handle_t* hd) { delete reinterpret_cast<uv_tcp_t*>(hd); });
    delete h;
    return;
  }
  ++children_[w].handed;
  ++stats_.handed_off;
}

void Master::refuse(uv_tcp_t* client, int code, const char* text) {
  // One small frame into an empty socket buffer: try_write takes it or we
  // give up; the master never queues for a client.
  proto::FrameEncoder enc(256);
  auto frame = proto::encode_error(enc, proto::ErrorCode(code), true, text);
  uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(frame.data())), frame.size());
  uv_try_write(reinterpret_cast<uv_stream_t*>(client), &b, 1);
  uv_close(H(client), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}

int Master::pick_worker() {
  int best = -1;
  uint64_t best_load = UINT64_MAX;
  const uint32_t n = cfg_.workers;
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t i = (rr_ + k) % n;
    const shm::ProcessRow& row = seg_->process(i);
    // A Starting worker is eligible: the socket waits in its IPC pipe until
    // its loop runs. Down and Draining ones are not.
    auto st = shm::shared_load(row.state);
    if (children_[i].pipe == nullptr || (st != shm::ProcessState::Up && st != shm::ProcessState::Starting)) continue;
    uint64_t accepted = shm::shared_load(row.connections_accepted);
    uint64_t inflight = children_[i].handed > accepted ? children_[i].handed - accepted : 0;
    uint64_t load = shm::shared_load(row.connections_open) + inflight;
    if (load < best_load) {
      best_load = load;
      best = int(i);
    }
  }
  rr_ = (rr_ + 1) % n;
  return best;
}

void Master::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (uint32_t i = 0; i < children_.size(); ++i)
      if (children_[i].pid == pid) on_child_exit(i, status);
  }
}

void Master::on_child_exit(uint32_t index, int status) {
  Child& c = children_[index];
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (draining_ && clean)
    spdlog::info("{} (pid {}) {}", role_name(index), c.pid, describe_status(status));
  else
    spdlog::error("{} (pid {}) {}", role_name(index), c.pid, describe_status(status));
  c.pid = 0;
  if (c.pipe != nullptr) {
    // Pending handoffs complete with UV_ECANCELED and close their clients.
    uv_close(H(c.pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    c.pipe = nullptr;
  }
  shm::ProcessRow& row = seg_->process(index);
  shm::shared_store(row.pid, int32_t(0));
  shm::shared_store(row.state, shm::ProcessState::Down);
  shm::shared_store(row.last_exit_status, int32_t(status));
  shm::shared_store(row.connections_open, uint64_t(0));

  if (is_worker(index)) {
    // Its connections are gone; their seats wait out the resume grace.
    auto players = seg_->players();
    const int64_t now = core::monotonic_ms();
    auto guard = players.lock();
    players.for_each_used([&](shm::Handle, shm::PlayerRow& p) {
      if (p.state == shm::PlayerState::Connected && p.worker == index) {
        p.worker = shm::kNoWorker;
        p.disconnected_at_ms = now;
        shm::shared_store(p.state, shm::PlayerState::Disconnected);
      }
    });
  }
  if (is_worker(index) && !draining_) {
    // Its matches go on elsewhere: the coordinator hands them to live workers.
    post(seg_->coordinator_index(), shm::make_event(shm::EventType::WorkerDown, uint16_t(seg_->master_index()), index));
  }

  if (draining_) {
    finish_if_drained();
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
    c.fatal = true;
    spdlog::critical("{} exited with status 2 (configuration): not respawning", role_name(index));
    return;
  }
  schedule_respawn(index);
}

void Master::schedule_respawn(uint32_t index) {
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
        auto* m = static_cast<Master*>(t->data);
        for (uint32_t i = 0; i < m->children_.size(); ++i) {
          Child& ch = m->children_[i];
          if (ch.respawn_timer != t || !ch.respawn_pending) continue;
          ch.respawn_pending = false;
          if (m->draining_) return;
          shm::shared_add(m->seg_->process(i).respawns, uint32_t(1));
          if (!m->spawn(i)) m->schedule_respawn(i);
        }
      },
      delay, 0);
}

void Master::check_heartbeats() {
  const int64_t now = core::monotonic_ms();
  for (uint32_t i = 0; i < children_.size(); ++i) {
    Child& c = children_[i];
    if (c.pid <= 0) continue;
    const shm::ProcessRow& row = seg_->process(i);
    int64_t age = now - shm::shared_load(row.heartbeat_ms);
    if (age > int64_t(cfg_.heartbeat_timeout_ms)) {
      // Hung (endless loop, SIGSTOP, stuck on a lock): replace it. SIGKILL
      // works on a stopped process too; the SIGCHLD path respawns it.
      ++stats_.heartbeat_kills;
      spdlog::error("{} (pid {}) missed its heartbeat for {} ms: killing it", role_name(i), c.pid, age);
      kill(c.pid, SIGKILL);
      shm::shared_store(seg_->process(i).heartbeat_ms, now);  // one kill per hang
    }
  }
}

void Master::post(uint32_t index, const shm::Event& e) {
  const uint64_t refused = seg_->post(seg_->master_index(), index, e);
  if (refused == 0) return;
  ++stats_.mailbox_full;
  if (refused % 1000 == 1)
    spdlog::warn("mailbox of {} full: event {} not delivered ({} so far)", role_name(index), e.type, refused);
}

void Master::begin_drain(const char* why) {
  if (draining_) {
    spdlog::warn("{} again: stopping now", why);
    for (Child& c : children_)
      if (c.pid > 0) kill(c.pid, SIGKILL);
    return;
  }
  draining_ = true;
  drain_started_ms_ = core::monotonic_ms();
  spdlog::info("{}: draining (up to {} ms)", why, cfg_.drain_timeout_ms);
  if (listening_) {
    uv_close(H(&listener_), nullptr);
    listening_ = false;
  }
  seg_->set_state(shm::SegmentState::Draining);
  for (uint32_t i = 0; i < children_.size(); ++i) {
    uv_timer_stop(children_[i].respawn_timer);
    children_[i].respawn_pending = false;
    post(i, shm::make_event(shm::EventType::Shutdown, uint16_t(seg_->master_index()), cfg_.drain_timeout_ms));
  }
  uv_timer_start(
      &drain_timer_,
      [](uv_timer_t* t) {
        auto* m = static_cast<Master*>(t->data);
        for (uint32_t i = 0; i < m->children_.size(); ++i)
          if (m->children_[i].pid > 0) {
            spdlog::error("{} (pid {}) still running after the drain: killing it", m->role_name(i),
                          m->children_[i].pid);
            kill(m->children_[i].pid, SIGKILL);
          }
      },
      cfg_.drain_timeout_ms + kDrainGraceMs, 0);
  finish_if_drained();
}

void Master::finish_if_drained() {
  if (stopping_) return;
  for (const Child& c : children_)
    if (c.pid > 0) return;
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
  core::take_live_keys(cfg_, *fresh);
  spdlog::set_level(*log::parse_level(cfg_.log_level));
  for (uint32_t i = 0; i < children_.size(); ++i)
    for (const shm::Event& e : core::reload_events(cfg_, uint16_t(seg_->master_index()))) post(i, e);
  spdlog::info("SIGHUP: reloaded {} (log level {})", cfg_.source, cfg_.log_level);
}

admin::Response Master::admin_request(const std::string& target) {
  if (target == "/healthz") {
    bool coordinator = shm::shared_load(seg_->process(seg_->coordinator_index()).state) == shm::ProcessState::Up;
    bool worker = false;
    for (uint32_t i = 0; i < cfg_.workers; ++i)
      worker |= shm::shared_load(seg_->process(i).state) == shm::ProcessState::Up;
    if (coordinator && worker && !seg_->corrupt()) return {200, "text/plain", "ok\n"};
    return {503, "text/plain", "unhealthy\n"};
  }
  if (target == "/metrics" || target == "/status") {
    const AdminView view{&cfg_, seg_.get(), &stats_, core::monotonic_ms(), start_ms_, listening_, draining_};
    if (target == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(view)};
    return {200, "application/json", render_status(view)};
  }
  if (target == "/readyz") {
    if (listening_ && !draining_) return {200, "text/plain", "ready\n"};
    return {503, "text/plain", "not accepting\n"};
  }
  return {404, "text/plain", "not found\n"};
}

int Master::run() {
  core::set_process_title("skirmish: master");
  std::string error;
  if (!start(error)) {
    spdlog::critical("{}", error);
    for (Child& c : children_)
      if (c.pid > 0) kill(c.pid, SIGKILL);
    if (seg_) seg_->unlink();
    return 1;
  }
  uv_run(loop_, UV_RUN_DEFAULT);

  // Drained: close what is left so the loop can be closed cleanly.
  for (uv_handle_t* h : {H(&sigterm_), H(&sigint_), H(&sighup_), H(&sigchld_), H(&heartbeat_timer_),
                         H(&drain_timer_)})
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  for (Child& c : children_) {
    if (c.pipe != nullptr) uv_close(H(c.pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    c.pipe = nullptr;
    uv_close(H(c.respawn_timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  if (listening_) uv_close(H(&listener_), nullptr);
  admin_->close();
  uv_run(loop_, UV_RUN_DEFAULT);
  uv_loop_close(loop_);
  seg_->unlink();
  spdlog::info("stopped; shared memory /{} removed", cfg_.shm_name);
  return 0;
}

}  // namespace skirmish::master
