// The loop of a child process (a worker, the coordinator): the one
// skeleton both run, so the two cannot drift apart again (they had: the
// coordinator ignored uv_pipe_open's result and applied Reload keys
// differently from the workers).
//
// Contract
// - ChildLoop(ctx, log_name, title): logging as `log_name` at the config's
//   level, the process title "skirmish: <title>", a libuv loop, and the
//   child's own copy of the config (reloads are applied to it).
// - start(role): opens the IPC socket to the master as a libuv pipe (with
//   handle passing when `carries_handles`: a worker's connections arrive on
//   it) and reads it; watches the process's eventfd; beats the heartbeat in
//   its process row every kHeartbeatMs; calls role.on_start(), marks the row
//   Up, and drains the mailbox once (events posted while the child was down
//   wait in the ring). A pipe that cannot be opened is logged and start()
//   returns false, with every handle closed: a child that cannot read its
//   pipe could not see the master die, so it exits 1 rather than run blind.
// - EOF or an error on the pipe means the master is gone: stop(). Nothing
//   in a child outlives its master.
// - Each wake drains the eventfd, then the whole mailbox, 64 events at a
//   time. Reload events are applied to the config copy here, key by key
//   (core/live_config.h), and the role gets the whole new config once, at
//   the Commit that ends the batch ("config reloaded" is logged then), so
//   no role ever runs on half a reload. Shutdown goes to on_shutdown and
//   HandOver to on_hand_over (both with `a` = the drain in ms), every other
//   event to on_event; on_wake() follows each drained batch. Once stop()
//   has been called the rest of the batch is dropped.
// - stop() may be called from any callback, more than once: the role's
//   on_stop() closes its own handles, then the skeleton closes its own;
//   run() returns when the loop has nothing left.
// - Heartbeats come from a timer on the same loop as the role's work, so a
//   role stuck in a callback stops beating and the master replaces it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "config/config.h"
#include "core/child.h"
#include "shm/mailbox.h"
#include "shm/tables.h"

namespace skirmish::core {

// What a child process does on the skeleton's events. Every hook runs on
// the loop; none may block.
class ChildRole {
 public:
  virtual ~ChildRole() = default;
  // Handles are set up, the row is not Up yet: last start-up work.
  virtual void on_start() {}
  virtual void on_shutdown(uint32_t drain_ms) = 0;
  virtual void on_hand_over(uint32_t drain_ms) { on_shutdown(drain_ms); }
  // After a Reload's Commit: the whole config as the master validated it.
  virtual void on_config(const config::Config& cfg) = 0;
  virtual void on_event(const shm::Event& e) = 0;
  virtual void on_wake() {}
  // run_on_quantum only: before each loop pass; `quantum` = this pass is
  // one of the quantum's (q > 0), not a wait for anything.
  virtual void on_pass(bool quantum) { (void)quantum; }
  virtual void on_heartbeat() {}
  // Bytes arrived on a pipe with handle passing: take the pending handles
  // (uv_pipe_pending_count) from `ipc`.
  virtual void on_ipc_readable(uv_pipe_t* ipc) { (void)ipc; }
  // Close the role's own handles.
  virtual void on_stop() {}
};

class ChildLoop {
 public:
  static constexpr uint64_t kHeartbeatMs = 250;

  ChildLoop(const ChildContext& ctx, const std::string& log_name, const std::string& title, bool carries_handles);
  ~ChildLoop();
  ChildLoop(const ChildLoop&) = delete;
  ChildLoop& operator=(const ChildLoop&) = delete;

  uv_loop_t* loop() { return &loop_; }
  const config::Config& config() const { return cfg_; }
  shm::ProcessRow& row() const { return *row_; }
  const ChildContext& context() const { return ctx_; }
  // The pipe to the master (open once start() succeeded): a worker reports
  // closed connections on it.
  uv_stream_t* ipc() { return reinterpret_cast<uv_stream_t*>(&ipc_); }

  bool start(ChildRole* role);
  // Runs the loop until stop() and every handle is closed.
  void run();
  // The same on an I/O quantum ([server] io_quantum_ms): between passes the
  // process sleeps on its eventfd and the loop's next timer alone, at most
  // quantum() ms, and each pass (UV_RUN_NOWAIT) serves every descriptor
  // that became ready meanwhile. So a worker wakes at most about
  // 1000/quantum times a second (plus its timers and eventfd) however
  // many sockets have traffic; a socket waits at most one quantum.
  // quantum() is asked before every pass; 0 = a pass that waits for
  // anything (run()'s behaviour).
  void run_on_quantum(const std::function<uint32_t()>& quantum);
  void stop();
  bool stopping() const { return stopping_; }

  // Drains the eventfd and the mailbox now (start() does it once; tests).
  void drain_mailbox();

 private:
  static void on_poll(uv_poll_t* h, int status, int events);
  static void on_beat(uv_timer_t* t);
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);

  const ChildContext& ctx_;
  config::Config cfg_;
  shm::ProcessRow* row_;
  ChildRole* role_ = nullptr;
  uv_loop_t loop_;
  uv_pipe_t ipc_;
  uv_poll_t event_poll_;
  uv_timer_t heartbeat_;
  bool poll_started_ = false;
  bool stopping_ = false;
  char ipc_buf_[64];
};

}  // namespace skirmish::core
