// Per-process event mailboxes: bounded rings in shared memory + an eventfd.
//
// Contract
// - Each process (workers, coordinator, master) has one mailbox: a
//   MailboxControl and a ring of `mailbox_depth` fixed-size Events in the
//   segment, and one eventfd the master made before fork (EFD_NONBLOCK).
//   The eventfd only wakes; the payload travels in the ring.
// - The ring is guarded by the mailbox's own robust lock, not built
//   lock-free: a producer killed mid-push must not wedge the ring. head and
//   tail are monotonically increasing u64 counters, each moved by one store
//   after the data is in place, so a death at any point leaves either the old
//   or the new state; the repair step only re-derives the depth from
//   head/tail (and drops the ring if they are impossible, counted in
//   `dropped`). A reader that dies mid-pop gets the batch again after its
//   respawn: delivery is at-least-once.
// - Writer: post() = push, then eventfd_write(fd, 1) only when the ring went
//   from empty to non-empty (PushedWasEmpty), after the lock is released.
//   A full ring is refused (Full), counted here, and must be counted and
//   logged by the sender too (counters.mailbox_full of its ProcessRow); never a silent drop.
// - Reader, on every wake: drain_eventfd(fd) FIRST, then pop_batch until it
//   returns 0. Draining the eventfd after popping could swallow the wake of
//   an event pushed in between. A (re)started reader drains the ring once at
//   start without waiting for a wake: its predecessor may have consumed the
//   eventfd and died before popping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shm/robust_mutex.h"

namespace skirmish::shm {

enum class EventType : std::uint16_t {
  Shutdown = 1,
  Reload,
  TicketChanged,  // worker -> coordinator
  MatchCreated,   // coordinator -> workers
  MatchAdopted,
  MatchEnded,
  MatchTicked,    // owner worker -> workers with players in the match
  MatchFound,     // coordinator -> workers with players in a new match
  WorkerDown,     // master -> coordinator: worker `a` died; adopt its matches
  HandOver,       // old master -> its workers (upgrade): finish matches, send
                  // the rest to the new generation, exit; `a` = drain ms
};

struct Event {
  std::uint16_t type;  // EventType
  std::uint16_t from;  // sender's process index
  std::uint32_t a;     // e.g. a match or ticket wire id
  std::uint64_t b;
  std::uint64_t c;
};
static_assert(std::is_trivially_copyable_v<Event>);
static_assert(std::is_standard_layout_v<Event>);
static_assert(sizeof(Event) == 24);

constexpr Event make_event(EventType type, std::uint16_t from,
                           std::uint32_t a = 0, std::uint64_t b = 0,
                           std::uint64_t c = 0) {
  return Event{static_cast<std::uint16_t>(type), from, a, b, c};
}

struct alignas(64) MailboxControl {
  RobustMutex lock;
  std::uint32_t capacity;    // events the ring holds (mailbox_depth)
  std::uint32_t high_water;  // deepest the ring has been
  std::uint64_t head;        // events popped, ever
  std::uint64_t tail;        // events pushed, ever
  std::uint64_t full;        // pushes refused because the ring was full
  std::uint64_t recoveries;  // EOWNERDEAD repairs
  std::uint64_t dropped;     // events discarded by a repair (corruption only)
};
static_assert(std::is_trivially_copyable_v<MailboxControl>);
static_assert(std::is_standard_layout_v<MailboxControl>);
static_assert(sizeof(MailboxControl) == 128);

enum class PushResult {
  Pushed,          // the ring was not empty: the reader has a wake pending
  PushedWasEmpty,  // empty -> non-empty: the caller must signal the eventfd
  Full,            // refused; counted in MailboxControl::full
  LockFailed,      // lock unrecoverable (after the failure handler returned)
};

// A process-local view over one mailbox; copy freely, owns nothing. Methods
// are const because they change shared memory, not the view.
class Mailbox {
 public:
  Mailbox() = default;
  Mailbox(MailboxControl* control, Event* ring, std::uint32_t* corrupt_flag)
      : ctl_(control), ring_(ring), corrupt_(corrupt_flag) {}

  // Formats a mailbox in fresh memory. Returns 0 or an errno value.
  static int format(MailboxControl& control, std::uint32_t capacity);

  PushResult push(const Event& ev) const;
  // Pops up to `max` events in order into `out`; returns how many.
  std::size_t pop_batch(Event* out, std::size_t max) const;

  std::uint32_t capacity() const { return ctl_->capacity; }
  std::uint32_t depth() const;  // events waiting now (approximate, no lock)
  std::uint32_t high_water() const;
  std::uint64_t full_count() const;
  std::uint64_t pushed_total() const;
  std::uint64_t popped_total() const;
  std::uint64_t recoveries() const;
  std::uint64_t dropped() const;

  // Takes the lock with the repair step, for tests and tools.
  Guard lock() const;
  Guard lock(std::chrono::milliseconds timeout) const;

  // Raw regions, for tests and tools.
  MailboxControl& control() const { return *ctl_; }
  Event* ring() const { return ring_; }

 private:
  MailboxControl* ctl_ = nullptr;
  Event* ring_ = nullptr;
  std::uint32_t* corrupt_ = nullptr;
};

// Repair step of a mailbox lock; `ctx` is the MailboxControl*.
void repair_mailbox(void* ctx);

struct PostResult {
  PushResult push;
  int signal_error;  // 0, or errno of a failed eventfd_write
};

// push(), then eventfd_write(event_fd, 1) only on PushedWasEmpty, outside
// the lock.
PostResult post(const Mailbox& mailbox, int event_fd, const Event& ev);

// Resets the eventfd's counter. Returns 0 (also when nothing was pending),
// or an errno value. `fd` must be EFD_NONBLOCK.
int drain_eventfd(int fd);

}  // namespace skirmish::shm
