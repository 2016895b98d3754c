// test_shm_mailbox: unit tests of server/shm's mailboxes.
//
// Order, Full, wraparound, the eventfd signalled only on empty -> non-empty,
// and producers in other processes with no lost wake-up.
//
// Every test case runs under an alarm() watchdog and every child process
// under its own, so a lock bug fails the run instead of hanging it. Segment
// names include the pid; every segment is unlinked at the end. The shared
// helpers are in test_shm_support.h.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "shm/segment.h"
#include "test_shm_support.h"

using namespace skirmish::shm;
using namespace shm_test;

// ---------------------------------------------------------------- mailbox

TEST_CASE("mailbox: order, Full counted, PushedWasEmpty only when empty") {
  Watchdog dog(30);
  TestSegment seg("mbox", kSmall);  // depth 8
  Mailbox mb = seg->mailbox(seg->coordinator_index());
  REQUIRE(mb.capacity() == 8);
  REQUIRE(mb.push(make_event(EventType::TicketChanged, 0, 1)) ==
          PushResult::PushedWasEmpty);
  for (std::uint32_t i = 2; i <= 8; ++i) {
    REQUIRE(mb.push(make_event(EventType::TicketChanged, 0, i)) ==
            PushResult::Pushed);
  }
  REQUIRE(mb.depth() == 8);
  REQUIRE(mb.push(make_event(EventType::TicketChanged, 0, 9)) == PushResult::Full);
  REQUIRE(mb.push(make_event(EventType::TicketChanged, 0, 9)) == PushResult::Full);
  REQUIRE(mb.full_count() == 2);
  REQUIRE(mb.high_water() == 8);

  Event out[16];
  REQUIRE(mb.pop_batch(out, 3) == 3);
  for (std::uint32_t i = 0; i < 3; ++i) REQUIRE(out[i].a == i + 1);
  // Not empty: a push needs no signal.
  REQUIRE(mb.push(make_event(EventType::MatchEnded, 1, 100)) == PushResult::Pushed);
  REQUIRE(mb.pop_batch(out, 16) == 6);
  for (std::uint32_t i = 0; i < 5; ++i) REQUIRE(out[i].a == i + 4);
  REQUIRE(out[5].a == 100);
  REQUIRE(out[5].type == static_cast<std::uint16_t>(EventType::MatchEnded));
  REQUIRE(out[5].from == 1);
  REQUIRE(mb.pop_batch(out, 16) == 0);
  REQUIRE(mb.depth() == 0);
  REQUIRE(mb.push(make_event(EventType::Reload, 2)) == PushResult::PushedWasEmpty);
  REQUIRE(mb.pop_batch(out, 0) == 0);
  REQUIRE(mb.pop_batch(out, 16) == 1);
  // Other mailboxes are untouched.
  REQUIRE(seg->mailbox(0).depth() == 0);
  REQUIRE(seg->mailbox(seg->master_index()).pushed_total() == 0);
}

TEST_CASE("mailbox: wraparound over many cycles keeps order") {
  Watchdog dog(30);
  TestSegment seg("mwrap", Sizes{1, 1, 1, 1, 7});
  Mailbox mb = seg->mailbox(0);
  std::uint64_t next_push = 0;
  std::uint64_t next_pop = 0;
  Event out[7];
  for (int round = 0; round < 5000; ++round) {
    const int pushes = 1 + round % 7;
    for (int i = 0; i < pushes; ++i) {
      const bool was_empty = next_push == next_pop;
      PushResult r = mb.push(make_event(EventType::MatchTicked, 0, 0, next_push));
      REQUIRE(r == (was_empty ? PushResult::PushedWasEmpty : PushResult::Pushed));
      ++next_push;
      if (next_push - next_pop == 7) break;
    }
    const std::size_t want = 1 + static_cast<std::size_t>(round % 5);
    const std::size_t got = mb.pop_batch(out, want);
    REQUIRE(got == std::min<std::uint64_t>(want, next_push - next_pop));
    for (std::size_t i = 0; i < got; ++i) REQUIRE(out[i].b == next_pop++);
  }
  while (std::size_t got = mb.pop_batch(out, 7)) {
    for (std::size_t i = 0; i < got; ++i) REQUIRE(out[i].b == next_pop++);
  }
  REQUIRE(next_pop == next_push);
  REQUIRE(mb.pushed_total() == next_push);
  REQUIRE(mb.popped_total() == next_pop);
  REQUIRE(next_push > 10000);
  REQUIRE(mb.full_count() == 0);
}

TEST_CASE("mailbox: post signals the eventfd only on empty -> non-empty") {
  Watchdog dog(30);
  TestSegment seg("post", kSmall);
  Mailbox mb = seg->mailbox(1);
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  auto readable = [&] {
    pollfd p{efd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
  };
  REQUIRE_FALSE(readable());
  REQUIRE(post(mb, efd, make_event(EventType::MatchCreated, 2, 1)).push ==
          PushResult::PushedWasEmpty);
  REQUIRE(post(mb, efd, make_event(EventType::MatchCreated, 2, 2)).push ==
          PushResult::Pushed);
  REQUIRE(post(mb, efd, make_event(EventType::MatchCreated, 2, 3)).push ==
          PushResult::Pushed);
  eventfd_t count = 0;
  REQUIRE(eventfd_read(efd, &count) == 0);
  REQUIRE(count == 1);  // three events, one wake
  REQUIRE(post(mb, efd, make_event(EventType::MatchCreated, 2, 4)).push ==
          PushResult::Pushed);
  REQUIRE_FALSE(readable());

  // The reader protocol: drain the eventfd first, then the ring.
  REQUIRE(drain_eventfd(efd) == 0);  // nothing pending is fine
  Event out[8];
  std::size_t total = 0;
  while (std::size_t n = mb.pop_batch(out, 2)) total += n;
  REQUIRE(total == 4);
  PostResult r = post(mb, efd, make_event(EventType::Shutdown, 2));
  REQUIRE(r.push == PushResult::PushedWasEmpty);
  REQUIRE(r.signal_error == 0);
  REQUIRE(readable());
  REQUIRE(drain_eventfd(efd) == 0);
  REQUIRE_FALSE(readable());

  // Fill it: Full is returned and nothing is signalled.
  for (int i = 0; i < 7; ++i) {
    REQUIRE(post(mb, efd, make_event(EventType::MatchTicked, 2)).push ==
            PushResult::Pushed);
  }
  REQUIRE(post(mb, efd, make_event(EventType::MatchTicked, 2)).push ==
          PushResult::Full);
  REQUIRE(mb.full_count() == 1);
  REQUIRE_FALSE(readable());
  REQUIRE(drain_eventfd(-1) == EBADF);
  close(efd);
}

TEST_CASE("mailbox: producers in other processes, no lost wake-up") {
  Watchdog dog(90);
  TestSegment seg("mproc", Sizes{4, 1, 1, 1, 64});
  const std::uint32_t target = seg->coordinator_index();
  Mailbox mb = seg->mailbox(target);
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  constexpr int kProducers = 3;
  constexpr std::uint64_t kEach = 20000;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProducers; ++p) {
    kids.push_back(spawn([&, p]() -> int {
      for (std::uint64_t seq = 0; seq < kEach;) {
        PostResult r = post(mb, efd,
                            make_event(EventType::MatchTicked,
                                       static_cast<std::uint16_t>(p), 0, seq));
        if (r.signal_error != 0) return 3;
        if (r.push == PushResult::Full) {
          sched_yield();  // the reader is behind; retry
          continue;
        }
        if (r.push == PushResult::LockFailed) return 4;
        ++seq;
      }
      return 0;
    }));
  }
  std::vector<std::uint64_t> next(kProducers, 0);
  std::uint64_t received = 0;
  std::uint64_t wakes = 0;
  Event out[32];
  while (received < kProducers * kEach) {
    pollfd pfd{efd, POLLIN, 0};
    int rc = poll(&pfd, 1, 10000);
    REQUIRE(rc == 1);  // a lost wake-up shows up as a timeout here
    ++wakes;
    REQUIRE(drain_eventfd(efd) == 0);
    while (std::size_t n = mb.pop_batch(out, 32)) {
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(out[i].from < kProducers);
        REQUIRE(out[i].b == next[out[i].from]++);
      }
      received += n;
    }
  }
  for (pid_t k : kids) require_exit_zero(k);
  REQUIRE(mb.depth() == 0);
  std::printf("mailbox: %llu events from %d processes in %llu wakes, %llu "
              "full refusals\n",
              static_cast<unsigned long long>(received), kProducers,
              static_cast<unsigned long long>(wakes),
              static_cast<unsigned long long>(mb.full_count()));
  close(efd);
}
