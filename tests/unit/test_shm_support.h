// test_shm_support.h: the helpers the test_shm* unit tests of server/shm share.
//
// A watchdog (alarm() for a scope), unique segment names, a segment that
// unlinks itself, fork() with a watchdog in the child and its exit checks,
// a pipe for parent/child hand-shakes, and two layout helpers. All inline,
// in namespace shm_test; each test file is one executable that includes this
// once. Catch2 must be included first (the helpers REQUIRE).
#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shm/segment.h"

namespace shm_test {

using namespace skirmish::shm;

// ---------------------------------------------------------------- helpers

extern "C" inline void on_watchdog(int) {
  const char msg[] = "test_shm: watchdog fired (a lock or wait hung)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(124);
}

// alarm() for the scope: a hang kills the process with a message.
struct Watchdog {
  explicit Watchdog(unsigned seconds) {
    struct sigaction sa {};
    sa.sa_handler = &on_watchdog;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, nullptr);
    alarm(seconds);
  }
  ~Watchdog() { alarm(0); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
};

inline std::string unique_name(const char* tag) {
  static int counter = 0;
  return "skirmish-test-" + std::to_string(getpid()) + "-" + tag + "-" +
         std::to_string(++counter);
}

inline constexpr Sizes kSmall{2, 16, 16, 8, 8};

// Creates a segment and unlinks it at scope exit, whatever happens.
struct TestSegment {
  struct Unlinker {
    std::string name;
    ~Unlinker() { Segment::unlink_name(name); }
  };
  Unlinker unlinker;
  std::optional<Segment> seg;

  TestSegment(const char* tag, const Sizes& sizes)
      : unlinker{unique_name(tag)} {
    std::string error;
    seg = Segment::create(unlinker.name, sizes, error);
    INFO(error);
    REQUIRE(seg.has_value());
  }
  Segment& operator*() { return *seg; }
  Segment* operator->() { return &*seg; }
  const std::string& name() const { return unlinker.name; }
};

// fork(); the child runs `body` under its own watchdog and _exit()s with its
// return value (never returns into Catch2).
inline pid_t spawn(const std::function<int()>& body) {
  fflush(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    alarm(30);
    int rc = 99;
    try {
      rc = body();
    } catch (...) {
      rc = 98;
    }
    _exit(rc);
  }
  return pid;
}

inline int wait_status(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  REQUIRE(r == pid);
  return status;
}

inline void require_exit_zero(pid_t pid) {
  int status = wait_status(pid);
  INFO("status " << status);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

inline void require_killed(pid_t pid) {
  int status = wait_status(pid);
  INFO("status " << status);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
}

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { REQUIRE(pipe2(fd, O_CLOEXEC) == 0); }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (fd[0] >= 0) close(fd[0]);
    fd[0] = -1;
  }
  void close_write() {
    if (fd[1] >= 0) close(fd[1]);
    fd[1] = -1;
  }
  bool put(char c = 'x') { return write(fd[1], &c, 1) == 1; }
  // Waits up to timeout_ms; returns true when one byte arrived.
  bool get(int timeout_ms) {
    pollfd p{fd[0], POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return false;
    char c;
    return read(fd[0], &c, 1) == 1;
  }
};

// The consistency check without the lock: shows a torn state is really torn
// before recovery (check_consistent would lock and so repair first).
template <class Row>
inline bool raw_consistent(const SlotTable<Row>& t) {
  const auto& c = t.control();
  const std::uint32_t cap = c.capacity;
  if (c.free_count > cap || c.free_head >= cap) return false;
  std::uint32_t used = 0;
  for (std::uint32_t i = 0; i < cap; ++i) used += t.row_at(i).used;
  if (used != c.count || c.free_count + c.count != cap) return false;
  std::set<std::uint32_t> seen;
  for (std::uint32_t k = 0; k < c.free_count; ++k) {
    std::uint32_t slot = t.free_ring()[(c.free_head + k) % cap];
    if (slot >= cap || t.row_at(slot).used != 0 || !seen.insert(slot).second) {
      return false;
    }
  }
  return true;
}

inline std::vector<Region> regions_of(const Layout& l) {
  return {l.header,           l.processes,         l.mailbox_controls,
          l.mailbox_rings,    l.players.control,   l.players.free_ring,
          l.players.rows,     l.tickets.control,   l.tickets.free_ring,
          l.tickets.rows,     l.matches.control,   l.matches.free_ring,
          l.matches.rows};
}

}  // namespace shm_test
