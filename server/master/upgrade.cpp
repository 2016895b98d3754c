// The binary upgrade (SIGUSR2, as nginx's), both sides. Members of Master:
// the upgrade reaches into everything the master holds (sockets, segment
// ownership, the drain), so it is a file of the class, not a class.
//
// Promises:
// - Old side (begin_upgrade): the master forks and executes its own
//   executable path again (the file a new build was installed over, read
//   from /proc/self/exe at start) with the same arguments. The new master
//   inherits, by fd number across exec, the listening game and admin
//   sockets, every process's eventfd, and a pipe back to the old master
//   ($SKIRMISH_UPGRADE = "OLD_PID:LISTEN_FD:ADMIN_FD:READY_FD"). Refused
//   while draining, while an upgrade runs, while this master is still
//   taking over, or while the other bank's workers are still draining.
// - New side (start_inherited, take_over_step): it attaches the live
//   segment (same layout version and sizes, else it refuses and exits) and
//   starts its workers in the other bank of worker slots (shm/layout.h),
//   accepting on the shared listen socket at once. When they are all Up it
//   names itself the segment's owner, tells systemd MAINPID, and writes "R"
//   on the pipe; it starts its coordinator once the old one has exited.
// - Hand-over (hand_over): on "R" the old master stops accepting (closes
//   its copies of the sockets: the kernel's accept queue stays with the
//   new master, so no connection is refused), stops its coordinator and
//   tells its workers to hand over: each sends idle sessions on to resume
//   at the new generation, keeps seated players until their MatchEnd,
//   finishes the matches it ticks and exits. The old master exits once its
//   children are gone, leaving the segment.
// - Failure (upgrade_failed): if the new master exits, closes its pipe, or
//   is not ready within upgrade_timeout_ms (it is killed), the old one
//   keeps serving; the supervisor marks the other bank's rows Down once
//   their processes are gone. One error line per failure.
//
// Assumes: the master's loop thread; between fork and exec only
// async-signal-safe calls (everything is built before fork).
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "core/notify.h"
#include "core/process.h"
#include "master/master.h"
#include "master/net.h"
#include "shm/atomic_field.h"

namespace skirmish::master {

namespace {

// The new master of an upgrade checks this often whether its workers are up
// and whether the old coordinator has exited.
constexpr uint64_t kTakeoverPollMs = 10;

template <class T>
uv_handle_t* H(T* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

}  // namespace

// ---- the new master's side ----

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
  if (!(seg_->sizes() == sizes_of(cfg_, *game_))) {
    error = "upgrade: the config changes the shared-memory sizes (workers, max_players, max_matches, "
            "mailbox_depth) or the game module (its name, version or state size): that needs a full restart, "
            "not an upgrade";
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
  if (!acceptor_->start(listen_fd)) {
    error = "upgrade: cannot poll the inherited listen socket";
    return false;
  }
  for (uint32_t i = 0; i < cfg_.workers; ++i)
    if (!supervisor_->spawn(base_ + i)) {
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
  if (!supervisor_->coordinator_started()) {
    shm::ProcessRow& row = seg_->process(seg_->coordinator_index());
    const int32_t pid = shm::shared_load(row.pid);
    if (pid != 0 && shm::pid_alive(pid)) return;  // the old coordinator is still up
    // Its master wrote Down after reaping it; if that master died with it,
    // the row still says Up, and nobody else will write it.
    if (!supervisor_->spawn(seg_->coordinator_index())) return;  // tried again next poll
    spdlog::info("upgrade: coordinator started {} ms after the upgrade began",
                 core::monotonic_ms() - upgrade_started_ms_);
  }
  uv_timer_stop(&takeover_timer_);
}

// ---- the old master's side ----

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
  const int listen_fd = acceptor_->fd();
  const int admin_fd = admin_ ? admin_->fd() : -1;
  if (exe.empty() || args.empty() || !acceptor_->listening() || listen_fd < 0 || admin_fd < 0) {
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
  acceptor_->stop();
  admin_->close();
  supervisor_->stop_respawning();
  for (uint32_t i = base_; i < base_ + cfg_.workers; ++i)
    post(i, shm::make_event(shm::EventType::HandOver, uint16_t(seg_->master_index()), cfg_.drain_timeout_ms));
  // The new master starts its coordinator once this one has exited.
  post(seg_->coordinator_index(), shm::make_event(shm::EventType::Shutdown, uint16_t(seg_->master_index()), 0));
  spdlog::info("upgrade: handed over to pid {} after {} ms; finishing this generation's matches (up to {} ms)",
               upgrade_pid_, core::monotonic_ms() - upgrade_started_ms_, cfg_.drain_timeout_ms);
  start_drain_timer();
  finish_if_drained();
}

// The new master is this master's child but no slot: reaped here.
bool Master::on_other_exit(pid_t pid, int status) {
  if (pid != upgrade_pid_ || pid == 0) return false;
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
  return true;
}

}  // namespace skirmish::master
