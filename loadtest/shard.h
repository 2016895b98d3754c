// A shard: one thread, one libuv loop, a share of the bots.
//
// Each bot is a real player on the client library: it connects (at the
// ramp rate), sends Hello, queues, plays every match it is given with a
// random-walk input, acknowledges snapshots (the library does), queues
// again after MatchEnd, pings now and then, and resumes by itself after a
// drop. Inputs go out either one per received snapshot (closed model, the
// default) or on a clock at Options::rate per second whatever the server
// does (open model: a slow server cannot slow the bots and hide its
// latency).
//
// Threading: everything but take(), stop() and the constructor runs on the
// shard's own thread. take() is the main thread's once-a-second hand-over,
// under `mu_`.
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loadtest/metrics.h"
#include "loadtest/options.h"

namespace skirmish::loadtest {

class Shard {
 public:
  Shard(const Options& opts, uint32_t index, uint32_t first_bot, uint32_t bots);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  void start();  // starts the thread
  void stop();   // asks it to close every bot and end; join() waits
  void join();

  // Main thread: moves the metrics gathered since the last call into `into`
  // and adds the current gauges to `g`.
  void take(Metrics& into, Gauges& g);
  std::string server_version();  // from the first Welcome, "" before it

  struct Bot;

 private:
  void run();
  void on_ramp();
  void on_clock();    // open model: inputs due in this slot
  void on_pings();
  void on_churn();    // --churn: some bots leave and join again as new players
  void on_publish();  // interval metrics -> pending, under mu_
  void close_all();

  friend struct Bot;

  Options opts_;
  uint32_t index_;
  uint32_t first_bot_;
  uint32_t n_bots_;
  std::thread thread_;
  uv_loop_t loop_;
  uv_async_t stop_async_;
  uv_timer_t ramp_timer_, clock_timer_, ping_timer_, publish_timer_, churn_timer_;
  double churn_due_ = 0;
  uint64_t churn_rng_ = 0x2545F4914F6CDD1Dull;
  std::vector<std::unique_ptr<Bot>> bots_;
  uint32_t connected_ = 0;  // bots started so far
  uint64_t start_ns_ = 0;
  uint64_t clock_slots_done_ = 0;
  uint32_t ping_slot_ = 0;
  bool stopping_ = false;

  Metrics local_;  // this thread's, since the last publish
  uint64_t last_frames_in_ = 0, last_frames_out_ = 0, last_bytes_in_ = 0, last_bytes_out_ = 0, last_wqf_ = 0;

  std::mutex mu_;  // guards pending_ and gauges_
  Metrics pending_;
  Gauges gauges_;
  std::string server_version_;
};

}  // namespace skirmish::loadtest
