#include "core/child_loop.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/live_config.h"
#include "core/log.h"
#include "core/process.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"

namespace skirmish::core {

namespace {

uv_handle_t* H(void* h) { return static_cast<uv_handle_t*>(h); }

}  // namespace

ChildLoop::ChildLoop(const ChildContext& ctx, const std::string& log_name, const std::string& title,
                     bool carries_handles)
    : ctx_(ctx), cfg_(*ctx.cfg), row_(&ctx.seg->process(ctx.index)) {
  log::init_logging(log_name, log::parse_level(cfg_.log_level).value_or(spdlog::level::info));
  set_process_title("skirmish: " + title);
  uv_loop_init(&loop_);
  uv_pipe_init(&loop_, &ipc_, carries_handles ? 1 : 0);
  ipc_.data = this;
  uv_timer_init(&loop_, &heartbeat_);
  heartbeat_.data = this;
  event_poll_.data = this;
}

ChildLoop::~ChildLoop() {
  // Every handle is closed by now (run() returned, or start() failed and
  // cleaned up); the loop itself goes last.
  uv_loop_close(&loop_);
  spdlog::default_logger()->flush();
}

bool ChildLoop::start(ChildRole* role) {
  role_ = role;
  if (int r = uv_pipe_open(&ipc_, ctx_.ipc_fd); r != 0) {
    spdlog::critical("IPC pipe to the master (fd {}): {}; exiting", ctx_.ipc_fd, uv_strerror(r));
    stop();
    uv_run(&loop_, UV_RUN_DEFAULT);  // completes the closes
    return false;
  }
  if (int r = uv_read_start(ipc(), on_alloc, on_read); r != 0) {
    spdlog::critical("IPC pipe to the master: read: {}; exiting", uv_strerror(r));
    stop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    return false;
  }
  if (int r = uv_poll_init(&loop_, &event_poll_, row_->event_fd); r != 0) {
    spdlog::critical("eventfd {}: {}; exiting", row_->event_fd, uv_strerror(r));
    stop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    return false;
  }
  poll_started_ = true;
  event_poll_.data = this;
  uv_poll_start(&event_poll_, UV_READABLE, on_poll);
  uv_timer_start(&heartbeat_, on_beat, kHeartbeatMs, kHeartbeatMs);

  role_->on_start();
  shm::shared_store(row_->heartbeat_ms, monotonic_ms());
  shm::shared_store(row_->state, shm::ProcessState::Up);
  drain_mailbox();  // may already stop (a Shutdown waited): run() then just closes
  return true;
}

void ChildLoop::run() { uv_run(&loop_, UV_RUN_DEFAULT); }

void ChildLoop::run_on_quantum(const std::function<uint32_t()>& quantum) {
  // The sleep's own epoll set holds the eventfd only: a match event (a
  // MatchTicked to send, a MatchCreated) wakes at once; sockets, the IPC
  // pipe and signals wait for the quantum. Timers bound the sleep.
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = row_->event_fd;
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, row_->event_fd, &ev) != 0) {
    spdlog::warn("io quantum: epoll: {}; serving every wake-up at once", std::strerror(errno));
    if (ep >= 0) ::close(ep);
    run();
    return;
  }
  for (;;) {
    const uint32_t q = quantum();
    if (role_ != nullptr) role_->on_pass(q != 0);
    if (q == 0) {
      if (uv_run(&loop_, UV_RUN_ONCE) == 0) break;
      continue;
    }
    // The quantum counts from the start of a pass, not its end: a pass
    // that steps the matches and writes every snapshot takes milliseconds,
    // and sleeping a whole quantum after it held sockets (and pings) for
    // pass + quantum. For the same reason the loop's clock is brought up to
    // date before asking for the next timer: uv_backend_timeout() counts
    // from the time libuv took at the start of the pass, and a tick timer
    // would otherwise fire late by the pass's length.
    const uint64_t start_us = uv_hrtime() / 1000;
    if (uv_run(&loop_, UV_RUN_NOWAIT) == 0) break;
    const uint64_t spent_us = uv_hrtime() / 1000 - start_us;
    const int budget = spent_us >= uint64_t(q) * 1000 ? 0 : int((uint64_t(q) * 1000 - spent_us) / 1000);
    uv_update_time(&loop_);
    const int next_timer = uv_backend_timeout(&loop_);  // -1: none; 0: work pending
    const int wait = next_timer < 0 ? budget : std::min(next_timer, budget);
    if (wait > 0) {
      epoll_event out;
      (void)epoll_wait(ep, &out, 1, wait);  // EINTR (a signal): the next pass serves it
    }
  }
  ::close(ep);
}

void ChildLoop::stop() {
  if (stopping_) return;
  stopping_ = true;
  if (role_ != nullptr) role_->on_stop();
  for (uv_handle_t* h : {H(&ipc_), H(&heartbeat_)})
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  if (poll_started_ && !uv_is_closing(H(&event_poll_))) uv_close(H(&event_poll_), nullptr);
}

void ChildLoop::drain_mailbox() {
  shm::drain_eventfd(row_->event_fd);
  shm::Mailbox mb = ctx_.seg->mailbox(ctx_.index);
  shm::Event evs[64];
  while (size_t n = mb.pop_batch(evs, 64)) {
    for (size_t i = 0; i < n && !stopping_; ++i) {
      const shm::Event& e = evs[i];
      switch (static_cast<shm::EventType>(e.type)) {
        case shm::EventType::Shutdown:
          role_->on_shutdown(uint32_t(e.a));
          break;
        case shm::EventType::HandOver:
          role_->on_hand_over(uint32_t(e.a));
          break;
        case shm::EventType::Reload:
          apply_live_key(cfg_, e);
          if (e.a == uint32_t(LiveKey::Commit)) {
            role_->on_config(cfg_);
            spdlog::info("config reloaded");
          }
          break;
        default:
          role_->on_event(e);
          break;
      }
    }
    if (stopping_) return;
  }
  role_->on_wake();
}

void ChildLoop::on_poll(uv_poll_t* h, int status, int) {
  if (status < 0) return;
  static_cast<ChildLoop*>(h->data)->drain_mailbox();
}

void ChildLoop::on_beat(uv_timer_t* t) {
  auto* c = static_cast<ChildLoop*>(t->data);
  shm::shared_store(c->row_->heartbeat_ms, monotonic_ms());
  c->role_->on_heartbeat();
}

void ChildLoop::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<ChildLoop*>(h->data);
  *buf = uv_buf_init(c->ipc_buf_, sizeof c->ipc_buf_);
}

void ChildLoop::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* c = static_cast<ChildLoop*>(s->data);
  if (nread < 0) {
    spdlog::warn("master gone ({}); exiting", uv_strerror(int(nread)));
    c->stop();
    return;
  }
  if (c->ipc_.ipc) c->role_->on_ipc_readable(&c->ipc_);
}

}  // namespace skirmish::core
