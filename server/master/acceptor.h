// The acceptor: the master's accept path, from the listen socket to a
// worker's IPC pipe.
//
// Promises:
// - It accepts itself (accept4 in a batch of at most 64 per wake-up on a
//   uv_poll of the listen socket, so a refusal costs no allocation and no
//   libuv handle) and checks, in order:
//   1. descriptors: on EMFILE/ENFILE the reserve-fd trick, as libuv's and
//      nginx's (close the spare, accept, refuse, reopen); with no spare to
//      be had, accepting pauses 100 ms (the kernel queues meanwhile);
//   2. the global cap: max_connections against every worker's open count
//      in shared memory plus the handoffs still in flight to this bank;
//   3. the per-address cap (max_connections_per_ip), counted here: +1 per
//      handoff, -1 per close each worker reports back on its IPC pipe by
//      handoff number (the nth socket sent to a worker is its seq n; the
//      worker counts the same way), and a dead worker's share dropped at
//      once (remove_worker);
//   4. a worker with room (pick_worker).
//   A refusal is Error(ServerFull or TooManyConnections) written straight
//   into the empty socket buffer (never queued) and a close, counted by
//   reason (MasterStats) and logged once per thousand.
// - pick_worker: the worker of this bank with the fewest connections (its
//   open count in shared memory plus handoffs in flight to it), round robin
//   among equals; a worker with no pipe, or whose row says Down or
//   Draining, is skipped, and so is one whose load reached the descriptor
//   capacity it publishes. A Starting worker is eligible: the socket waits
//   in its pipe until its loop runs.
// - The handoff is uv_write2 (SCM_RIGHTS) of the socket over the worker's
//   pipe. The master keeps its copy until the worker has taken the socket
//   from its pipe (its row's handoffs_taken passes the handoff's seq), and
//   only then closes it: a socket still in a dead worker's pipe would die
//   with it, closed without a frame. The master never reads a client byte.
// - A worker leaves the hand-off set the moment the master learns of its
//   death, whichever comes first: EOF on its pipe or a failed write here
//   (the owner is told through `on_lost` and marks it down), or SIGCHLD
//   (the supervisor calls remove_worker). Every socket it had not taken,
//   in flight or in its pipe, goes to another worker, at most
//   kMaxHandoffTries times (then ServerFull and a close): a client never
//   sees a close without a frame because of a worker's death before it
//   took the socket. One it had taken dies with it; the client resumes.
//
// Assumes: one thread (the master's loop); the supervisor tells it, by
// add_worker/remove_worker, which pipes can take sockets, and owns (opens
// and closes) those pipes; `cfg` outlives it and its limits may change
// between calls (SIGHUP).
#pragma once

#include <uv.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "master/stats.h"
#include "protocol/codec.h"
#include "shm/segment.h"

namespace skirmish::master {

class Acceptor {
 public:
  // Workers of this master are slots [base, base + cfg.workers).
  Acceptor(uv_loop_t* loop, const config::Config& cfg, shm::Segment& seg, MasterStats& stats, uint32_t base);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Polls `fd` (a non-blocking listening socket; the acceptor owns it from
  // here). False if it cannot be polled.
  bool start(int fd);
  // Stops accepting and closes this process's copy of the listen socket
  // (it stays listening wherever another copy is open: a binary upgrade's
  // new master). Idempotent.
  void stop();
  bool listening() const { return listening_; }
  int fd() const { return listen_fd_; }  // -1 once stopped

  // Worker `index` (of this bank) can take sockets over `pipe` from now on;
  // its handoff and close-report counts start again from 0. The acceptor
  // reads the worker's close reports from the pipe.
  void add_worker(uint32_t index, uv_pipe_t* pipe);
  // Worker `index` is gone (its pipe is closing): no more handoffs to it,
  // and its connections leave the per-address counts at once.
  void remove_worker(uint32_t index);

  // Called when a worker's pipe shows it is gone (EOF, a failed write)
  // before its exit is reaped; the owner marks it down and calls
  // remove_worker. `why` is for the log.
  std::function<void(uint32_t index, const char* why)> on_lost;

  // Sockets handed but not yet taken by their worker (tests, /status).
  size_t held() const;

  // Closes the timers and every held socket; call before the loop's last
  // run.
  void close();

 private:
  // A handed socket the worker has not taken yet: the master's copy.
  struct Held {
    uint64_t seq;
    uv_tcp_t* client;
    uint64_t key;   // address key (per-address accounting)
    uint8_t tries;  // hand-offs so far
  };
  struct Lane {  // one per worker slot
    uv_pipe_t* pipe = nullptr;  // the supervisor's; null when not ours or gone
    std::deque<Held> held;      // by seq: writes complete in order
    uint64_t handed = 0;        // sockets sent since this worker started
    std::array<uint8_t, 8> carry{};  // a close report split across reads
    uint8_t carry_len = 0;
    uint64_t next_seq = 0;
    std::unordered_map<uint64_t, uint64_t> open_by_seq;  // seq -> address key
  };
  struct Handoff;

  bool own_worker(uint32_t index) const { return index >= base_ && index < base_ + cfg_.workers; }
  void poll_start();
  void on_readable();
  void admit(int fd, const sockaddr_storage& peer);
  // Sends `client` to worker `w` (-1: pick one), or refuses it past
  // kMaxHandoffTries or with no worker to take it.
  void hand(uv_tcp_t* client, uint64_t key, uint8_t tries, int w = -1);
  void on_handed(Handoff* h, int status);
  // Closes the master's copies of the sockets lane `index` has taken.
  void release_taken(uint32_t index);
  void refuse_handle(uv_tcp_t* client);
  void shed_without_descriptors();
  void refuse_fd(int fd, int code, const char* text, uint64_t& counter, const char* reason);
  void count_address(uint64_t key, int delta);
  void on_worker_report(uint32_t index, ssize_t nread, const char* data);
  int pick_worker();

  uv_loop_t* loop_;
  const config::Config& cfg_;
  shm::Segment& seg_;
  MasterStats& stats_;
  uint32_t base_;
  int listen_fd_ = -1;
  uv_poll_t poll_;
  uv_timer_t pause_timer_;
  uv_timer_t release_timer_;  // runs while any socket is held
  int reserve_fd_ = -1;  // a spare descriptor for shedding at EMFILE
  bool listening_ = false;
  bool closed_ = false;
  uint32_t rr_ = 0;
  proto::FrameEncoder refuse_enc_{256};
  std::vector<Lane> lanes_;  // by worker slot
  // Open connections per address key (core/address_key.h); each worker's
  // share is in its Lane::open_by_seq.
  std::unordered_map<uint64_t, uint32_t> per_address_;
  char report_buf_[4096];
};

}  // namespace skirmish::master
