#include "master/master.h"
#include "master/metrics.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "codec.h"
#include "coordinator/coordinator_process.h"
#include "core/child.h"
#include "core/live_config.h"
#include "core/address_key.h"
#include "core/log.h"
#include "core/notify.h"
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
constexpr int kBacklog = 4096;
constexpr int kAcceptBatch = 64;         // connections accepted per wake-up, at most
constexpr uint64_t kAcceptPauseMs = 100;  // out of descriptors with no spare
// The new master of an upgrade checks this often whether its workers are up
// and whether the old coordinator has exited.
constexpr uint64_t kTakeoverPollMs = 10;
constexpr const char* kUpgradeEnv = "SKIRMISH_UPGRADE";

shm::Sizes sizes_of(const config::Config& c) {
  return shm::Sizes{.max_workers = c.workers,
                    .max_players = c.max_players,
                    .max_tickets = c.max_players,
                    .max_matches = c.max_matches,
                    .mailbox_depth = c.mailbox_depth};
}

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
  uint64_t seq;  // the worker's nth socket (Child::open_by_seq)
};

Master::Master(const config::Config& cfg) : cfg_(cfg) {}

Master::~Master() {
  for (int fd : event_fds_) close(fd);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

std::string Master::role_name(uint32_t index) const {
  return is_worker(index) ? "worker " + std::to_string(index) : "coordinator";
}

bool Master::start(std::string& error) {
  pid_ = getpid();
  start_ms_ = core::monotonic_ms();
  loop_ = uv_default_loop();
  if (const char* env = std::getenv(kUpgradeEnv)) {
    const std::string e = env;
    unsetenv(kUpgradeEnv);  // not for our children, nor a later upgrade
    return start_inherited(e, error);
  }
  shm::Sizes sizes = sizes_of(cfg_);
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
  if (!start_listening(fd)) {
    error = "cannot poll the listen socket";
    return false;
  }

  // Coordinator first, so the workers' first tickets find it up.
  if (!spawn(seg_->coordinator_index())) {
    error = "cannot fork the coordinator";
    return false;
  }
  coordinator_started_ = true;
  for (uint32_t i = 0; i < cfg_.workers; ++i)
    if (!spawn(base_ + i)) {
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
  uv_signal_start(&sigchld_, [](uv_signal_t* s, int) { static_cast<Master*>(s->data)->reap(); }, SIGCHLD);
  uv_signal_start(&sigusr2_, [](uv_signal_t* s, int) { static_cast<Master*>(s->data)->begin_upgrade(); }, SIGUSR2);
  signal(SIGPIPE, SIG_IGN);

  uv_timer_init(loop_, &heartbeat_timer_);
  heartbeat_timer_.data = this;
  uv_timer_start(&heartbeat_timer_, [](uv_timer_t* t) { static_cast<Master*>(t->data)->check_heartbeats(); },
                 kHeartbeatCheckMs, kHeartbeatCheckMs);
  for (uv_timer_t* t : {&drain_timer_, &upgrade_timer_, &takeover_timer_, &accept_pause_timer_}) {
    uv_timer_init(loop_, t);
    t->data = this;
  }

  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  children_.resize(seg_->process_count());
  for (uint32_t i = 0; i < children_.size(); ++i) {
    children_[i].respawn_timer = new uv_timer_t;
    uv_timer_init(loop_, children_[i].respawn_timer);
    children_[i].respawn_timer->data = this;
  }
  return true;
}

// The new master of a binary upgrade: $SKIRMISH_UPGRADE is
// "OLD_PID:LISTEN_FD:ADMIN_FD:READY_FD", the fds inherited across exec.
bool Master::start_inherited(const std::string& env, std::string& error) {
  int old_pid = 0, listen_fd = -1, admin_fd = -1, ready_fd = -1;
  char tail = 0;
  if (std::sscanf(env.c_str(), "%d:%d:%d:%d%c", &old_pid, &listen_fd, &admin_fd, &ready_fd, &tail) != 4 ||
      old_pid <= 0 || listen_fd < 0 || admin_fd < 0 || ready_fd < 0) {
    error = std::string("upgrade: malformed ") + kUpgradeEnv + "='" + env + "'";
    return false;
  }
  for (int fd : {listen_fd, admin_fd, ready_fd})
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
      error = "upgrade: inherited fd " + std::to_string(fd) + ": " + strerror(errno);
      return false;
    }
  ready_fd_ = ready_fd;  // closed on any failure: the old master sees EOF
  predecessor_ = old_pid;
  owner_ = false;
  upgrade_started_ms_ = start_ms_;

  auto seg = shm::Segment::open_existing(cfg_.shm_name, error);
  if (!seg) {
    error = "upgrade: " + error;
    return false;
  }
  seg_ = std::make_unique<shm::Segment>(std::move(*seg));
  if (!(seg_->sizes() == sizes_of(cfg_))) {
    error = "upgrade: the config changes the shared-memory sizes (workers, max_players, max_matches, "
            "mailbox_depth): that needs a full restart, not an upgrade";
    return false;
  }
  const int32_t owner = shm::shared_load(seg_->header().master_pid);
  if (owner != old_pid) {
    error = "upgrade: shared memory /" + cfg_.shm_name + " is owned by pid " + std::to_string(owner) +
            ", not by pid " + std::to_string(old_pid) + " that started this upgrade";
    return false;
  }
  bank_ = 1 - seg_->header().worker_bank;
  base_ = seg_->bank_base(bank_);
  for (uint32_t i = base_; i < base_ + cfg_.workers; ++i) {
    const shm::ProcessRow& row = seg_->process(i);
    const int32_t pid = shm::shared_load(row.pid);
    if (shm::shared_load(row.state) != shm::ProcessState::Down && shm::pid_alive(pid)) {
      error = "upgrade: worker slot " + std::to_string(i) + " is still used by pid " + std::to_string(pid) +
              " (the previous generation is still draining)";
      return false;
    }
  }
  for (uint32_t i = 0; i < seg_->process_count(); ++i) {
    const int fd = seg_->process(i).event_fd;
    if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
      error = "upgrade: eventfd " + std::to_string(fd) + " of process " + std::to_string(i) + " was not inherited";
      return false;
    }
    event_fds_.push_back(fd);
  }

  const uint16_t port = net::local_port(listen_fd);
  if (port == 0 || fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) != 0) {
    error = "upgrade: the inherited listen socket (fd " + std::to_string(listen_fd) + ") is not a bound socket";
    return false;
  }
  admin_ = std::make_unique<admin::AdminServer>(loop_, [this](const std::string& t) { return admin_request(t); });
  uint16_t admin_port = 0;
  if (int r = admin_->listen_fd(admin_fd, &admin_port)) {
    error = std::string("upgrade: inherited admin socket: ") + uv_strerror(r);
    return false;
  }
  if (!start_common(error)) return false;
  if (!start_listening(listen_fd)) {
    error = "upgrade: cannot poll the inherited listen socket";
    return false;
  }
  for (uint32_t i = 0; i < cfg_.workers; ++i)
    if (!spawn(base_ + i)) {
      error = "cannot fork worker " + std::to_string(base_ + i);
      return false;
    }
  spdlog::info("upgrade: new master for pid {}: workers in slots {}..{}; the coordinator follows the old one's exit",
               old_pid, base_, base_ + cfg_.workers - 1);
  spdlog::info("listening on {}:{}", cfg_.listen_host, port);
  spdlog::info("admin listening on {}:{}", cfg_.admin_host, admin_port);
  uv_timer_start(&takeover_timer_, [](uv_timer_t* t) { static_cast<Master*>(t->data)->take_over_step(); },
                 kTakeoverPollMs, kTakeoverPollMs);
  return true;
}

void Master::take_over_step() {
  if (!owner_) {
    for (uint32_t i = base_; i < base_ + cfg_.workers; ++i)
      if (shm::shared_load(seg_->process(i).state) != shm::ProcessState::Up) return;
    // Every worker is up: this master owns the segment from now on, and
    // the old one hands over when it reads "R" (or is gone already).
    seg_->take_ownership();
    shm::shared_store(seg_->header().worker_bank, bank_);
    shm::shared_store(seg_->process(seg_->master_index()).pid, int32_t(pid_));
    owner_ = true;
    if (ready_fd_ >= 0) {
      if (write(ready_fd_, "R", 1) != 1)
        spdlog::warn("upgrade: the old master (pid {}) is gone: {}", predecessor_, strerror(errno));
      close(ready_fd_);
      ready_fd_ = -1;
    }
    core::notify_service_manager("MAINPID=" + std::to_string(pid_) + "\nREADY=1\nSTATUS=serving");
    spdlog::info("upgrade: serving; {} workers up in {} ms; the old master (pid {}) hands over", cfg_.workers,
                 core::monotonic_ms() - upgrade_started_ms_, predecessor_);
  }
  if (!coordinator_started_) {
    shm::ProcessRow& row = seg_->process(seg_->coordinator_index());
    const int32_t pid = shm::shared_load(row.pid);
    if (pid != 0 && shm::pid_alive(pid)) return;  // the old coordinator is still up
    // Its master wrote Down after reaping it; if that master died with it,
    // the row still says Up, and nobody else will write it.
    if (!spawn(seg_->coordinator_index())) return;  // tried again next poll
    coordinator_started_ = true;
    spdlog::info("upgrade: coordinator started {} ms after the upgrade began",
                 core::monotonic_ms() - upgrade_started_ms_);
  }
  uv_timer_stop(&takeover_timer_);
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
  shm::shared_store(row.fd_capacity, UINT64_MAX);
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
  c.carry_len = 0;
  c.next_seq = 0;
  c.open_by_seq.clear();
  if (is_worker(index)) {
    // The worker reports the address key of each connection it closes.
    c.pipe->data = this;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(c.pipe),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* m = static_cast<Master*>(h->data);
          *buf = uv_buf_init(m->report_buf_, sizeof m->report_buf_);
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
          auto* m = static_cast<Master*>(st->data);
          for (uint32_t i = 0; i < m->children_.size(); ++i)
            if (m->children_[i].pipe == reinterpret_cast<uv_pipe_t*>(st)) m->on_worker_report(i, n, buf->base);
        });
  }
  shm::shared_store(row.pid, int32_t(pid));
  spdlog::info("{} started (pid {})", role_name(index), pid);
  return true;
}

bool Master::start_listening(int fd) {
  listen_fd_ = fd;
  if (uv_poll_init(loop_, &listen_poll_, fd) != 0) return false;
  listen_poll_.data = this;
  uv_poll_start(&listen_poll_, UV_READABLE, [](uv_poll_t* h, int status, int) {
    if (status == 0) static_cast<Master*>(h->data)->on_listen_readable();
  });
  listening_ = true;
  return true;
}

void Master::stop_listening() {
  if (!listening_) return;
  listening_ = false;
  uv_timer_stop(&accept_pause_timer_);
  // Closing our descriptor leaves the socket listening wherever another
  // copy is open (a binary upgrade's new master).
  uv_close(H(&listen_poll_), nullptr);
  close(listen_fd_);
  listen_fd_ = -1;
}

void Master::on_listen_readable() {
  // A bounded batch per wake-up: the loop must also run handoff writes,
  // signals and the admin port under a connect storm.
  for (int n = 0; n < kAcceptBatch && listening_; ++n) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      ++stats_.accepted;
      admit(fd, peer);
      continue;
    }
    switch (errno) {
      case EAGAIN:
        return;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
        continue;
      case EMFILE:
      case ENFILE:
        shed_without_descriptors();
        continue;
      default:
        spdlog::warn("accept: {}", strerror(errno));
        return;
    }
  }
}

void Master::shed_without_descriptors() {
  // Out of descriptors with connections waiting: level-triggered polling
  // would spin. Free the spare, take one connection, refuse it, take the
  // spare back.
  if (reserve_fd_ >= 0) {
    close(reserve_fd_);
    reserve_fd_ = -1;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      ++stats_.accepted;
      refuse_fd(fd, int(proto::ErrorCode::ServerFull), "server out of file descriptors", stats_.refused_fd_limit,
                "the master is out of file descriptors");
    }
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (reserve_fd_ >= 0) return;
  }
  // No spare to be had: stop accepting for a moment (the kernel queues).
  ++stats_.accept_pauses;
  if (stats_.accept_pauses % 100 == 1)
    spdlog::error("out of file descriptors with no spare: accepting paused for {} ms ({} times)", kAcceptPauseMs,
                  stats_.accept_pauses);
  uv_poll_stop(&listen_poll_);
  uv_timer_start(
      &accept_pause_timer_,
      [](uv_timer_t* t) {
        auto* m = static_cast<Master*>(t->data);
        if (m->reserve_fd_ < 0) m->reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (m->listening_)
          uv_poll_start(&m->listen_poll_, UV_READABLE, [](uv_poll_t* h, int status, int) {
            if (status == 0) static_cast<Master*>(h->data)->on_listen_readable();
          });
      },
      kAcceptPauseMs, 0);
}

void Master::admit(int fd, const sockaddr_storage& peer) {
  // Every check comes before any allocation for the connection.
  uint64_t open = 0;
  for (uint32_t i = 0; i < seg_->worker_slots(); ++i) {
    open += shm::shared_load(seg_->process(i).connections_open);
    if (own_worker(i)) {
      const uint64_t accepted = shm::shared_load(seg_->process(i).connections_accepted);
      if (children_[i].handed > accepted) open += children_[i].handed - accepted;
    }
  }
  if (open >= cfg_.max_connections) {
    refuse_fd(fd, int(proto::ErrorCode::ServerFull), "server full", stats_.refused_full,
              "max_connections reached");
    return;
  }
  const uint64_t key = core::address_key(peer);
  if (auto it = per_address_.find(key); it != per_address_.end() && it->second >= cfg_.max_connections_per_ip) {
    refuse_fd(fd, int(proto::ErrorCode::TooManyConnections), "too many connections from your address",
              stats_.refused_per_address, "max_connections_per_ip reached");
    return;
  }
  const int w = pick_worker();
  if (w < 0) {
    refuse_fd(fd, int(proto::ErrorCode::ServerFull), "no worker available", stats_.refused_no_worker,
              "no worker up with descriptors to spare");
    return;
  }
  auto* client = new uv_tcp_t;
  uv_tcp_init(loop_, client);
  if (uv_tcp_open(client, fd) != 0) {
    close(fd);
    uv_close(H(client), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  Child& ch = children_[w];
  auto* h = new Handoff{{}, client, this, uint32_t(w), ch.next_seq};
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
                        if (auto it = c.open_by_seq.find(hh->seq); it != c.open_by_seq.end()) {
                          hh->master->count_address(it->second, -1);
                          c.open_by_seq.erase(it);
                        }
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
  ++ch.handed;
  ++stats_.handed_off;
  ch.open_by_seq.emplace(ch.next_seq++, key);
  count_address(key, +1);
}

void Master::refuse_fd(int fd, int code, const char* text, uint64_t& counter, const char* reason) {
  // One small frame into an empty socket buffer: it goes or it does not;
  // the master never queues for a client, and allocates nothing here.
  auto frame = proto::encode_error(refuse_enc_, proto::ErrorCode(code), true, text);
  [[maybe_unused]] ssize_t n = send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  close(fd);
  if (++counter % 1000 == 1) spdlog::warn("connection refused: {} ({} so far)", reason, counter);
}

void Master::count_address(uint64_t key, int delta) {
  if (delta > 0) {
    ++per_address_[key];
    return;
  }
  auto it = per_address_.find(key);
  if (it == per_address_.end()) return;
  if (--it->second == 0) per_address_.erase(it);
}

void Master::forget_addresses(uint32_t worker) {
  Child& c = children_[worker];
  for (auto& [seq, key] : c.open_by_seq) count_address(key, -1);
  c.open_by_seq.clear();
  c.next_seq = 0;
  c.carry_len = 0;
}

void Master::on_worker_report(uint32_t index, ssize_t nread, const char* data) {
  if (nread <= 0) return;  // EOF: on_child_exit cleans up
  Child& c = children_[index];
  size_t i = 0;
  const size_t n = size_t(nread);
  while (i < n) {
    const size_t take = std::min<size_t>(8 - c.carry_len, n - i);
    std::memcpy(c.carry.data() + c.carry_len, data + i, take);
    c.carry_len = uint8_t(c.carry_len + take);
    i += take;
    if (c.carry_len == 8) {
      uint64_t seq;
      std::memcpy(&seq, c.carry.data(), 8);
      if (auto it = c.open_by_seq.find(seq); it != c.open_by_seq.end()) {
        count_address(it->second, -1);
        c.open_by_seq.erase(it);
      }
      c.carry_len = 0;
    }
  }
}

int Master::pick_worker() {
  int best = -1;
  uint64_t best_load = UINT64_MAX;
  const uint32_t n = cfg_.workers;
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t i = base_ + (rr_ + k) % n;
    const shm::ProcessRow& row = seg_->process(i);
    // A Starting worker is eligible: the socket waits in its IPC pipe until
    // its loop runs. Down and Draining ones are not.
    auto st = shm::shared_load(row.state);
    if (children_[i].pipe == nullptr || (st != shm::ProcessState::Up && st != shm::ProcessState::Starting)) continue;
    uint64_t accepted = shm::shared_load(row.connections_accepted);
    uint64_t inflight = children_[i].handed > accepted ? children_[i].handed - accepted : 0;
    uint64_t load = shm::shared_load(row.connections_open) + inflight;
    if (load >= shm::shared_load(row.fd_capacity)) continue;  // no descriptors to spare
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
    if (pid == upgrade_pid_) {
      upgrade_pid_ = 0;
      const bool failing = upgrade_failing_;
      upgrade_failing_ = false;
      if (!handed_over_) {
        if (failing)
          spdlog::info("upgrade: the failed new master (pid {}) {}", pid, describe_status(status));
        else
          upgrade_failed("the new master (pid " + std::to_string(pid) + ") " + describe_status(status));
      } else {
        // It had taken over, and this master no longer accepts: nothing
        // serves new players until a supervisor restarts the server.
        spdlog::critical("upgrade: the new master (pid {}) {} after taking over", pid, describe_status(status));
      }
      continue;
    }
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
  shm::shared_store(seg_->process(index).last_exit_status, int32_t(status));
  if (is_worker(index)) {
    // A drained worker's matches have ended. One that died during a drain
    // is not respawned (a stopping master starts nothing, and its players
    // cannot come back: nothing listens), but the coordinator, which lives
    // until the workers are gone, hands its matches to a surviving worker,
    // so the players on other workers still finish them.
    mark_worker_down(index, !draining_ || !clean);
    forget_addresses(index);
  } else {
    shm::ProcessRow& row = seg_->process(index);
    shm::shared_store(row.pid, int32_t(0));
    shm::shared_store(row.state, shm::ProcessState::Down);
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

void Master::mark_worker_down(uint32_t index, bool tell_coordinator) {
  shm::ProcessRow& row = seg_->process(index);
  shm::shared_store(row.pid, int32_t(0));
  shm::shared_store(row.state, shm::ProcessState::Down);
  shm::shared_store(row.connections_open, uint64_t(0));
  // Its connections are gone; their seats wait out the resume grace.
  auto players = seg_->players();
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
    post(seg_->coordinator_index(), shm::make_event(shm::EventType::WorkerDown, uint16_t(seg_->master_index()), index));
}

void Master::reap_foreign_rows() {
  // Worker slots of the other generation: after a failed upgrade (the new
  // master's workers died with it) or when the old master was killed
  // mid-upgrade (its workers died with it), their rows still say Up.
  const int64_t now = core::monotonic_ms();
  for (uint32_t i = 0; i < seg_->worker_slots(); ++i) {
    if (own_worker(i)) continue;
    const shm::ProcessRow& row = seg_->process(i);
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
  reap_foreign_rows();
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
  if (upgrade_pid_ != 0 && !handed_over_) upgrade_failed(std::string(why) + " during the upgrade");
  draining_ = true;
  drain_started_ms_ = core::monotonic_ms();
  spdlog::info("{}: draining (up to {} ms)", why, cfg_.drain_timeout_ms);
  core::notify_service_manager("STOPPING=1");
  stop_listening();
  seg_->set_state(shm::SegmentState::Draining);
  for (uint32_t i = 0; i < children_.size(); ++i) {
    uv_timer_stop(children_[i].respawn_timer);
    children_[i].respawn_pending = false;
    if (own(i))
      post(i, shm::make_event(shm::EventType::Shutdown, uint16_t(seg_->master_index()), cfg_.drain_timeout_ms));
  }
  start_drain_timer();
  finish_if_drained();
}

void Master::start_drain_timer() {
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
}

// ---- binary upgrade (SIGUSR2), the old master's side ----

void Master::begin_upgrade() {
  if (draining_ || upgrade_pid_ != 0 || !owner_) {
    spdlog::warn("SIGUSR2: ignored ({})", draining_         ? "this master is draining"
                                          : upgrade_pid_ != 0 ? "an upgrade is already running"
                                                              : "this master is still taking over");
    return;
  }
  for (uint32_t i = 0; i < seg_->worker_slots(); ++i) {
    if (own_worker(i)) continue;
    const shm::ProcessRow& row = seg_->process(i);
    if (shm::shared_load(row.state) != shm::ProcessState::Down) {
      spdlog::warn("SIGUSR2: ignored: worker slot {} (pid {}) of the previous generation is still draining", i,
                   shm::shared_load(row.pid));
      return;
    }
  }
  const std::string& exe = core::executable_path();
  const std::vector<std::string>& args = core::original_argv();
  const int listen_fd = listen_fd_;
  const int admin_fd = admin_ ? admin_->fd() : -1;
  if (exe.empty() || args.empty() || !listening_ || listen_fd < 0 || admin_fd < 0) {
    spdlog::error("SIGUSR2: cannot upgrade: the executable path, arguments or listening sockets are unknown");
    return;
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    spdlog::error("SIGUSR2: pipe: {}", strerror(errno));
    return;
  }
  // Everything the child needs is built before fork: between fork and exec
  // only async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, kUpgradeEnv, std::strlen(kUpgradeEnv)) != 0 || (*e)[std::strlen(kUpgradeEnv)] != '=')
      env_strings.emplace_back(*e);
  env_strings.push_back(std::string(kUpgradeEnv) + "=" + std::to_string(pid_) + ":" + std::to_string(listen_fd) +
                        ":" + std::to_string(admin_fd) + ":" + std::to_string(ready[1]));
  std::vector<char*> envp, argv;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_copy = args;
  for (std::string& a : arg_copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<int> inherit = event_fds_;
  inherit.insert(inherit.end(), {int(listen_fd), admin_fd, ready[1]});

  spdlog::info("SIGUSR2: upgrading: starting {}", exe);
  spdlog::default_logger()->flush();
  const pid_t pid = fork();
  if (pid < 0) {
    spdlog::error("SIGUSR2: fork: {}", strerror(errno));
    close(ready[0]);
    close(ready[1]);
    return;
  }
  if (pid == 0) {
    for (int fd : inherit) fcntl(fd, F_SETFD, 0);
    execve(exe.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(ready[1]);
  upgrade_pid_ = pid;
  upgrade_started_ms_ = core::monotonic_ms();
  upgrade_pipe_ = new uv_pipe_t;
  uv_pipe_init(loop_, upgrade_pipe_, 0);
  upgrade_pipe_->data = this;
  uv_pipe_open(upgrade_pipe_, ready[0]);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(upgrade_pipe_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char byte[8];
        *buf = uv_buf_init(byte, sizeof byte);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        static_cast<Master*>(s->data)->on_upgrade_message(n, buf->base);
      });
  uv_timer_start(
      &upgrade_timer_,
      [](uv_timer_t* t) {
        auto* m = static_cast<Master*>(t->data);
        m->upgrade_failed("the new master was not ready within " + std::to_string(m->cfg_.upgrade_timeout_ms) +
                          " ms (upgrade_timeout_ms)");
      },
      cfg_.upgrade_timeout_ms, 0);
  spdlog::info("SIGUSR2: new master pid {}; serving until it is ready", pid);
}

void Master::on_upgrade_message(ssize_t nread, const char* data) {
  if (nread == 0 || handed_over_) return;
  if (nread > 0 && data[0] == 'R') {
    hand_over();
    return;
  }
  upgrade_failed(nread < 0 ? "the new master closed its pipe before it was ready" : "unexpected message on the "
                                                                                     "upgrade pipe");
}

void Master::close_upgrade_pipe() {
  uv_timer_stop(&upgrade_timer_);
  if (upgrade_pipe_ == nullptr) return;
  uv_close(H(upgrade_pipe_), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
  upgrade_pipe_ = nullptr;
}

void Master::upgrade_failed(const std::string& why) {
  if (handed_over_ || upgrade_failing_) return;
  upgrade_failing_ = true;  // until reap() sees it exit: one line per failure
  close_upgrade_pipe();
  if (upgrade_pid_ != 0) {
    // Its workers die with it (parent-death signal); reap_foreign_rows
    // marks their slots Down. reap() clears upgrade_pid_.
    kill(upgrade_pid_, SIGKILL);
  }
  spdlog::error("upgrade failed: {}; this master (pid {}) keeps serving", why, pid_);
}

void Master::hand_over() {
  handed_over_ = true;
  close_upgrade_pipe();
  owner_ = false;  // the new master wrote its pid into the header
  draining_ = true;
  drain_started_ms_ = core::monotonic_ms();
  // Closing our copies leaves the sockets listening in the new master: its
  // accept queue never stopped, so no connection is refused.
  stop_listening();
  admin_->close();
  for (uint32_t i = 0; i < children_.size(); ++i) {
    uv_timer_stop(children_[i].respawn_timer);
    children_[i].respawn_pending = false;
  }
  for (uint32_t i = base_; i < base_ + cfg_.workers; ++i)
    post(i, shm::make_event(shm::EventType::HandOver, uint16_t(seg_->master_index()), cfg_.drain_timeout_ms));
  // The new master starts its coordinator once this one has exited.
  post(seg_->coordinator_index(), shm::make_event(shm::EventType::Shutdown, uint16_t(seg_->master_index()), 0));
  spdlog::info("upgrade: handed over to pid {} after {} ms; finishing this generation's matches (up to {} ms)",
               upgrade_pid_, core::monotonic_ms() - upgrade_started_ms_, cfg_.drain_timeout_ms);
  start_drain_timer();
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
    if (own(i))
      for (const shm::Event& e : core::reload_events(cfg_, uint16_t(seg_->master_index()))) post(i, e);
  spdlog::info("SIGHUP: reloaded {} (log level {})", cfg_.source, cfg_.log_level);
}

admin::Response Master::admin_request(const std::string& target) {
  if (target == "/healthz") {
    bool coordinator = shm::shared_load(seg_->process(seg_->coordinator_index()).state) == shm::ProcessState::Up;
    bool worker = false;
    for (uint32_t i = 0; i < seg_->worker_slots(); ++i)
      worker |= shm::shared_load(seg_->process(i).state) == shm::ProcessState::Up;
    if (coordinator && worker && !seg_->corrupt()) return {200, "text/plain", "ok\n"};
    return {503, "text/plain", "unhealthy\n"};
  }
  if (target == "/metrics" || target == "/status") {
    AdminView view{&cfg_, seg_.get(), &stats_, core::monotonic_ms(), start_ms_, listening_, draining_, {}};
    for (uint32_t i = 0; i < seg_->worker_slots(); ++i)
      if (own_worker(i) || shm::shared_load(seg_->process(i).state) != shm::ProcessState::Down)
        view.workers.push_back(i);
    if (target == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(view)};
    return {200, "application/json", render_status(view)};
  }
  if (target == "/readyz") {
    if (listening_ && !draining_) return {200, "text/plain", "ready\n"};
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
    if (!listening_ || draining_) return false;
    for (uint32_t i = base_; i < base_ + cfg_.workers; ++i)
      if (shm::shared_load(seg_->process(i).state) != shm::ProcessState::Up) return false;
    return true;
  };
  // Both banks: during an upgrade both masters report the same total.
  hooks.players = [this] {
    uint64_t n = 0;
    for (uint32_t i = 0; i < seg_->worker_slots(); ++i) n += shm::shared_load(seg_->process(i).connections_open);
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
    for (Child& c : children_)
      if (c.pid > 0) kill(c.pid, SIGKILL);
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
  for (uv_handle_t* h : {H(&sigterm_), H(&sigint_), H(&sighup_), H(&sigchld_), H(&sigusr2_), H(&heartbeat_timer_),
                         H(&drain_timer_), H(&upgrade_timer_), H(&takeover_timer_), H(&accept_pause_timer_)})
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  for (Child& c : children_) {
    if (c.pipe != nullptr) uv_close(H(c.pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    c.pipe = nullptr;
    uv_close(H(c.respawn_timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  stop_listening();
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

}  // namespace skirmish::master
