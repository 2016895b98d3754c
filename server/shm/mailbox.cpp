#include "shm/mailbox.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>

#include "shm/atomic_field.h"

namespace skirmish::shm {

int Mailbox::format(MailboxControl& control, std::uint32_t capacity) {
  int rc = init_robust_mutex(control.lock);
  if (rc != 0) return rc;
  control.capacity = capacity;
  control.high_water = 0;
  control.head = 0;
  control.tail = 0;
  control.full = 0;
  control.recoveries = 0;
  control.dropped = 0;
  return 0;
}

void repair_mailbox(void* ctx) {
  auto* ctl = static_cast<MailboxControl*>(ctx);
  const std::uint64_t head = ctl->head;
  const std::uint64_t tail = ctl->tail;
  // Each of push and pop moves head or tail with one store after the data
  // is in place, so a dead owner left either the old or the new value and
  // the depth is simply tail - head. Only memory corruption makes it
  // impossible (unsigned: tail < head shows up as a huge depth); then the
  // ring's contents cannot be trusted and are dropped, counted.
  const std::uint64_t depth = tail - head;
  if (depth > ctl->capacity) {
    shared_add(ctl->dropped, std::min<std::uint64_t>(depth, ctl->capacity));
    shared_store(ctl->head, tail);
  }
  shared_add(ctl->recoveries, std::uint64_t{1});
}

Guard Mailbox::lock() const { return Guard(ctl_->lock, &repair_mailbox, ctl_); }

Guard Mailbox::lock(std::chrono::milliseconds timeout) const {
  return Guard(ctl_->lock, timeout, &repair_mailbox, ctl_);
}

PushResult Mailbox::push(const Event& ev) const {
  Guard guard(ctl_->lock, &repair_mailbox, ctl_);
  if (!guard.ok()) {
    mark_corrupt_and_report(corrupt_, "mailbox", guard.error());
    return PushResult::LockFailed;
  }
  const std::uint64_t head = ctl_->head;
  const std::uint64_t tail = ctl_->tail;
  const std::uint64_t depth = tail - head;
  if (depth >= ctl_->capacity) {
    shared_add(ctl_->full, std::uint64_t{1});
    return PushResult::Full;
  }
  ring_[tail % ctl_->capacity] = ev;
  shared_store(ctl_->tail, tail + 1);  // one store publishes the event
  shared_max(ctl_->high_water, static_cast<std::uint32_t>(depth + 1));
  return depth == 0 ? PushResult::PushedWasEmpty : PushResult::Pushed;
}

std::size_t Mailbox::pop_batch(Event* out, std::size_t max) const {
  if (max == 0) return 0;
  Guard guard(ctl_->lock, &repair_mailbox, ctl_);
  if (!guard.ok()) {
    mark_corrupt_and_report(corrupt_, "mailbox", guard.error());
    return 0;
  }
  const std::uint64_t head = ctl_->head;
  const std::uint64_t depth = ctl_->tail - head;
  const std::size_t n = static_cast<std::size_t>(
      std::min<std::uint64_t>(depth, static_cast<std::uint64_t>(max)));
  const std::uint32_t cap = ctl_->capacity;
  for (std::size_t i = 0; i < n; ++i) out[i] = ring_[(head + i) % cap];
  shared_store(ctl_->head, head + n);  // one store consumes the batch
  return n;
}

std::uint32_t Mailbox::depth() const {
  const std::uint64_t head = shared_load(ctl_->head);
  const std::uint64_t tail = shared_load(ctl_->tail);
  const std::uint64_t d = tail >= head ? tail - head : 0;
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(d, ctl_->capacity));
}

std::uint32_t Mailbox::high_water() const {
  return shared_load(ctl_->high_water, std::memory_order_relaxed);
}
std::uint64_t Mailbox::full_count() const {
  return shared_load(ctl_->full, std::memory_order_relaxed);
}
std::uint64_t Mailbox::pushed_total() const {
  return shared_load(ctl_->tail, std::memory_order_relaxed);
}
std::uint64_t Mailbox::popped_total() const {
  return shared_load(ctl_->head, std::memory_order_relaxed);
}
std::uint64_t Mailbox::recoveries() const {
  return shared_load(ctl_->recoveries, std::memory_order_relaxed);
}
std::uint64_t Mailbox::dropped() const {
  return shared_load(ctl_->dropped, std::memory_order_relaxed);
}

PostResult post(const Mailbox& mailbox, int event_fd, const Event& ev) {
  PostResult result{mailbox.push(ev), 0};  // the lock is released here
  if (result.push == PushResult::PushedWasEmpty) {
    while (eventfd_write(event_fd, 1) != 0) {
      if (errno == EINTR) continue;
      result.signal_error = errno;
      break;
    }
  }
  return result;
}

int drain_eventfd(int fd) {
  eventfd_t value = 0;
  for (;;) {
    if (eventfd_read(fd, &value) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    return errno;
  }
}

}  // namespace skirmish::shm
