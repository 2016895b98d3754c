// What the floor pair (floor_server.cpp, floor_client.cpp) shares: the
// stop signals, the monotonic clock, a periodic timerfd, CPU time from /proc, the descriptor
// limit and socket options. Header-only, Linux only, no dependency.
//
// CPU is utime + stime from /proc/PID/stat, in clock ticks (10 ms on this
// kernel), the same figure skirmish-loadtest's --server-pid and the Colyseus
// peer's bench.js read, so the three are comparable. A process's stat line
// sums all its threads; a tree is the root plus every live descendant, found
// through /proc/PID/task/TID/children.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <string>
#include <vector>

namespace skirmish::floor {

// SIGTERM and SIGINT to `handler` (it sets the caller's stop flag), SIGPIPE
// ignored: a peer that closed shows as EPIPE on the write.
inline void install_stop_handlers(void (*handler)(int)) {
  struct sigaction sa{};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

inline uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

// A non-blocking timerfd firing every period_ns, first at now + period_ns.
// Returns -1 on failure.
inline int periodic_timer(uint64_t period_ns) {
  const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return -1;
  itimerspec its{};
  its.it_interval.tv_sec = time_t(period_ns / 1'000'000'000ull);
  its.it_interval.tv_nsec = long(period_ns % 1'000'000'000ull);
  its.it_value = its.it_interval;
  if (timerfd_settime(fd, 0, &its, nullptr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// utime + stime of one process (all its threads), seconds; -1 if it is gone.
inline double pid_cpu_s(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[2048];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');  // comm may hold spaces and ')'
  if (!p) return -1;
  // After ") ": field 3 (state) ... field 14 utime, 15 stime.
  unsigned long long ut = 0, st = 0;
  int field = 3;
  for (const char* q = p + 2; *q && field <= 15; ++field) {
    char* endp = nullptr;
    const unsigned long long v = std::strtoull(q, &endp, 10);
    if (field == 14) ut = v;
    if (field == 15) st = v;
    q = std::strchr(q, ' ');
    if (!q) break;
    ++q;
  }
  static const double tck = double(sysconf(_SC_CLK_TCK));
  return double(ut + st) / tck;
}

// The children of every thread of pid (a child belongs to the thread that
// forked it).
inline std::vector<int> child_pids(int pid) {
  std::vector<int> out;
  char dir[64];
  std::snprintf(dir, sizeof dir, "/proc/%d/task", pid);
  DIR* d = opendir(dir);
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[320];
    std::snprintf(path, sizeof path, "/proc/%d/task/%s/children", pid, e->d_name);
    if (FILE* f = std::fopen(path, "r")) {
      int c = 0;
      while (std::fscanf(f, "%d", &c) == 1) out.push_back(c);
      std::fclose(f);
    }
  }
  closedir(d);
  return out;
}

// CPU seconds of root and all its live descendants; -1 if root is gone.
// Depth-bounded (16) so a /proc race cannot make it loop.
inline double tree_cpu_s(int root, int depth = 0) {
  double s = pid_cpu_s(root);
  if (s < 0) return -1;
  if (depth >= 16) return s;
  for (int c : child_pids(root)) {
    const double cs = tree_cpu_s(c, depth + 1);
    if (cs > 0) s += cs;
  }
  return s;
}

// Soft RLIMIT_NOFILE up to the hard limit; returns the soft limit now in force.
inline uint64_t raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return uint64_t(rl.rlim_cur);
}

inline void set_nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// "a.b.c.d:port" -> true with port set, only for 127.0.0.1 (the floor never
// leaves loopback).
inline bool parse_loopback_target(const std::string& s, uint16_t& port) {
  const std::string prefix = "127.0.0.1:";
  if (s.rfind(prefix, 0) != 0) return false;
  char* endp = nullptr;
  const long p = std::strtol(s.c_str() + prefix.size(), &endp, 10);
  if (!endp || *endp != 0 || p <= 0 || p > 65535) return false;
  port = uint16_t(p);
  return true;
}

}  // namespace skirmish::floor
