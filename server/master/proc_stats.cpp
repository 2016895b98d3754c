#include "master/proc_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace skirmish::master {

namespace {

// Reads a small /proc file into `buf` (NUL-terminated); its length or -1.
ssize_t slurp(const char* path, char* buf, size_t cap) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  for (int i = 0; i < 16 && len + 1 < cap; ++i) {  // /proc files come in one or a few reads
    const ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n <= 0) break;
    len += size_t(n);
  }
  close(fd);
  buf[len] = '\0';
  return ssize_t(len);
}

// Seconds since the epoch at boot ("btime" in /proc/stat); constant while
// the machine runs, so read once.
double boot_time() {
  static const double btime = [] {
    double t = 0;
    FILE* f = std::fopen("/proc/stat", "re");
    if (f == nullptr) return t;
    char* line = nullptr;
    size_t cap = 0;
    // The intr line before it can be long: read line by line, bounded.
    for (int i = 0; i < 100000 && getline(&line, &cap, f) > 0; ++i)
      if (std::strncmp(line, "btime ", 6) == 0) {
        t = double(std::strtoull(line + 6, nullptr, 10));
        break;
      }
    std::free(line);
    std::fclose(f);
    return t;
  }();
  return btime;
}

}  // namespace

std::optional<ProcStats> read_proc_stats(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  char path[64];
  char buf[1024];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  if (slurp(path, buf, sizeof buf) <= 0) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses (a
  // process title), so fields are counted from the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') return std::nullopt;
  p += 2;  // field 3, state
  unsigned long long field[25] = {};
  for (int i = 3; i <= 24; ++i) {
    while (*p == ' ') ++p;
    if (*p == '\0') return std::nullopt;
    if (i != 3) field[i] = std::strtoull(p, nullptr, 10);  // field 3 is the state letter
    while (*p != ' ' && *p != '\0') ++p;
  }
  const double hz = double(sysconf(_SC_CLK_TCK));
  ProcStats st{};
  st.cpu_seconds = double(field[14] + field[15]) / hz;  // utime, stime
  st.rss_bytes = uint64_t(field[24]) * uint64_t(sysconf(_SC_PAGESIZE));
  st.start_time_seconds = boot_time() + double(field[22]) / hz;  // starttime

  std::snprintf(path, sizeof path, "/proc/%d/fd", int(pid));
  DIR* d = opendir(path);
  if (d == nullptr) return std::nullopt;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++st.open_fds;
  closedir(d);
  return st;
}

}  // namespace skirmish::master
