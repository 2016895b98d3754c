// A shard: one thread, one libuv loop, a share of the bots.
//
// Each bot is a real player on the client library: it connects (at the
// ramp rate), sends Hello, queues, plays every match it is given, whatever
// the game, acknowledges snapshots (the library does), queues again after
// MatchEnd, pings now and then, and resumes by itself after a drop. The
// game is the one MatchFound names: its module (Games below) decides each
// input with its bot_input() from the bot's newest view; a game without
// bot_input gets no input at all (counted, and said in the report). Inputs
// are asked for either once per received snapshot (closed model, the
// default) or on a clock at Options::rate per second whatever the server
// does (open model: a slow server cannot slow the bots and hide its
// latency).
//
// Threading: everything but take(), stop() and the constructor runs on the
// shard's own thread. take() is the main thread's once-a-second hand-over,
// under `mu_`. Games is shared by every shard, under its own mutex, and
// only touched on a MatchFound that names a game the shard has not seen.
//
// Reading (Options::read_at_slots, rx_kernel; slot_reader.h): by default a
// bot's socket is read by libuv on readability. In the open model the bots
// read at the input phase slots instead (clock_timer_): the shard drains its
// epoll set of bot sockets, then sends the inputs due, one wake-up per slot
// for the whole thread; times of arrival then come from the kernel's RX
// timestamps, converted to uv_hrtime's clock (rx_now() in shard.cpp).
//
// Hot path (a snapshot in, an input out): no allocation and no lock: the
// view is the library's, the input is built on the stack, the module's
// table is reached through a pointer taken at MatchFound.
#pragma once

#include <uv.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "skirmish/game.h"

#include "loadtest/metrics.h"
#include "loadtest/options.h"
#include "loadtest/slot_reader.h"

namespace skirmish::loadtest {

// A game the bots were matched into, and its module as loaded here.
struct GameInfo {
  std::string name;            // MatchFound.game
  std::string server_version;  // MatchFound.game_version (first seen)
  std::string module_version;  // the loaded module's own version ("" when none loaded)
  std::string module_path;     // the file loaded
  std::string error;           // why no module is loaded ("" when one is)
  std::string note;            // e.g. a version other than the server's (played anyway)
  const skirmish_game_v1_t* table = nullptr;  // checked table, or nullptr
  bool has_bot_input() const { return table != nullptr && table->bot_input != nullptr; }
};

// The game modules of this process: each game name is loaded once, the
// first time a MatchFound names it (module::load, as the server loads a
// bundled game: $SKIRMISH_GAMES_DIR, then next to this binary's build or
// install tree), and never unloaded. Only a bare module name
// ([a-z0-9_-]{1,32}) is looked up: a server cannot make the load tester
// open a path. At most kMaxGames names; any more are refused (no module).
class Games {
 public:
  static constexpr size_t kMaxGames = 8;
  // The entry for `name` (loaded now if new); never nullptr, and stable for
  // the life of the Games.
  const GameInfo* get(std::string_view name, std::string_view server_version);
  std::vector<GameInfo> list() const;

 private:
  mutable std::mutex mu_;
  std::deque<GameInfo> games_;  // stable addresses
  GameInfo refused_;            // a name past kMaxGames
};

class Shard {
 public:
  Shard(const Options& opts, Games* games, uint32_t index, uint32_t first_bot, uint32_t bots);
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
  void sample_clock_offset();  // mono_minus_rt_ns_ from CLOCK_MONOTONIC and CLOCK_REALTIME now

  friend struct Bot;
  const GameInfo* game(std::string_view name, std::string_view server_version);

  Options opts_;
  Games* games_;
  const GameInfo* last_game_ = nullptr;  // this thread's cache of games_->get
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
  bool poll_mode_ = false;   // the bots' Clients read when told (read_at_slots or rx_kernel)
  bool use_set_ = false;     // ... through reader_ (not --slot-reads own)
  SlotReader reader_;
  int64_t mono_minus_rt_ns_ = 0;  // uv_hrtime() - CLOCK_REALTIME, ns
  bool offset_sampled_ = false;

  Metrics local_;  // this thread's, since the last publish
  uint64_t last_frames_in_ = 0, last_frames_out_ = 0, last_bytes_in_ = 0, last_bytes_out_ = 0, last_wqf_ = 0;
  uint64_t last_reads_ = 0, last_reads_multi_ = 0, last_reads_no_ts_ = 0;
  struct Snap {  // the clients' snapshot counters at the last publish
    uint64_t full = 0, delta = 0, bytes_full = 0, bytes_delta = 0, missing_base = 0, bad_delta = 0;
  };
  Snap last_snap_;

  std::mutex mu_;  // guards pending_ and gauges_
  Metrics pending_;
  Gauges gauges_;
  std::string server_version_;
};

}  // namespace skirmish::loadtest
