// test_shm_robust: unit tests of server/shm's robust locks across real
// processes.
//
// A lock held by a live child times out; one held by a dead child is
// ENOTRECOVERABLE if not made consistent (and marks the segment corrupt);
// children killed while holding a table, mailbox or match lock leave torn
// states that the next lock repairs (per lock kind, 200 rounds, and workers
// killed at random points of alloc/release).
//
// Every test case runs under an alarm() watchdog and every child process
// under its own, so a lock bug fails the run instead of hanging it. Locks the
// parent takes after a child died use a deadline (Guard with a timeout).
// Segment names include the pid; every segment is unlinked at the end. The shared
// helpers are in test_shm_support.h.
#include <catch2/catch.hpp>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <new>
#include <string>
#include <vector>

#include "shm/segment.h"
#include "test_shm_support.h"

using namespace skirmish::shm;
using namespace std::chrono_literals;
using namespace shm_test;

// ------------------------------------------------------------ robust locks

TEST_CASE("robust mutex: plain lock, timeout, ENOTRECOVERABLE reported") {
  Watchdog dog(30);
  void* mem = mmap(nullptr, sizeof(RobustMutex), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  auto* mu = new (mem) RobustMutex;
  REQUIRE(init_robust_mutex(*mu) == 0);
  {
    Guard g(*mu, 1000ms);
    REQUIRE(g.ok());
    REQUIRE_FALSE(g.recovered());
  }

  // Held by a live child: the timed guard gives up with ETIMEDOUT.
  Pipe locked, release;
  pid_t kid = spawn([&]() -> int {
    Guard g(*mu);
    if (!g.ok()) return 2;
    locked.put();
    return release.get(20000) ? 0 : 3;
  });
  REQUIRE(locked.get(10000));
  {
    Guard g(*mu, 50ms);
    REQUIRE_FALSE(g.ok());
    REQUIRE(g.error() == ETIMEDOUT);
  }
  release.put();
  require_exit_zero(kid);

  // Dies holding it; someone unlocks after EOWNERDEAD without making it
  // consistent: the mutex is unrecoverable and the guard says so.
  kid = spawn([&]() -> int {
    pthread_mutex_lock(&mu->m);
    raise(SIGKILL);
    return 1;
  });
  require_killed(kid);
  REQUIRE(pthread_mutex_lock(&mu->m) == EOWNERDEAD);
  REQUIRE(pthread_mutex_unlock(&mu->m) == 0);
  Guard g(*mu, 1000ms);
  REQUIRE_FALSE(g.ok());
  REQUIRE(g.error() == ENOTRECOVERABLE);
  munmap(mem, sizeof(RobustMutex));
}

namespace {
int g_failures = 0;
int g_failure_error = 0;
void count_failure(const char*, int error) {
  ++g_failures;
  g_failure_error = error;
}
}  // namespace

TEST_CASE("robust mutex: an unrecoverable table lock marks the segment corrupt") {
  Watchdog dog(30);
  TestSegment seg("notrec", kSmall);
  auto tickets = seg->tickets();
  pid_t kid = spawn([&]() -> int {
    pthread_mutex_lock(&tickets.control().lock.m);
    raise(SIGKILL);
    return 1;
  });
  require_killed(kid);
  RobustMutex& mu = tickets.control().lock;
  REQUIRE(pthread_mutex_lock(&mu.m) == EOWNERDEAD);
  REQUIRE(pthread_mutex_unlock(&mu.m) == 0);  // no consistent(): poisoned

  set_lock_failure_handler(&count_failure);
  g_failures = 0;
  REQUIRE_FALSE(tickets.alloc().has_value());
  REQUIRE_FALSE(tickets.release(Handle{0, 1}));
  set_lock_failure_handler(nullptr);
  REQUIRE(g_failures == 2);
  REQUIRE(g_failure_error == ENOTRECOVERABLE);
  REQUIRE(seg->corrupt());
  REQUIRE(shared_load(seg->header().corrupt) == 1u);
}

namespace {

// What a child does while holding a lock before it is killed. Each writes a
// torn state a real alloc/release/push/pop/tick could leave behind.
enum class Target { Table, Mailbox, Match };

// Slot table torn states (child holds the table lock).
void tear_table(const SlotTable<PlayerRow>& t, int kind, Handle victim) {
  auto& c = t.control();
  const std::uint32_t cap = c.capacity;
  switch (kind) {
    case 0:  // lock only
      break;
    case 1: {  // alloc: popped from the free ring, not yet marked used
      c.free_head = (c.free_head + 1) % cap;
      c.free_count -= 1;
      break;
    }
    case 2: {  // alloc: marked used, still in the free ring, count unchanged
      PlayerRow& r = t.row_at(t.free_ring()[c.free_head]);
      r.gen = next_gen(r.gen);
      r.used = 1;
      break;
    }
    case 3: {  // release: cleared used, not yet back in the ring
      t.row_at(victim.slot).used = 0;
      break;
    }
    case 4: {  // release: back in the ring while still marked used
      t.free_ring()[(c.free_head + c.free_count) % cap] = victim.slot;
      c.free_count += 1;
      break;
    }
  }
}

struct RecoveryRig {
  Segment& seg;
  SlotTable<PlayerRow> players;
  Mailbox mailbox;
  SlotTable<MatchRow> matches;
  Handle match;
  std::deque<std::uint64_t> expected;  // mailbox contents, in order
  std::uint64_t next_seq = 0;
  std::uint64_t published_version = 0;  // first 8 bytes of the live buffer

  explicit RecoveryRig(Segment& s)
      : seg(s),
        players(s.players()),
        mailbox(s.mailbox(0)),
        matches(s.matches()),
        match(*s.matches().alloc()) {
    refill_table();
    refill_mailbox();
  }

  MatchRow& match_row() { return *matches.get(match); }
  // Buffer i of the match's state ring (its own region of the segment).
  std::uint8_t* state_buf(std::uint32_t i) { return seg.match_ring(match_row()) + i * seg.state_stride(); }

  // A few live rows so release-side torn states have a victim.
  Handle refill_table() {
    std::vector<Handle> live;
    players.for_each_used([&](Handle h, PlayerRow&) { live.push_back(h); });
    for (Handle h : live) REQUIRE(players.release(h));
    Handle victim{};
    for (int i = 0; i < 5; ++i) {
      auto h = players.alloc();
      REQUIRE(h.has_value());
      victim = *h;
    }
    return victim;
  }

  void refill_mailbox() {
    while (expected.size() < 3) {
      REQUIRE(mailbox.push(make_event(EventType::MatchTicked, 9, 0, next_seq)) !=
              PushResult::Full);
      expected.push_back(next_seq++);
    }
  }

  // One iteration: a child takes the lock, tears the data, and is killed
  // (by itself, or by us after it says it holds the lock).
  void iterate(Target target, int kind, bool self_kill) {
    const Handle victim = refill_table();
    const std::uint64_t before_total = recoveries_total();
    const std::uint64_t version = published_version;
    Pipe ready, never;
    pid_t kid = spawn([&]() -> int {
      ready.close_read();
      never.close_write();
      switch (target) {
        case Target::Table:
          pthread_mutex_lock(&players.control().lock.m);
          tear_table(players, kind % 5, victim);
          break;
        case Target::Mailbox: {
          MailboxControl& c = mailbox.control();
          pthread_mutex_lock(&c.lock.m);
          const std::uint32_t cap = c.capacity;
          if (kind % 4 == 1) {  // push: event written, tail not moved
            mailbox.ring()[c.tail % cap] =
                make_event(EventType::MatchTicked, 9, 0, 999999);
          } else if (kind % 4 == 2) {  // pop: copied out, head not moved
            Event copy[4];
            for (int i = 0; i < 2; ++i) copy[i] = mailbox.ring()[(c.head + i) % cap];
            (void)copy;
          } else if (kind % 4 == 3) {  // push complete, dies before unlock
            mailbox.ring()[c.tail % cap] =
                make_event(EventType::MatchTicked, 9, 0, next_seq);
            shared_store(c.tail, c.tail + 1);
          }
          break;
        }
        case Target::Match: {
          MatchRow& m = match_row();
          pthread_mutex_lock(&m.lock.m);
          const std::uint32_t spare = 1 - m.published;
          const std::uint64_t v = version + 1;
          if (kind % 4 == 1) {  // half-written spare buffer, no flip
            std::memset(state_buf(spare), 0xEE, 100);
            m.state_len[spare] = 100;
          } else if (kind % 4 == 2) {  // complete write and flip
            std::memcpy(state_buf(spare), &v, sizeof v);
            m.state_len[spare] = sizeof v;
            shared_store(m.published, spare);
            shared_store(m.tick, v);
          } else if (kind % 4 == 3) {  // wild write
            m.published = 77;
            m.state_len[spare] = 99999999;
          }
          break;
        }
      }
      if (self_kill) raise(SIGKILL);
      ready.put();
      never.get(30000);  // parked holding the lock until killed
      return 1;
    });
    ready.close_write();
    never.close_read();
    if (!self_kill) {
      REQUIRE(ready.get(10000));
      REQUIRE(kill(kid, SIGKILL) == 0);
    }
    require_killed(kid);

    switch (target) {
      case Target::Table: {
        if (kind % 5 != 0) REQUIRE_FALSE(raw_consistent(players));
        const std::uint64_t before = players.recoveries();
        {
          Guard g = players.lock(2000ms);
          REQUIRE(g.ok());
          REQUIRE(g.recovered());
        }
        REQUIRE(players.recoveries() == before + 1);
        REQUIRE(raw_consistent(players));
        std::string why;
        INFO(why);
        REQUIRE(players.check_consistent(&why));
        // Usable: fill to capacity, then empty it again.
        std::vector<Handle> got;
        while (auto h = players.alloc()) got.push_back(*h);
        REQUIRE(players.size() == players.capacity());
        for (Handle h : got) REQUIRE(players.release(h));
        REQUIRE(players.check_consistent(&why));
        break;
      }
      case Target::Mailbox: {
        const std::uint64_t before = mailbox.recoveries();
        {
          Guard g = mailbox.lock(2000ms);
          REQUIRE(g.ok());
          REQUIRE(g.recovered());
        }
        REQUIRE(mailbox.recoveries() == before + 1);
        if (kind % 4 == 3) expected.push_back(next_seq++);
        REQUIRE(mailbox.depth() == expected.size());
        // Pop everything, in order, then leave some for the next round.
        Event out[16];
        std::size_t n = mailbox.pop_batch(out, 16);
        REQUIRE(n == expected.size());
        for (std::size_t i = 0; i < n; ++i) {
          REQUIRE(out[i].b == expected.front());
          expected.pop_front();
        }
        refill_mailbox();
        break;
      }
      case Target::Match: {
        MatchRow& m = match_row();
        const std::uint32_t before = m.recoveries;
        {
          Guard g = lock_match(m, 2000ms);
          REQUIRE(g.ok());
          REQUIRE(g.recovered());
          REQUIRE(m.published < kStateRing);
          for (auto len : m.state_len) REQUIRE(len <= kMaxStateBytes);
          if (kind % 4 == 2) published_version = version + 1;
          if (kind % 4 != 3) {  // the published buffer is the last complete one
            std::uint64_t seen = 0;
            std::memcpy(&seen, state_buf(m.published), sizeof seen);
            REQUIRE(seen == published_version);
          } else {  // wild write: buffer reset to 0, rewrite it
            std::memcpy(state_buf(m.published), &published_version,
                        sizeof published_version);
          }
        }
        REQUIRE(m.recoveries == before + 1);
        Guard g = lock_match(m, 2000ms);  // plain lock again
        REQUIRE(g.ok());
        REQUIRE_FALSE(g.recovered());
        break;
      }
    }
    REQUIRE(recoveries_total() == before_total + 1);
  }
};

}  // namespace

TEST_CASE("robust mutex: recovery after a holder is SIGKILLed, per lock kind") {
  Watchdog dog(60);
  TestSegment seg("recover", kSmall);
  RecoveryRig rig(*seg);
  for (Target t : {Target::Table, Target::Mailbox, Target::Match}) {
    for (int kind = 0; kind < 5; ++kind) {
      INFO("target " << static_cast<int>(t) << " kind " << kind);
      rig.iterate(t, kind, kind % 2 == 0);
    }
  }
  REQUIRE(seg->players().check_consistent());
  REQUIRE_FALSE(seg->corrupt());
}

TEST_CASE("robust mutex: 200 kill-while-holding rounds, no hang") {
  Watchdog dog(120);
  TestSegment seg("loop", kSmall);
  RecoveryRig rig(*seg);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    INFO("round " << i);
    const Target t = static_cast<Target>(i % 3);
    rig.iterate(t, (i / 3) % 5, (i / 2) % 2 == 0);
  }
  const double secs = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  std::printf("200 kill-and-recover rounds in %.2f s\n", secs);
  REQUIRE(secs < 60.0);
  REQUIRE(seg->players().check_consistent());
  REQUIRE(seg->players().recoveries() >= 60);
  REQUIRE(seg->mailbox(0).recoveries() >= 60);
}

TEST_CASE("robust mutex: workers killed at random points of alloc/release") {
  Watchdog dog(120);
  TestSegment seg("chaos", Sizes{4, 64, 1, 1, 1});
  auto players = seg->players();
  int table_recoveries = 0;
  for (int round = 0; round < 20; ++round) {
    std::vector<pid_t> kids;
    for (int k = 0; k < 3; ++k) {
      kids.push_back(spawn([&]() -> int {
        std::vector<Handle> mine;
        for (std::uint64_t i = 0;; ++i) {  // until killed
          if (mine.size() < 8 && (i % 3 != 2)) {
            if (auto h = players.alloc()) mine.push_back(*h);
          } else if (!mine.empty()) {
            if (!players.release(mine.back())) return 2;
            mine.pop_back();
          }
        }
      }));
    }
    // Wait (no sleep) until they have done real work, then kill them all.
    const std::uint64_t goal = players.allocs() + 2000;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (players.allocs() < goal) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      sched_yield();
    }
    for (pid_t k : kids) kill(k, SIGKILL);
    for (pid_t k : kids) require_killed(k);
    const std::uint64_t before = players.recoveries();
    {
      Guard g = players.lock(2000ms);
      REQUIRE(g.ok());
      table_recoveries += g.recovered() ? 1 : 0;
    }
    std::string why;
    INFO(why);
    REQUIRE(players.check_consistent(&why));
    REQUIRE(players.recoveries() - before <= 1);
    // The dead processes' rows are still marked used (their cleanup is the
    // supervisor's job); free them and check the table is whole.
    std::vector<Handle> live;
    players.for_each_used([&](Handle h, PlayerRow&) { live.push_back(h); });
    for (Handle h : live) REQUIRE(players.release(h));
    REQUIRE(players.size() == 0);
    REQUIRE(players.check_consistent(&why));
  }
  std::printf("chaos: 20 rounds, %d of them killed a child inside the table "
              "lock\n",
              table_recoveries);
}
