// A libuv loop owned by a test, run with deadlines: nothing sleeps for a
// fixed time. Header-only; tests that use the client library include it.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

namespace skirmish::test {

// A loop owned by the test. Declare it before the Clients that use it, so
// they are destroyed first; the destructor lets libuv release their sockets.
struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i) {
    }
    uv_loop_close(&loop);
  }
  uv_loop_t* get() { return &loop; }

  // Runs the loop until `cond` holds or `timeout` passes; returns `cond`.
  bool run_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    uv_timer_t wake;  // bounds each UV_RUN_ONCE so the deadline is checked
    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, [](uv_timer_t*) {}, 5, 5);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool ok = cond();
    while (!ok && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop, UV_RUN_ONCE);
      ok = cond();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);  // completes the close of `wake`
    return ok;
  }
  // Runs the loop for about `ms` milliseconds (to see that nothing happens).
  void run_for(int ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    run_until([&] { return std::chrono::steady_clock::now() >= until; }, std::chrono::milliseconds(ms + 1000));
  }
};

}  // namespace skirmish::test
