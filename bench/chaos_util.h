// chaos_util.h: skirmish-bench-chaos's small helpers (bench/README.md).
//
// The clock (uv_hrtime in ms), printf into a std::string, nearest-rank
// percentiles and maxima of a sample, a process's parent pid, and a uv
// timer that runs a closure. Header only; one libuv loop, one thread.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace bench_chaos {

inline double hr_ms() { return double(uv_hrtime()) / 1e6; }

inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// ---------------------------------------------------------------- stats helpers

template <class T>
T pct(std::vector<T> v, double p) {  // nearest rank; v by value: sorted here
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  size_t rank = size_t(std::ceil(p * double(v.size())));
  if (rank < 1) rank = 1;
  if (rank > v.size()) rank = v.size();
  return v[rank - 1];
}

template <class T>
T vmax(const std::vector<T>& v) {
  return v.empty() ? T{} : *std::max_element(v.begin(), v.end());
}

// Parent pid of `pid` from /proc/PID/stat, or -1.
inline pid_t parent_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(s.substr(close + 1));
  std::string state;
  long ppid = -1;
  rest >> state >> ppid;
  return pid_t(ppid);
}

// ---------------------------------------------------------------- a uv timer with a closure

class Timer {
 public:
  explicit Timer(uv_loop_t* loop) {
    uv_timer_init(loop, &t_);
    t_.data = this;
  }
  void start(double after_ms, double repeat_ms, std::function<void()> f) {
    f_ = std::move(f);
    uv_timer_start(&t_, [](uv_timer_t* t) { static_cast<Timer*>(t->data)->f_(); },
                   uint64_t(std::max(0.0, after_ms)), uint64_t(std::max(0.0, repeat_ms)));
  }
  void stop() { uv_timer_stop(&t_); }
  void close() {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&t_))) uv_close(reinterpret_cast<uv_handle_t*>(&t_), nullptr);
  }

 private:
  uv_timer_t t_;
  std::function<void()> f_;
};

}  // namespace bench_chaos
