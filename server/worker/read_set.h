// The worker's read side: its sessions' sockets in an epoll set of their
// own, read with recv(2), where libuv would read them with read(2).
//
// Why: read(2) on a socket goes through the VFS (vfs_read, fdget_pos,
// sock_read_iter) to the same tcp_recvmsg that recv(2) reaches directly;
// at 1,000 bots that detour was 4 % of the workers' samples against the
// floor server's recv (perf, README "Benchmarks"). libuv has no way to
// read a stream with recv, so the worker does not give it the reads: a
// uv_poll on this set's epoll fd tells the loop when any socket in it is
// readable, and drain() reads them. Off the I/O quantum ([server]
// io_quantum_ms > 0) nobody needs to be woken by a socket, so the poll
// is stopped (set_polled(false)) and the worker's pass calls drain()
// itself: the set is then not nested in libuv's, and a packet's wake-up
// stops at this set (a nested set costs a sock_poll per ready socket per
// pass in libuv's epoll_wait too: measured, a third of the workers'
// sock_poll samples).
// The set is edge-triggered: a socket is reported once per arrival, not
// again at every epoll_wait until read dry (level-triggered re-polls each
// reported socket once more: the other part of that sock_poll excess).
// The reader reads once; a read that filled its buffer may have left
// more, so it calls rearm(), which has the socket reported again on the
// next drain: one recv per socket per pass, every session served in turn.
// Writes stay with libuv (uv_write for a backlog, POLLOUT in libuv's own
// set).
//
// Contract
// - open(loop, cb, ctx): the epoll set and its uv_poll; false if either
//   cannot be made (the worker then reads through libuv, uv_read_start).
// - add(fd, ptr): ptr is handed to cb(ctx, ptr) whenever fd is readable
//   (data, EOF or an error: cb tells them apart with its recv). false if
//   epoll refused it (the caller reads that one through libuv).
// - remove(fd) before the fd is closed (an epoll set keeps a socket whose
//   file another process still holds: the master's copy of a handoff) and
//   whenever the caller stops reading it. Events drained in the same batch
//   may still name a removed fd's ptr: cb must skip what it has closed (the
//   worker's Session outlives the batch: it is freed from libuv's close
//   callback, after this one returns).
// - rearm(fd, ptr): report fd again at the next drain if it is readable
//   then (EPOLL_CTL_MOD re-polls it): after a read that filled the buffer.
// - drain() runs from the poll callback while polled, else from the
//   caller's loop pass: at most kMaxBatches epoll_waits of kBatch events
//   with timeout 0.
// - set_polled(on): whether libuv watches the set (on after open()).
// - close(): stops the poll and closes the set; the fds in it are the
//   caller's.
#pragma once

#include <uv.h>

#include <sys/epoll.h>

#include <cstdint>

namespace skirmish::worker {

class ReadSet {
 public:
  using Ready = void (*)(void* ctx, void* ptr);
  static constexpr int kBatch = 256;
  static constexpr int kMaxBatches = 64;  // 16,384 sockets a pass; the rest wait for the next

  ReadSet() = default;
  ~ReadSet();
  ReadSet(const ReadSet&) = delete;
  ReadSet& operator=(const ReadSet&) = delete;

  bool open(uv_loop_t* loop, Ready cb, void* ctx);
  bool is_open() const { return ep_ >= 0; }
  bool add(int fd, void* ptr);
  bool rearm(int fd, void* ptr);
  void remove(int fd);
  void set_polled(bool on);
  bool polled() const { return polled_; }
  void drain();
  void close();

 private:
  int ep_ = -1;
  uv_poll_t poll_;
  Ready cb_ = nullptr;
  void* ctx_ = nullptr;
  bool polled_ = false;
  epoll_event evs_[kBatch];
};

}  // namespace skirmish::worker
