// SlotReader: one shard's bot sockets in an epoll set of its own, read when
// the shard decides instead of when libuv sees them readable.
//
// Why: on this VM a wake-up (epoll_wait, a context switch, re-enabling
// interrupts as a hypercall) costs more than the read it serves, and with
// reading on readability a bot thread wakes for every few snapshots. An
// input the bot sends is decided from the newest view anyway, so reading
// just before sending (at the input phase slots, kClockSlots per input
// period) loses nothing; and the latency figure stays exact because it is
// taken from the kernel's receive timestamp (client::Options::rx_timestamps),
// not from when the thread got around to reading.
//
// Why an epoll set rather than a read of every bot at every slot: a slot
// then costs one epoll_wait(timeout 0) for the whole thread and one recvmsg
// per socket that has something, with no EAGAIN reads; and every bot's
// control traffic (Welcome, MatchFound, Pong, EOF) is served within one
// slot, not one input period. Shard also has --slot-reads own (each slot
// reads only its own bots, one recvmsg each, no epoll set) to compare.
//
// The set is level-triggered (what was not read stays reported) and keyed
// by the bot's index, never a pointer: a bot whose connection closed while a
// batch is handled is found by index and its poll_read() is a no-op. A
// closed socket leaves the set by itself (its last reference is gone), so
// only add() is needed, at every on_connected(0).
//
// on_readable(): a uv_poll_t on the epoll fd itself, so the same path can
// also run on readability (the whole set is drained when any bot is
// readable): --read-at-slots=false --rx-clock kernel, where the read time
// and the kernel time of the very same snapshots are both recorded.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

namespace skirmish::loadtest {

class SlotReader {
 public:
  SlotReader() = default;
  ~SlotReader();
  SlotReader(const SlotReader&) = delete;
  SlotReader& operator=(const SlotReader&) = delete;

  // Creates the set; `read(index)` is called for every ready bot by drain().
  // max_events bounds a drain from on_readable (the shard's bot count).
  bool init(std::function<void(uint32_t index)> read, uint32_t max_events);
  // Also drains from the loop whenever any socket of the set is readable.
  bool on_readable(uv_loop_t* loop);
  void add(int fd, uint32_t index);
  // Calls read() once for each ready socket; at most `max_events` of them
  // (bounded: one pass over the thread's bots). Returns how many.
  uint32_t drain(uint32_t max_events);
  void close();  // stops the poll handle (from the loop) and closes the set

  uint64_t drains() const { return drains_; }

 private:
  int ep_ = -1;
  std::function<void(uint32_t)> read_;
  uint32_t max_events_ = 0;
  uv_poll_t* poll_ = nullptr;  // heap: freed by its close callback
  uint64_t drains_ = 0;
};

}  // namespace skirmish::loadtest
