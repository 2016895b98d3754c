// test_shm_segment: unit tests of the server/shm segment's life cycle.
//
// Create, header, open_existing and children sharing it; refusal while a
// live master holds it and replacement once dead (or its pid recycled);
// garbage of the same name; a 100k-player segment; process liveness.
//
// Every test case runs under an alarm() watchdog and every child process
// under its own, so a lock bug fails the run instead of hanging it. Segment
// names include the pid; every segment is unlinked at the end. The shared
// helpers are in test_shm_support.h.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "shm/segment.h"
#include "test_shm_support.h"

using namespace skirmish::shm;
using namespace shm_test;

// ---------------------------------------------------------------- segment

TEST_CASE("segment: create, header, open_existing, children share it") {
  Watchdog dog(30);
  TestSegment seg("create", kSmall);
  const Header& h = seg->header();
  REQUIRE(h.magic == kMagic);
  REQUIRE(h.layout_version == kLayoutVersion);
  REQUIRE(h.master_pid == getpid());
  REQUIRE(h.master_start_ticks == process_start_ticks(getpid()));
  REQUIRE(h.master_start_ticks != 0);
  REQUIRE(h.sizes == kSmall);
  REQUIRE(h.total_bytes == compute_layout(kSmall).total_bytes);
  REQUIRE(h.start_time_unix_ms > 1600000000000LL);
  REQUIRE(seg->state() == SegmentState::Ready);
  REQUIRE_FALSE(seg->corrupt());
  REQUIRE(seg->stale_replaced().empty());
  // Two banks of worker slots (the second for a binary upgrade).
  REQUIRE(seg->process_count() == 2 * kSmall.max_workers + 2);
  REQUIRE(seg->worker_slots() == 2 * kSmall.max_workers);
  REQUIRE(seg->process(0).role == ProcessRole::Worker);
  REQUIRE(seg->process(seg->worker_slots() - 1).role == ProcessRole::Worker);
  REQUIRE(seg->header().worker_bank == 0);
  REQUIRE(seg->process(1).index == 1);
  REQUIRE(seg->process(seg->coordinator_index()).role == ProcessRole::Coordinator);
  REQUIRE(seg->process(seg->master_index()).role == ProcessRole::Master);
  REQUIRE(seg->process(0).event_fd == -1);
  REQUIRE(seg->process(0).state == ProcessState::Down);
  REQUIRE(seg->next_player_id() == 1);
  REQUIRE(seg->next_player_id() == 2);

  // A child sees and changes the same memory through the inherited mapping.
  Segment& s = *seg;
  pid_t kid = spawn([&]() -> int {
    ProcessRow& me = s.process(0);
    shared_store(me.heartbeat_ms, std::int64_t{4242});
    shared_add(me.counters.connections_open, std::uint64_t{3});
    auto h2 = s.players().alloc([](PlayerRow& r) { r.player_id = 77; });
    if (!h2) return 2;
    if (post(s.mailbox(s.master_index()), -1,
             make_event(EventType::MatchCreated, 0, to_wire(*h2))).push !=
        PushResult::PushedWasEmpty) {
      return 3;
    }
    return 0;
  });
  require_exit_zero(kid);
  REQUIRE(shared_load(seg->process(0).heartbeat_ms) == 4242);
  REQUIRE(shared_load(seg->process(0).counters.connections_open) == 3);
  Event ev{};
  REQUIRE(seg->mailbox(seg->master_index()).pop_batch(&ev, 1) == 1);
  PlayerRow* row = seg->players().get_wire(ev.a);
  REQUIRE(row != nullptr);
  REQUIRE(row->player_id == 77);

  // open_existing maps the same segment.
  std::string error;
  auto other = Segment::open_existing(seg.name(), error);
  INFO(error);
  REQUIRE(other.has_value());
  REQUIRE(other->sizes() == kSmall);
  REQUIRE(other->bytes() == seg->bytes());
  REQUIRE(other->players().get_wire(ev.a)->player_id == 77);
  REQUIRE(shared_load(other->process(0).heartbeat_ms) == 4242);
  REQUIRE(other->players().check_consistent());

  // Move keeps the mapping alive; the moved-from object owns nothing.
  Segment moved = std::move(*other);
  REQUIRE(moved.players().get_wire(ev.a)->player_id == 77);
  REQUIRE(other->base() == nullptr);
}

TEST_CASE("segment: refused while a live master holds it, replaced once dead") {
  Watchdog dog(30);
  TestSegment seg("inuse", kSmall);
  Pipe hold;
  pid_t kid = spawn([&]() -> int {
    hold.close_write();
    char c;
    return read(hold.fd[0], &c, 1) == 0 ? 0 : 1;  // waits for EOF
  });
  hold.close_read();
  seg->header().master_pid = kid;
  seg->header().master_start_ticks = process_start_ticks(kid);
  REQUIRE(seg->header().master_start_ticks != 0);

  std::string error;
  auto second = Segment::create(seg.name(), kSmall, error);
  REQUIRE_FALSE(second.has_value());
  REQUIRE(error == "shared memory /" + seg.name() +
                       " is in use by a running server (pid " +
                       std::to_string(kid) + ")");
  std::printf("refused as expected: %s\n", error.c_str());

  // The master dies (and is reaped): the next create replaces the segment.
  hold.close_write();
  require_exit_zero(kid);
  REQUIRE_FALSE(pid_alive(kid));
  auto third = Segment::create(seg.name(), kSmall, error);
  INFO(error);
  REQUIRE(third.has_value());
  REQUIRE(third->stale_replaced() ==
          "master pid " + std::to_string(kid) + " is not running");
  REQUIRE(third->header().master_pid == getpid());
  // The old mapping is detached from the name: the new one is fresh.
  REQUIRE(third->base() != seg->base());
  auto found = Segment::open_existing(seg.name(), error);
  REQUIRE(found.has_value());
  REQUIRE(found->header().master_pid == getpid());
}

TEST_CASE("segment: a recycled master pid is not mistaken for the master") {
  Watchdog dog(30);
  TestSegment seg("reuse", kSmall);
  Pipe hold;
  pid_t kid = spawn([&]() -> int {
    hold.close_write();
    char c;
    return read(hold.fd[0], &c, 1) == 0 ? 0 : 1;
  });
  hold.close_read();
  seg->header().master_pid = kid;  // alive, but started at another time
  seg->header().master_start_ticks = process_start_ticks(kid) + 12345;
  std::string error;
  auto again = Segment::create(seg.name(), kSmall, error);
  INFO(error);
  REQUIRE(again.has_value());
  REQUIRE(again->stale_replaced() ==
          "master pid " + std::to_string(kid) + " was reused by another process");
  hold.close_write();
  require_exit_zero(kid);
}

TEST_CASE("segment: garbage of the same name is replaced, bad input refused") {
  Watchdog dog(30);
  const std::string name = unique_name("garbage");
  TestSegment::Unlinker cleanup{name};
  const std::string path = "/" + name;
  for (std::size_t bytes : {std::size_t{100}, sizeof(Header) * 2}) {
    int fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    close(fd);
    std::string error;
    REQUIRE_FALSE(Segment::open_existing(name, error).has_value());
    REQUIRE_FALSE(error.empty());
    auto seg = Segment::create(name, kSmall, error);
    INFO(error);
    REQUIRE(seg.has_value());
    REQUIRE(seg->stale_replaced() ==
            (bytes == 100 ? "too small (100 bytes) to be a Skirmish segment"
                          : "bad magic"));
    REQUIRE(seg->unlink());
  }
  std::string error;
  REQUIRE_FALSE(Segment::open_existing(name, error).has_value());
  REQUIRE(error.find("shm_open(/" + name + ")") == 0);
  REQUIRE_FALSE(Segment::create("a/b", kSmall, error).has_value());
  REQUIRE(error.find("contains '/'") != std::string::npos);
  REQUIRE_FALSE(Segment::create(name, Sizes{1, 0, 1, 1, 1}, error).has_value());
  REQUIRE(error.find("max_players") != std::string::npos);
  REQUIRE(Segment::unlink_name(name));  // already gone: fine
}

TEST_CASE("segment: 100k players fit, total printed") {
  Watchdog dog(60);
  const Sizes big{64, 100000, 100000, 25000, 4096};
  TestSegment seg("big", big);
  std::printf("created a 100k-player segment of %llu bytes (%.1f MiB)\n",
              static_cast<unsigned long long>(seg->bytes()),
              seg->bytes() / 1048576.0);
  auto players = seg->players();
  for (int i = 0; i < 1000; ++i) REQUIRE(players.alloc().has_value());
  REQUIRE(players.check_consistent());
  REQUIRE(seg->matches().capacity() == 25000);
}

// ---------------------------------------------------------------- liveness

// process_running reads /proc/<pid>/stat's flags (field 9). It once read
// field 8 (tpgid), which is -1 for a process without a controlling terminal
// (every daemon, every test run): all-bits-set looked like PF_EXITING, so
// every live worker seemed dead and a Resume took a seat still attached to
// a live session on another worker.
TEST_CASE("process_running: a live process without a terminal is running, a zombie and a reaped one are not") {
  Watchdog dog(10);
  REQUIRE(process_running(getpid()));
  int p[2];
  REQUIRE(pipe(p) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    alarm(10);
    close(p[1]);
    (void)setsid();  // no controlling terminal: tpgid -1
    char c;
    (void)!read(p[0], &c, 1);
    _exit(0);
  }
  close(p[0]);
  // setsid() has run once the child's session is its own pid.
  for (int i = 0; i < 1000 && getsid(child) != child; ++i) usleep(1000);
  REQUIRE(getsid(child) == child);
  CHECK(process_running(child));
  close(p[1]);  // the child exits: a zombie until reaped
  siginfo_t info{};
  REQUIRE(waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT) == 0);
  CHECK_FALSE(process_running(child));
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK_FALSE(process_running(child));
}
