#include "core/process.h"

#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace skirmish::core {

int64_t monotonic_ms() { return monotonic_us() / 1000; }

int64_t monotonic_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

namespace {
char* g_title = nullptr;   // start of argv[0]
size_t g_title_cap = 0;    // contiguous bytes of argv we may overwrite
std::vector<std::string> g_argv;
std::string g_exe;
}  // namespace

const std::vector<std::string>& original_argv() { return g_argv; }
const std::string& executable_path() { return g_exe; }

void init_process_title(int argc, char** argv) {
  if (argc < 1 || argv[0] == nullptr) return;
  g_argv.assign(argv, argv + argc);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) g_exe.assign(exe, size_t(n));
  // argv strings are laid out back to back; use them all (not environ, to
  // keep /proc/PID/environ intact).
  char* end = argv[0] + std::strlen(argv[0]);
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != end + 1) break;
    end = argv[i] + std::strlen(argv[i]);
  }
  g_title = argv[0];
  g_title_cap = size_t(end - argv[0]);
}

void set_process_title(const std::string& title) {
  // comm (top, pgrep) holds 15 bytes: "skirmish: worker 3" -> "sk-worker-3".
  std::string comm = title.rfind("skirmish: ", 0) == 0 ? "sk-" + title.substr(10) : title;
  for (char& ch : comm)
    if (ch == ' ') ch = '-';
  prctl(PR_SET_NAME, comm.substr(0, 15).c_str(), 0, 0, 0);
  if (g_title == nullptr || g_title_cap == 0) return;
  size_t n = std::min(title.size(), g_title_cap);
  std::memcpy(g_title, title.data(), n);
  std::memset(g_title + n, 0, g_title_cap - n + 1);
}

bool random_bytes(void* buf, size_t len) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= size_t(n);
  }
  return true;
}

}  // namespace skirmish::core
