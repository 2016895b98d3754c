// skirmish-bench-chaos: "Survive failure" in figures (bench/README.md).
//
// Figures, not a test: it prints what survived, it never passes or fails on
// a number, and it is not registered with ctest.
//
// One run, of one game (--game: a bundled module's name or a path to a
// module; the server hosts it by config, the bots play it through its own
// bot_input, loaded here with server/module as the server loads it):
//   1. Writes a config derived from configs/loadtest.toml ([game] module =
//      --game, match_size = --match-size or 4 clamped to the module's
//      player range, max_wait_ms = 2000; [game.params]: for the arena
//      time_limit_s = --time-limit in a 20000 x 20000 arena, for any other
//      game the module's defaults; --param key=value on top) and starts the
//      real skirmish-server (fork/exec, --port 0 --admin-port 0 --workers 2
//      --shm-name bench-chaos-PID), its stdout+stderr into a pipe that the
//      loop reads for the whole run; the game port comes from its
//      "listening on 127.0.0.1:PORT" line (deadline 15 s).
//   2. --bots bots on one libuv loop in this process, each a
//      skirmish::client::Client with automatic resume, connect at --ramp per
//      second, queue on Welcome, answer every Snapshot with the module's
//      bot_input for their seat (at most one Input each; none when it has
//      nothing to send, e.g. not its turn), queue again after MatchEnd.
//   3. After --warmup s, every --kill-every s for --duration s: SIGKILL the
//      worker that owns the most Running matches (read from the live
//      shared-memory segment), recording the matches it owned.
//   4. --drain s more without kills, so matches in flight can end; then the
//      bots are destroyed, the server gets SIGTERM (SIGKILL after 10 s), is
//      reaped, and its segment is unlinked if it was left behind.
//   5. The report (see print_report).
//
// Every wait is a uv timer on the one loop; every loop is bounded by the
// bot count or by a deadline. Only processes this program started are
// signalled, by pid: the server, and workers whose parent is that server.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/lib/skirmish_client.h"
#include "module/module.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"

namespace {

using namespace skirmish;
using client::Client;

#ifndef SKIRMISH_SOURCE_DIR
#define SKIRMISH_SOURCE_DIR "."
#endif

double hr_ms() { return double(uv_hrtime()) / 1e6; }

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// ---------------------------------------------------------------- options

struct Opts {
  std::string server;
  std::string base_config = std::string(SKIRMISH_SOURCE_DIR) + "/configs/loadtest.toml";
  std::string server_log;  // optional: copy of the server's log
  int bots = 1000;
  int ramp = 500;  // bots connected per second
  double warmup_s = 10;
  double kill_every_s = 10;
  double duration_s = 60;
  double drain_s = 20;
  int workers = 2;
  int time_limit_s = 15;  // the arena's game.params.time_limit_s; for any game the longest a match may last
  double margin_s = 3;
  std::string game = "arena";           // [game] module
  int match_size = 0;                   // 0: 4, clamped to the module's range
  std::vector<std::string> params;      // --param key=value: [game.params] overrides
  // Resolved at start (resolve_game).
  const skirmish_game_v1_t* table = nullptr;
};

// Loads the module the server will host, to learn its name, player range
// and bot, and settles the match size. False with one line in `error`.
bool resolve_game(Opts& o, std::string& error) {
  auto m = module::load(o.game, module::Limits{.max_state_bytes = 1u << 20}, error);
  if (!m) return false;
  o.table = m->game;
  if (o.match_size == 0) o.match_size = std::clamp<int>(4, o.table->min_players, o.table->max_players);
  if (o.match_size < o.table->min_players || o.match_size > o.table->max_players) {
    error = fmt("--match-size %d: %s takes %u..%u players", o.match_size, o.table->name, o.table->min_players,
                o.table->max_players);
    return false;
  }
  for (const std::string& kv : o.params)
    if (kv.find('=') == std::string::npos || kv.front() == '=') {
      error = "--param " + kv + ": expected key=value";
      return false;
    }
  return true;
}

bool is_arena(const Opts& o) { return o.table != nullptr && std::string_view(o.table->name) == "arena"; }

std::string exe_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, size_t(n));
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// ---------------------------------------------------------------- config

// configs/loadtest.toml with `key = value` lines replaced (as the tests'
// GameConfig does) and the body of [game.params] rewritten for the game.
// Empty string and `error` set on failure.
std::string write_config(const Opts& o, const std::string& path, std::string& error) {
  std::ifstream in(o.base_config);
  if (!in) {
    error = "cannot read " + o.base_config;
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  // [game.params]: the arena's keys of the base config, with a short match
  // in a small field; another game's own defaults. Then --param.
  std::vector<std::pair<std::string, std::string>> params;
  if (is_arena(o)) {
    const std::regex kv("(?:^|\n)([a-z_]+) *= *([^#\n]*[^#\n ])");
    const auto at = text.find("\n[game.params]");
    const auto end = at == std::string::npos ? at : text.find("\n[", at + 1);
    const std::string body = at == std::string::npos ? "" : text.substr(at + 15, end - at - 15);
    for (std::sregex_iterator it(body.begin(), body.end(), kv), last; it != last; ++it)
      params.emplace_back((*it)[1].str(), (*it)[2].str());
    for (auto& [k, v] : params) {
      if (k == "time_limit_s") v = std::to_string(o.time_limit_s);
      if (k == "width" || k == "height") v = "20000";
    }
  }
  for (const std::string& p : o.params) {
    const auto eq = p.find('=');
    std::string k = p.substr(0, eq), v = p.substr(eq + 1);
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& e) { return e.first == k; });
    if (it != params.end())
      it->second = v;
    else
      params.emplace_back(k, v);
  }
  {
    const auto at = text.find("\n[game.params]");
    if (at == std::string::npos) {
      error = o.base_config + " has no [game.params] table";
      return {};
    }
    const auto end = text.find("\n[", at + 1);
    std::string body = "\n[game.params]\n";
    for (const auto& [k, v] : params) body += k + " = " + v + "\n";
    text = text.substr(0, at) + body + (end == std::string::npos ? "" : text.substr(end));
  }
  const std::map<std::string, std::string> overrides{
      {"module", "\"" + o.game + "\""},
      {"match_size", std::to_string(o.match_size)},
      {"max_wait_ms", "2000"},
  };
  for (const auto& [key, value] : overrides) {
    std::regex line("(^|\n)" + key + " *= *[^#\n]*");
    if (!std::regex_search(text, line)) {
      error = o.base_config + " has no line `" + key + " = ...`";
      return {};
    }
    text = std::regex_replace(text, line, "$1" + key + " = " + value + " ");
  }
  std::ofstream out(path);
  out << text;
  if (!out) {
    error = "cannot write " + path;
    return {};
  }
  return path;
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
pid_t parent_of(pid_t pid) {
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

// ---------------------------------------------------------------- bench state

struct MatchInfo {
  double found_ms = -1;  // first MatchFound seen by any bot (ms since t0)
  uint32_t seats = 0;    // players listed in MatchFound
  std::vector<uint32_t> player_ids;  // from MatchFound
  std::vector<uint32_t> ended_ids;   // bots (player ids) that got its MatchEnd
  bool ended = false;
  double ended_ms = 0;
  proto::EndReason reason = proto::EndReason::Abandoned;
  uint32_t results = 0;  // entries in the first MatchEnd
  bool adopted = false;  // owned by a worker when it was killed
  bool seen_ended_in_segment = false;  // Ended in the segment when a resumed bot looked
  // Snapshot continuity seen by bots of this match that kept their connection.
  int observers = 0;
  uint32_t max_tick_gap = 0;  // largest gap in ticks received, minus 1
  double max_pause_ms = 0;    // largest pause between consecutive snapshots
  double max_pause_at_s = 0;  // when that pause ended
  int dropped_bots = 0;       // bots of it that lost their connection during it
};

struct Bot {
  uint32_t index = 0;
  uint64_t rng = 1;  // the module's bot_input state (never 0)
  std::unique_ptr<Client> c;
  uint32_t player_id = 0;
  bool welcomed = false;   // a first Welcome
  bool closed = false;     // on_closed fired (gave up, or never got a Welcome)
  int closed_reason = 0;
  bool reconnecting = false;
  double dropped_ms = 0;   // hr ms of the drop being retried
  // Queue.
  bool queued = false;
  double queued_ms = 0;
  bool queue_acked = false;  // the QueueStatus(Searching) answering QueueJoin came
  bool probe = false;      // a QueueStatus request is outstanding
  double probe_ms = 0;
  // At the last drop.
  bool queued_at_drop = false, acked_at_drop = false;
  double queue_age_at_drop_ms = 0;
  uint32_t match_at_drop = 0;
  // The current match.
  bool in_match = false;
  uint32_t match = 0;
  uint8_t slot = 0;
  double match_found_ms = 0;
  bool dropped_in_match = false;
  uint32_t snaps = 0;
  uint32_t last_tick = 0;
  double last_snap_ms = 0;
  uint32_t max_tick_gap = 0;
  double max_pause_ms = 0;
  double max_pause_at_s = 0;
  // A resumed Welcome named no match while the bot was in `end_due`: the
  // match ended while it was away, and per PROTOCOL.md its MatchEnd must
  // follow that Welcome before anything else.
  uint32_t end_due = 0;
  double end_due_ms = 0;     // hr ms of that Welcome
  size_t end_due_seen = 0;   // index in missed_ends_
  std::string end_due_note;  // what the segment said then
};

struct Kill {
  int n = 0;
  double t_s = 0;
  uint32_t worker = 0;
  pid_t pid = 0;
  int running_total = 0;
  std::vector<uint32_t> owned;  // wire ids of its Running matches
  int bots_on_it = 0;           // bots whose connection it served
  bool sent = false;
  std::string note;
};

class Bench {
 public:
  explicit Bench(Opts o) : o_(std::move(o)) {}
  int run(const std::string& command_line);

 private:
  // Server process.
  bool spawn_server(const std::string& config_path);
  void on_log_data(const char* data, size_t n);
  void on_log_line(const std::string& line);
  // Phases.
  void start_bots();
  void ramp_tick();
  void warmup_done();
  void kill_tick();
  void kills_done();
  void finish();  // the end sequence (idempotent)
  void poll_server();
  void close_all_handles();
  // Bots.
  void make_bot(uint32_t i);
  void on_welcome(Bot& b, const proto::Welcome& w);
  void on_match_found(Bot& b, const proto::MatchFound& m);
  void on_snapshot(Bot& b, const client::World& w);
  void on_match_end(Bot& b, const proto::MatchEnd& m);
  void on_queue_status(Bot& b, const proto::QueueStatus& s);
  void leave_match(Bot& b);
  void queue(Bot& b);
  void probe_queue(Bot& b);
  void steer(Bot& b, const client::World& w);
  void sweep();
  MatchInfo& match_info(uint32_t id);
  double t_s() const { return (hr_ms() - t0_ms_) / 1000.0; }
  void print_report();

  Opts o_;
  uv_loop_t loop_{};
  std::string shm_name_;
  std::string config_path_;
  pid_t server_pid_ = -1;
  int server_status_ = -1;
  bool server_reaped_ = false;
  bool server_sigkilled_ = false;
  double term_sent_ms_ = 0;
  uint16_t port_ = 0;
  bool startup_failed_ = false;
  std::string startup_error_;
  // Server log.
  uv_pipe_t log_pipe_{};
  bool log_open_ = false;
  bool log_eof_ = false;
  std::string log_partial_;
  std::deque<std::string> log_tail_;  // last lines, for a failed start
  std::vector<std::string> log_notable_;  // first warn/error/critical lines
  uint64_t log_lines_ = 0, log_warn_ = 0, log_error_ = 0, log_critical_ = 0;
  uint64_t log_adopted_ = 0, log_heartbeat_ = 0, log_ticks_skipped_ = 0;
  std::unique_ptr<std::ofstream> log_copy_;
  // Timers.
  std::unique_ptr<Timer> start_deadline_, ramp_, warmup_, kill_, kills_end_, end_, sweep_, lag_, poll_, hard_stop_;
  std::optional<shm::Segment> seg_;
  // Phase and time.
  double t0_ms_ = 0;  // bots start (hr ms)
  bool finishing_ = false;
  bool killing_ = false;
  double kills_end_s_ = 0, end_s_ = 0;
  // Bots and what they saw.
  std::vector<std::unique_ptr<Bot>> bots_;
  uint32_t connected_ = 0;  // connect() calls made
  uint32_t connect_errors_ = 0;
  std::unordered_map<uint32_t, MatchInfo> matches_;
  std::vector<Kill> kills_;
  std::vector<double> resume_ms_;
  uint64_t drops_ = 0, drops_in_match_ = 0, reseated_ = 0, stray_snapshots_ = 0, match_end_unknown_ = 0;
  uint64_t snapshots_ = 0, inputs_sent_ = 0, inputs_refused_ = 0, bot_idle_ = 0;
  uint64_t queue_probes_ = 0, tickets_lost_ = 0, tickets_lost_acked_ = 0, stuck_in_match_ = 0, missed_match_end_on_resume_ = 0;
  uint64_t ended_at_resume_ = 0, end_after_resume_ = 0;
  void end_overdue(Bot& b, const char* why);
  std::array<uint64_t, client::kErrorCodeCount> errors_{};
  uint64_t errors_unknown_ = 0;
  std::map<int, std::string> error_text_;  // first text per code
  // Anomalies, for the report: what, when, who (bounded).
  std::vector<std::string> anomalies_;
  uint64_t anomalies_total_ = 0;
  void anomaly(const std::string& what) {
    ++anomalies_total_;
    if (anomalies_.size() < 24) anomalies_.push_back(fmt("t=%6.2f s ", t_s()) + what);
  }
  // A resumed Welcome that named no match while the bot was in one; what
  // the segment says about that match at that moment.
  // "Drop" starts at the last kill (the bot notices it a little later).
  enum class EndSeen { EndedBeforeDrop, EndedDuringDrop, StillRunning, RowGone, NoSegment };
  double last_kill_hr_ms_ = 0;
  struct MissedEnd {
    uint32_t match;
    double resume_s;
    double drop_s;
    EndSeen kind;
    double ended_before_resume_ms;  // server's ended_at_ms vs the resume (both CLOCK_MONOTONIC)
    bool end_followed = false;      // its MatchEnd came right after the Welcome
  };
  std::vector<MissedEnd> missed_ends_;
  int in_match_at_warmup_ = -1, welcomed_at_warmup_ = -1;
  // Loop lag: lateness of a 50 ms timer.
  double lag_expect_ms_ = 0;
  std::vector<double> lag_ms_;
  double lag_max_ = 0, lag_max_at_s_ = 0;
  // Totals taken from the clients before they are destroyed.
  uint64_t give_ups_ = 0, resumes_ = 0, reconnect_attempts_ = 0, missing_base_ = 0, write_queue_full_ = 0;
  uint64_t bad_delta_ = 0, snaps_full_ = 0, snaps_delta_ = 0, snap_bytes_full_ = 0, snap_bytes_delta_ = 0;
  std::unordered_set<uint32_t> gave_up_ids_;
  std::map<int, int> closed_reasons_;
  int bots_in_match_end_ = 0, bots_queued_end_ = 0, bots_reconnecting_end_ = 0, bots_closed_end_ = 0;
  double cpu_self_s_ = 0;
  double run_wall_s_ = 0;
  bool segment_left_ = false;
};

// ---------------------------------------------------------------- server

bool Bench::spawn_server(const std::string& config_path) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    startup_error_ = std::string("pipe: ") + strerror(errno);
    return false;
  }
  std::vector<std::string> args{o_.server,    "--config",     config_path, "--port",     "0",
                                "--admin-port", "0",          "--workers", std::to_string(o_.workers),
                                "--shm-name",  shm_name_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    startup_error_ = std::string("fork: ") + strerror(errno);
    return false;
  }
  if (pid == 0) {
    // Dies (drains) with this program if it dies first.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    signal(SIGPIPE, SIG_DFL);
    dup2(p[1], 1);
    dup2(p[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  server_pid_ = pid;
  uv_pipe_init(&loop_, &log_pipe_, 0);
  log_pipe_.data = this;
  uv_pipe_open(&log_pipe_, p[0]);
  log_open_ = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&log_pipe_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char block[65536];
        *buf = uv_buf_init(block, sizeof block);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<Bench*>(s->data);
        if (n > 0) self->on_log_data(buf->base, size_t(n));
        if (n < 0) {
          self->log_eof_ = true;
          uv_read_stop(s);
          if (!self->log_partial_.empty()) self->on_log_line(self->log_partial_);
          self->log_partial_.clear();
          if (self->port_ == 0 && !self->startup_failed_) {
            self->startup_failed_ = true;
            self->startup_error_ = "the server closed its log before listening (it exited?)";
            self->finish();
          }
        }
      });
  return true;
}

void Bench::on_log_data(const char* data, size_t n) {
  if (log_copy_) log_copy_->write(data, std::streamsize(n));
  size_t start = 0;
  for (size_t i = 0; i < n; ++i) {
    if (data[i] != '\n') continue;
    log_partial_.append(data + start, i - start);
    on_log_line(log_partial_);
    log_partial_.clear();
    start = i + 1;
  }
  log_partial_.append(data + start, n - start);
  if (log_partial_.size() > 65536) {  // a line without end: take it as is
    on_log_line(log_partial_);
    log_partial_.clear();
  }
}

void Bench::on_log_line(const std::string& line) {
  ++log_lines_;
  log_tail_.push_back(line.substr(0, 300));
  if (log_tail_.size() > 30) log_tail_.pop_front();
  bool notable = false;
  if (line.find("] warning: ") != std::string::npos || line.find("] warn: ") != std::string::npos) {
    ++log_warn_;
    notable = true;
  } else if (line.find("] error: ") != std::string::npos) {
    ++log_error_;
    notable = true;
  } else if (line.find("] critical: ") != std::string::npos) {
    ++log_critical_;
    notable = true;
  }
  if (notable && log_notable_.size() < 16) log_notable_.push_back(line.substr(0, 240));
  if (line.find("adopted by worker") != std::string::npos) ++log_adopted_;
  if (line.find("missed its heartbeat") != std::string::npos) ++log_heartbeat_;
  if (line.find("passes behind: skipped") != std::string::npos) ++log_ticks_skipped_;
  if (port_ == 0 && !startup_failed_) {
    static const std::string needle = "] info: listening on 127.0.0.1:";
    auto at = line.find(needle);
    if (at != std::string::npos) {
      const long p = std::strtol(line.c_str() + at + needle.size(), nullptr, 10);
      if (p > 0 && p < 65536) {
        port_ = uint16_t(p);
        start_deadline_->stop();
        start_bots();
      }
    }
  }
}

// ---------------------------------------------------------------- phases

void Bench::start_bots() {
  t0_ms_ = hr_ms();
  kills_end_s_ = o_.warmup_s + o_.duration_s;
  end_s_ = kills_end_s_ + o_.drain_s;
  std::printf("server: pid %d, game port %u, shm /%s, %d workers; %d bots at %d/s from t=0\n", int(server_pid_),
              unsigned(port_), shm_name_.c_str(), o_.workers, o_.bots, o_.ramp);
  std::printf("schedule: warm-up to t=%.1f s, a kill every %.1f s until t=%.1f s, drain to t=%.1f s\n", o_.warmup_s,
              o_.kill_every_s, kills_end_s_, end_s_);
  std::fflush(stdout);
  std::string seg_error;
  seg_ = shm::Segment::open_existing(shm_name_, seg_error);  // else retried at the first kill
  bots_.reserve(size_t(o_.bots));
  for (int i = 0; i < o_.bots; ++i) make_bot(uint32_t(i));
  ramp_->start(0, 10, [this] { ramp_tick(); });
  sweep_->start(1000, 1000, [this] { sweep(); });
  lag_expect_ms_ = hr_ms() + 50;
  lag_->start(50, 50, [this] {
    const double now = hr_ms();
    const double lag = std::max(0.0, now - lag_expect_ms_);
    lag_ms_.push_back(lag);
    if (lag > lag_max_) {
      lag_max_ = lag;
      lag_max_at_s_ = t_s();
    }
    lag_expect_ms_ = now + 50;
  });
  warmup_->start(o_.warmup_s * 1000, 0, [this] { warmup_done(); });
  end_->start(end_s_ * 1000, 0, [this] { finish(); });
}

void Bench::ramp_tick() {
  const double elapsed_s = (hr_ms() - t0_ms_) / 1000.0;
  const uint32_t want = uint32_t(std::min<double>(o_.bots, std::floor(elapsed_s * o_.ramp) + 1));
  for (; connected_ < want && connected_ < bots_.size(); ++connected_) {
    Bot& b = *bots_[connected_];
    int r = b.c->connect("127.0.0.1", port_);
    if (r != 0) {
      ++connect_errors_;
      b.closed = true;
      b.closed_reason = r;
    }
  }
  if (connected_ >= bots_.size()) ramp_->stop();
}

void Bench::warmup_done() {
  in_match_at_warmup_ = 0;
  welcomed_at_warmup_ = 0;
  for (auto& b : bots_) {
    if (b->welcomed) ++welcomed_at_warmup_;
    if (b->in_match) ++in_match_at_warmup_;
  }
  std::printf("t=%5.1f s warm-up over: %d of %d bots welcomed, %d in a match\n", t_s(), welcomed_at_warmup_, o_.bots,
              in_match_at_warmup_);
  std::fflush(stdout);
  if (o_.duration_s > 0) {
    killing_ = true;
    kill_->start(0, o_.kill_every_s * 1000, [this] { kill_tick(); });
  }
  kills_end_->start(o_.duration_s * 1000, 0, [this] { kills_done(); });
}

void Bench::kill_tick() {
  if (!killing_) return;
  if (double(kills_.size()) * o_.kill_every_s >= o_.duration_s - 1e-9) {
    kill_->stop();
    return;
  }
  Kill k;
  k.n = int(kills_.size()) + 1;
  k.t_s = t_s();
  std::string error;
  if (!seg_) seg_ = shm::Segment::open_existing(shm_name_, error);
  if (!seg_) {
    k.note = "cannot open the segment: " + error;
  } else {
    std::map<uint32_t, std::vector<uint32_t>> owned;
    seg_->matches().for_each_used([&](shm::Handle h, shm::MatchRow& row) {
      if (shm::shared_load(row.state) == shm::MatchState::Running) {
        owned[shm::shared_load(row.owner_worker)].push_back(shm::to_wire(h));
        ++k.running_total;
      }
    });
    size_t most = 0;
    bool any = false;
    for (auto& [w, ids] : owned)
      if (w < seg_->process_count() && ids.size() > most) {
        most = ids.size();
        k.worker = w;
        any = true;
      }
    if (!any) {
      k.note = "no Running match: nothing killed";
    } else {
      k.owned = owned[k.worker];
      k.pid = shm::shared_load(seg_->process(k.worker).pid);
      if (k.pid <= 0) {
        k.note = "its process row has no pid (down): nothing killed";
      } else if (parent_of(k.pid) != server_pid_) {
        k.note = "pid " + std::to_string(k.pid) + " is not a child of the server: not killed";
      } else {
        const double at = hr_ms();
        if (::kill(k.pid, SIGKILL) != 0) {
          k.note = std::string("kill: ") + strerror(errno);
        } else {
          k.sent = true;
          last_kill_hr_ms_ = at;
        }
      }
    }
  }
  if (k.sent) {
    for (auto& b : bots_)
      if (b->welcomed && !b->closed && !b->reconnecting && b->c->worker_index() == k.worker) ++k.bots_on_it;
    for (uint32_t id : k.owned) match_info(id).adopted = true;
    std::printf("t=%5.1f s kill %d: SIGKILL worker %u (pid %d): it owned %zu of %d Running matches, served %d bots\n",
                k.t_s, k.n, k.worker, int(k.pid), k.owned.size(), k.running_total, k.bots_on_it);
  } else {
    std::printf("t=%5.1f s kill %d: %s\n", k.t_s, k.n, k.note.c_str());
  }
  std::fflush(stdout);
  kills_.push_back(std::move(k));
}

void Bench::kills_done() {
  killing_ = false;
  kill_->stop();
  std::printf("t=%5.1f s kills over (%zu); draining until t=%.1f s\n", t_s(), kills_.size(), end_s_);
  std::fflush(stdout);
}

void Bench::finish() {
  if (finishing_) return;
  finishing_ = true;
  killing_ = false;
  for (Timer* t : {start_deadline_.get(), ramp_.get(), warmup_.get(), kill_.get(), kills_end_.get(), end_.get(),
                   sweep_.get(), lag_.get()})
    t->stop();
  run_wall_s_ = t0_ms_ > 0 ? t_s() : 0;
  // Counted matches without a MatchEnd: what the segment says of each, while
  // the server still runs (a match slowed past the margin, or stuck).
  const double cutoff_s = end_s_ - o_.time_limit_s - o_.margin_s;
  for (auto& [id, mi] : matches_) {
    if (mi.found_ms < 0 || mi.found_ms > cutoff_s || mi.ended) continue;
    std::string seen = "segment not open";
    if (seg_) {
      const shm::MatchRow* row = seg_->matches().get_wire(id);
      if (row == nullptr) {
        seen = "its row is gone";
      } else {
        const auto st = shm::shared_load(row->state);
        seen = fmt("its row is %s at tick %llu of %d, owner worker %u, adopted %u times, last ticked %lld ms ago",
                   st == shm::MatchState::Running ? "Running" : st == shm::MatchState::Ended ? "Ended" : "Forming",
                   (unsigned long long)shm::shared_load(row->tick), o_.time_limit_s * 30,
                   shm::shared_load(row->owner_worker), row->adoptions,
                   (long long)(hr_ms() - double(row->last_tick_ms)));
      }
    }
    anomaly(fmt("match %#x found at t=%.2f s (%s) has no MatchEnd at the end: %s", id, mi.found_ms,
                mi.adopted ? "adopted" : "never adopted", seen.c_str()));
  }
  // What the bots hold now, then the bots themselves.
  for (auto& bp : bots_) {
    Bot& b = *bp;
    const client::Stats& s = b.c->stats();
    give_ups_ += s.reconnect_give_ups;
    resumes_ += s.resumes;
    reconnect_attempts_ += s.reconnect_attempts;
    missing_base_ += s.snapshots_missing_base;
    bad_delta_ += s.snapshots_bad_delta;
    snaps_full_ += s.snapshots_full;
    snaps_delta_ += s.snapshots_delta;
    snap_bytes_full_ += s.snapshot_bytes_full;
    snap_bytes_delta_ += s.snapshot_bytes_delta;
    write_queue_full_ += s.write_queue_full;
    if (s.reconnect_give_ups > 0) gave_up_ids_.insert(b.player_id);
    if (b.closed) {
      ++bots_closed_end_;
      ++closed_reasons_[b.closed_reason];
    } else if (b.reconnecting) {
      ++bots_reconnecting_end_;
    } else if (b.in_match) {
      ++bots_in_match_end_;
    } else if (b.queued) {
      ++bots_queued_end_;
    }
    if (b.in_match) leave_match(b);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  cpu_self_s_ = double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) / 1e6 + double(ru.ru_stime.tv_sec) +
                double(ru.ru_stime.tv_usec) / 1e6;
  bots_.clear();  // sockets closed by libuv on the next loop turn
  seg_.reset();
  if (server_pid_ > 0) {
    ::kill(server_pid_, SIGTERM);
    term_sent_ms_ = hr_ms();
    poll_->start(20, 20, [this] { poll_server(); });
  } else {
    close_all_handles();
  }
}

void Bench::poll_server() {
  if (!server_reaped_) {
    int st = 0;
    pid_t r = waitpid(server_pid_, &st, WNOHANG);
    if (r == server_pid_) {
      server_reaped_ = true;
      server_status_ = st;
    }
  }
  const double waited = hr_ms() - term_sent_ms_;
  if (!server_reaped_ && !server_sigkilled_ && waited > 10000) {
    ::kill(server_pid_, SIGKILL);
    server_sigkilled_ = true;
  }
  // Done when reaped and its log is read to the end (its children write to
  // the same pipe: EOF means every one of them is gone), or past 20 s.
  if ((server_reaped_ && (log_eof_ || waited > 12000)) || waited > 20000) close_all_handles();
}

void Bench::close_all_handles() {
  for (Timer* t : {start_deadline_.get(), ramp_.get(), warmup_.get(), kill_.get(), kills_end_.get(), end_.get(),
                   sweep_.get(), lag_.get(), poll_.get(), hard_stop_.get()})
    t->close();
  if (log_open_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&log_pipe_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&log_pipe_), nullptr);
  }
}

// ---------------------------------------------------------------- bots

MatchInfo& Bench::match_info(uint32_t id) { return matches_[id]; }

void Bench::make_bot(uint32_t i) {
  auto bp = std::make_unique<Bot>();
  Bot* b = bp.get();
  b->index = i;
  b->rng = 0x9E3779B97F4A7C15ull * (uint64_t(i) + 1) | 1;
  client::Options opt;
  opt.name = "chaos" + std::to_string(i);
  opt.reconnect.enabled = true;
  b->c = std::make_unique<Client>(&loop_, opt);
  auto& cb = b->c->callbacks();
  cb.on_welcome = [this, b](const proto::Welcome& w) { on_welcome(*b, w); };
  cb.on_match_found = [this, b](const proto::MatchFound& m) { on_match_found(*b, m); };
  cb.on_snapshot = [this, b](const client::World& w) { on_snapshot(*b, w); };
  cb.on_match_end = [this, b](const proto::MatchEnd& m) { on_match_end(*b, m); };
  cb.on_queue_status = [this, b](const proto::QueueStatus& s) { on_queue_status(*b, s); };
  cb.on_reconnecting = [this, b](uint32_t attempt, uint32_t, int) {
    if (attempt != 1) return;
    ++drops_;
    b->reconnecting = true;
    b->dropped_ms = hr_ms();
    b->probe = false;
    b->queued_at_drop = b->queued && !b->in_match;
    b->acked_at_drop = b->queue_acked;
    b->queue_age_at_drop_ms = b->queued ? b->dropped_ms - b->queued_ms : 0;
    b->match_at_drop = b->in_match ? b->match : 0;
    if (b->in_match) {
      ++drops_in_match_;
      if (!b->dropped_in_match) ++match_info(b->match).dropped_bots;
      b->dropped_in_match = true;
    }
  };
  cb.on_error = [this](proto::ErrorCode code, std::string_view text, bool) {
    const size_t ci = size_t(code);
    if (ci < errors_.size()) {
      ++errors_[ci];
      if (!error_text_.count(int(ci))) error_text_[int(ci)] = std::string(text.substr(0, 120));
    } else {
      ++errors_unknown_;
    }
  };
  cb.on_closed = [b](int reason) {
    b->closed = true;
    b->closed_reason = reason;
    b->reconnecting = false;
  };
  bots_.push_back(std::move(bp));
}

void Bench::queue(Bot& b) {
  if (finishing_) return;
  b.probe = false;  // a QueueJoin supersedes an open question: its answer is stale
  if (b.c->queue_join() == 0) {
    b.queued = true;
    b.queue_acked = false;
    b.queued_ms = hr_ms();
  }
}

void Bench::probe_queue(Bot& b) {
  if (b.c->queue_status() == 0) {
    b.probe = true;
    b.probe_ms = hr_ms();
  }
}

void Bench::on_welcome(Bot& b, const proto::Welcome& w) {
  if (!w.resumed()) {
    b.welcomed = true;
    b.player_id = w.player_id();
    queue(b);
    return;
  }
  const double drop_s = (b.dropped_ms - t0_ms_) / 1000.0;
  if (b.reconnecting) resume_ms_.push_back(hr_ms() - b.dropped_ms);
  b.reconnecting = false;
  if (b.end_due != 0) b.end_due_ms = hr_ms();  // dropped again before it came: due after this Welcome
  if (b.in_match && w.match_id() != b.match) {
    // The match ended while the bot was away: its MatchEnd must follow this
    // Welcome (judged when the next message, or none within 2 s, comes).
    ++ended_at_resume_;
    MissedEnd me{b.match, t_s(), drop_s, EndSeen::NoSegment, 0};
    std::string seen = "segment not open";
    if (seg_) {
      const shm::MatchRow* row = seg_->matches().get_wire(b.match);
      if (row == nullptr) {
        me.kind = EndSeen::RowGone;
        seen = "its row is gone";
      } else if (shm::shared_load(row->state) != shm::MatchState::Ended) {
        me.kind = EndSeen::StillRunning;
        seen = fmt("its row is still %s at tick %llu",
                   shm::shared_load(row->state) == shm::MatchState::Running ? "Running" : "Forming",
                   (unsigned long long)shm::shared_load(row->tick));
      } else {
        const double ended = double(shm::shared_load(row->ended_at_ms));
        me.ended_before_resume_ms = hr_ms() - ended;
        const double drop_start = std::min(b.dropped_ms, last_kill_hr_ms_ > 0 ? last_kill_hr_ms_ : b.dropped_ms);
        me.kind = ended < drop_start ? EndSeen::EndedBeforeDrop : EndSeen::EndedDuringDrop;
        match_info(b.match).seen_ended_in_segment = true;
        seen = fmt("the server ended it %.0f ms before the resume, %.0f ms %s the kill", me.ended_before_resume_ms,
                   std::abs(ended - drop_start), me.kind == EndSeen::EndedBeforeDrop ? "BEFORE" : "after");
      }
    }
    missed_ends_.push_back(me);
    b.end_due = b.match;
    b.end_due_ms = hr_ms();
    b.end_due_seen = missed_ends_.size() - 1;
    b.end_due_note = fmt("player %u dropped at t=%.2f s in match %#x; resumed Welcome names match %#x: %s",
                         b.player_id, drop_s, b.match, w.match_id(), seen.c_str());
    leave_match(b);
  }
  // In a match: MatchFound follows. Otherwise it may still hold a ticket
  // (the ticket waits out the grace) or be between matches: ask.
  if (w.match_id() == 0) probe_queue(b);
}

void Bench::end_overdue(Bot& b, const char* why) {
  ++missed_match_end_on_resume_;
  anomaly(b.end_due_note + "; no MatchEnd followed (" + why + ")");
  b.end_due = 0;
}

void Bench::on_match_found(Bot& b, const proto::MatchFound& m) {
  if (b.end_due != 0) end_overdue(b, "a MatchFound came first");
  const uint32_t id = m.match_id();
  if (b.in_match && id == b.match) {
    ++reseated_;  // resumed into the same match: not a new one
    b.slot = m.your_slot();
    return;
  }
  if (b.in_match) leave_match(b);  // a new match before the old one's MatchEnd
  b.queued = false;
  b.probe = false;
  b.in_match = true;
  b.match = id;
  b.slot = m.your_slot();
  b.match_found_ms = hr_ms();
  b.dropped_in_match = false;
  b.snaps = 0;
  b.last_tick = 0;
  b.last_snap_ms = 0;
  b.max_tick_gap = 0;
  b.max_pause_ms = 0;
  b.max_pause_at_s = 0;
  MatchInfo& mi = match_info(id);
  if (mi.found_ms < 0) {
    mi.found_ms = t_s();
    if (const auto* ps = m.players()) {
      mi.seats = ps->size();
      for (const auto* p : *ps) mi.player_ids.push_back(p->player_id());
    }
  }
}

void Bench::on_snapshot(Bot& b, const client::World& w) {
  ++snapshots_;
  if (b.end_due != 0) end_overdue(b, "a Snapshot came first");
  if (!b.in_match || w.match_id != b.match) {
    ++stray_snapshots_;
    return;
  }
  const double now = hr_ms();
  if (b.snaps > 0) {
    if (w.tick > b.last_tick + 1) b.max_tick_gap = std::max(b.max_tick_gap, w.tick - b.last_tick - 1);
    if (now - b.last_snap_ms > b.max_pause_ms) {
      b.max_pause_ms = now - b.last_snap_ms;
      b.max_pause_at_s = (now - t0_ms_) / 1000.0;
    }
  }
  ++b.snaps;
  b.last_tick = w.tick;
  b.last_snap_ms = now;
  steer(b, w);
}

// Folds the bot's view of its current match into the match.
void Bench::leave_match(Bot& b) {
  if (!b.in_match) return;
  MatchInfo& mi = match_info(b.match);
  if (!b.dropped_in_match && b.snaps >= 2) {
    ++mi.observers;
    mi.max_tick_gap = std::max(mi.max_tick_gap, b.max_tick_gap);
    if (b.max_pause_ms > mi.max_pause_ms) {
      mi.max_pause_ms = b.max_pause_ms;
      mi.max_pause_at_s = b.max_pause_at_s;
    }
  }
  b.in_match = false;
}

void Bench::on_match_end(Bot& b, const proto::MatchEnd& m) {
  const uint32_t id = m.match_id();
  auto it = matches_.find(id);
  if (it == matches_.end()) ++match_end_unknown_;
  MatchInfo& mi = match_info(id);
  if (!mi.ended) {
    mi.ended = true;
    mi.ended_ms = t_s();
    mi.reason = m.reason();
    mi.results = m.results() ? m.results()->size() : 0;
  }
  if (std::find(mi.ended_ids.begin(), mi.ended_ids.end(), b.player_id) == mi.ended_ids.end())
    mi.ended_ids.push_back(b.player_id);
  if (b.end_due == id) {
    ++end_after_resume_;
    missed_ends_[b.end_due_seen].end_followed = true;
    b.end_due = 0;
  }
  if (b.in_match && b.match == id) leave_match(b);
  queue(b);
}

void Bench::on_queue_status(Bot& b, const proto::QueueStatus& s) {
  if (b.end_due != 0) end_overdue(b, "a QueueStatus came first");
  if (!b.probe) {  // the unasked one after QueueJoin
    if (b.queued && s.state() == proto::QueueState::Searching) b.queue_acked = true;
    return;
  }
  b.probe = false;
  if (s.state() == proto::QueueState::Idle && !b.in_match) {
    if (b.queued) {  // it had queued and holds no ticket now
      ++tickets_lost_;
      if (b.acked_at_drop) ++tickets_lost_acked_;
      // A QueueJoin the server never acknowledged died with the killed
      // worker unread (one it had read would have left a ticket row that
      // survives the kill and answers Searching): the client queues again,
      // as PROTOCOL.md says. Only an acknowledged ticket lost is a fault.
      if (b.acked_at_drop)
        anomaly(fmt("player %u: queue probe says Idle although it queued %.0f ms before its last drop (QueueJoin %s); "
                  "queued at drop %d, match at drop %#x",
                  b.player_id, b.queue_age_at_drop_ms, b.acked_at_drop ? "acknowledged" : "not acknowledged",
                  int(b.queued_at_drop), b.match_at_drop));
    }
    queue(b);
  } else if (s.state() == proto::QueueState::Searching) {
    b.queued = true;
    b.queued_ms = hr_ms();  // still waiting: give it another round
  }
}

// The module's own bot decides (the arena's steers to the nearest coin and
// tags whoever is close; battleship's fires on its turn only).
void Bench::steer(Bot& b, const client::World& w) {
  const skirmish_game_v1_t* t = o_.table;
  if (t == nullptr || t->bot_input == nullptr) return;
  uint8_t in[SKIRMISH_MAX_INPUT_BYTES];
  const uint32_t cap = b.c->max_input_bytes() > 0 ? std::min<uint32_t>(sizeof in, b.c->max_input_bytes()) : sizeof in;
  const uint32_t n = t->bot_input(w.data(), w.size(), b.slot, &b.rng, in, cap);
  if (b.rng == 0) b.rng = 1;
  if (n == 0 || n > cap) {
    ++bot_idle_;
    return;
  }
  if (b.c->send_input(in, n) == 0)
    ++inputs_sent_;
  else
    ++inputs_refused_;
}

// Once a second: bots that wait far longer than matchmaking allows ask
// for their queue state (a ticket lost in a kill shows as Idle), and bots
// seated in a match that sends nothing for 5 s are counted as stuck.
void Bench::sweep() {
  const double now = hr_ms();
  const double queue_patience_ms = 2000 /* max_wait_ms */ + 8000;
  for (auto& bp : bots_) {
    Bot& b = *bp;
    if (b.closed || b.reconnecting || b.c->state() != client::State::Ready) continue;
    if (b.end_due != 0 && now - b.end_due_ms > 2000) end_overdue(b, "none within 2 s");
    if (b.probe) {
      if (now - b.probe_ms > 5000) b.probe = false;  // unanswered: ask again later
      continue;
    }
    if (b.in_match) {
      const double since = b.snaps > 0 ? b.last_snap_ms : b.match_found_ms;
      if (now - since > 5000) {
        ++stuck_in_match_;
        anomaly(fmt("player %u: seated in match %#x, no snapshot for %.0f ms", b.player_id, b.match, now - since));
        leave_match(b);
        b.queued = false;
        ++queue_probes_;
        probe_queue(b);
      }
    } else if (b.queued && now - b.queued_ms > queue_patience_ms) {
      ++queue_probes_;
      probe_queue(b);
    }
  }
}

// ---------------------------------------------------------------- run

int Bench::run(const std::string& command_line) {
  std::printf("command: %s\n", command_line.c_str());
  std::fflush(stdout);
  if (access(o_.server.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "bench-chaos: server binary %s: %s\n", o_.server.c_str(), strerror(errno));
    return 1;
  }
  // Room for every bot's socket.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rlim_t(o_.bots) + 256) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, rlim_t(o_.bots) + 1024);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  shm_name_ = "bench-chaos-" + std::to_string(getpid());
  std::string error;
  config_path_ = write_config(o_, "/tmp/bench-chaos-" + std::to_string(getpid()) + ".toml", error);
  if (config_path_.empty()) {
    std::fprintf(stderr, "bench-chaos: %s\n", error.c_str());
    return 1;
  }
  if (!o_.server_log.empty()) log_copy_ = std::make_unique<std::ofstream>(o_.server_log);

  uv_loop_init(&loop_);
  start_deadline_ = std::make_unique<Timer>(&loop_);
  ramp_ = std::make_unique<Timer>(&loop_);
  warmup_ = std::make_unique<Timer>(&loop_);
  kill_ = std::make_unique<Timer>(&loop_);
  kills_end_ = std::make_unique<Timer>(&loop_);
  end_ = std::make_unique<Timer>(&loop_);
  sweep_ = std::make_unique<Timer>(&loop_);
  lag_ = std::make_unique<Timer>(&loop_);
  poll_ = std::make_unique<Timer>(&loop_);
  hard_stop_ = std::make_unique<Timer>(&loop_);

  if (!spawn_server(config_path_)) {
    std::fprintf(stderr, "bench-chaos: %s\n", startup_error_.c_str());
    close_all_handles();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    unlink(config_path_.c_str());
    return 1;
  }
  start_deadline_->start(15000, 0, [this] {
    startup_failed_ = true;
    startup_error_ = "no `listening on 127.0.0.1:PORT` line within 15 s";
    finish();
  });
  // Whatever happens, the loop ends: the schedule plus start-up and
  // shutdown allowances.
  const double hard_ms = (15 + o_.warmup_s + o_.duration_s + o_.drain_s + 60) * 1000;
  hard_stop_->start(hard_ms, 0, [this] {
    std::fprintf(stderr, "bench-chaos: hard stop\n");
    finish();
    close_all_handles();
  });
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  for (int i = 0; i < 100 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
  }
  uv_loop_close(&loop_);
  if (server_pid_ > 0 && !server_reaped_) {  // only after a hard stop
    ::kill(server_pid_, SIGKILL);
    server_sigkilled_ = true;
    if (waitpid(server_pid_, &server_status_, 0) == server_pid_) server_reaped_ = true;
  }

  // Leftovers: a segment a killed server left behind, our config.
  struct stat st {};
  segment_left_ = ::stat(("/dev/shm/" + shm_name_).c_str(), &st) == 0;
  if (segment_left_) shm::Segment::unlink_name(shm_name_);
  unlink(config_path_.c_str());
  if (log_copy_) log_copy_->flush();

  if (startup_failed_) {
    std::fprintf(stderr, "bench-chaos: server start failed: %s\nlast server log lines:\n", startup_error_.c_str());
    for (auto& l : log_tail_) std::fprintf(stderr, "  %s\n", l.c_str());
    return 1;
  }
  print_report();
  return 0;
}

// ---------------------------------------------------------------- report

void Bench::print_report() {
  const double hz = 30;  // tick_rate_hz of the config (loadtest.toml's 30)
  const double cutoff_s = end_s_ - o_.time_limit_s - o_.margin_s;
  auto line = [](const char* key, const std::string& value) { std::printf("%-34s %s\n", key, value.c_str()); };

  std::printf("\n== skirmish-bench-chaos: what survived ==\n");
  line("game:", fmt("%s %s, %d players per match, bot_input %s%s", o_.table->name, o_.table->version, o_.match_size,
                    o_.table->bot_input != nullptr ? "yes" : "NONE (the bots sent no input)",
                    o_.params.empty() ? "" : (", params " + [&] {
                      std::string p;
                      for (const auto& kv : o_.params) p += (p.empty() ? "" : " ") + kv;
                      return p;
                    }()).c_str()));
  line("run:", fmt("%d bots, %d workers, %s %d s, %.1f s of bots (warm-up %.0f + kills %.0f + drain %.0f)", o_.bots,
                   o_.workers, is_arena(o_) ? "time_limit_s" : "longest match", o_.time_limit_s, run_wall_s_,
                   o_.warmup_s, o_.duration_s, o_.drain_s));
  line("at warm-up end:", fmt("%d of %d bots welcomed, %d in a match", welcomed_at_warmup_, o_.bots,
                              in_match_at_warmup_));
  int kills_sent = 0;
  size_t owned_total = 0;
  std::string per_kill;
  for (auto& k : kills_) {
    if (!k.sent) continue;
    ++kills_sent;
    owned_total += k.owned.size();
    per_kill += fmt("%sw%u:%zu", per_kill.empty() ? "" : " ", k.worker, k.owned.size());
  }
  line("kills (SIGKILL):", fmt("%d of %zu scheduled; Running matches owned at the kill: %zu in all (%s)", kills_sent,
                               kills_.size(), owned_total, per_kill.c_str()));

  // Matches.
  int started = 0, completed = 0, late_started = 0, late_completed = 0;
  int seats_counted = 0, seats_incomplete = 0, incomplete_seen_ended = 0;
  std::map<proto::EndReason, int> reasons;
  int short_results = 0;
  for (auto& [id, mi] : matches_) {
    if (mi.found_ms < 0) continue;  // MatchEnd of a match no bot saw start
    if (mi.found_ms <= cutoff_s) {
      ++started;
      seats_counted += int(mi.seats);
      if (mi.ended) {
        ++completed;
        ++reasons[mi.reason];
      } else {
        seats_incomplete += int(mi.seats);
        if (mi.seen_ended_in_segment) ++incomplete_seen_ended;
      }
    } else {
      ++late_started;
      if (mi.ended) ++late_completed;
    }
    if (mi.ended && mi.results < mi.seats) ++short_results;
  }
  line("matches started (counted):",
       fmt("%d  (distinct match ids in MatchFound, first seen at t <= %.1f s = end %.1f - time limit %d - margin %.1f)",
           started, cutoff_s, end_s_, o_.time_limit_s, o_.margin_s));
  line("matches completed:", fmt("%d of %d  (%.2f %%; a MatchEnd received by at least one bot)", completed, started,
                                 started ? 100.0 * completed / started : 0.0));
  line("  end reasons:", fmt("completed %d, score limit %d, time limit %d, abandoned %d, shutdown deadline %d, "
                             "game error %d",
                             reasons[proto::EndReason::Completed], reasons[proto::EndReason::ScoreLimit],
                             reasons[proto::EndReason::TimeLimit], reasons[proto::EndReason::Abandoned],
                             reasons[proto::EndReason::ShutdownDeadline], reasons[proto::EndReason::GameError]));
  line("  not counted (started later):", fmt("%d, of which %d completed before the end", late_started,
                                             late_completed));
  line("  seats in incomplete matches:", fmt("%d  (counted matches with no MatchEnd by the end; %d of those matches "
                                           "were Ended in the segment when a resumed bot of theirs looked)",
                                           seats_incomplete, incomplete_seen_ended));
  if (short_results > 0)
    line("  MatchEnd with fewer results:", fmt("%d matches listed fewer results than seats", short_results));

  // Adopted matches.
  int adopted = 0, adopted_completed = 0, adopted_abandoned = 0, adopted_no_obs = 0;
  std::vector<uint32_t> a_gap, b_gap;
  std::vector<double> a_pause, b_pause, a_pause_ticks, b_pause_ticks;
  double a_worst_at = 0, b_worst_at = 0, a_worst = -1, b_worst = -1;
  auto pause_ticks = [hz](double ms) { return std::max(0.0, ms / (1000.0 / hz) - 1); };
  for (auto& [id, mi] : matches_) {
    if (mi.adopted) {
      ++adopted;
      if (mi.ended) ++adopted_completed;
      if (mi.ended && mi.reason == proto::EndReason::Abandoned) ++adopted_abandoned;
      if (mi.observers == 0) {
        ++adopted_no_obs;
        continue;
      }
      if (mi.max_pause_ms > a_worst) {
        a_worst = mi.max_pause_ms;
        a_worst_at = mi.max_pause_at_s;
      }
      a_gap.push_back(mi.max_tick_gap);
      a_pause.push_back(mi.max_pause_ms);
      a_pause_ticks.push_back(pause_ticks(mi.max_pause_ms));
    } else if (mi.observers > 0) {
      if (mi.max_pause_ms > b_worst) {
        b_worst = mi.max_pause_ms;
        b_worst_at = mi.max_pause_at_s;
      }
      b_gap.push_back(mi.max_tick_gap);
      b_pause.push_back(mi.max_pause_ms);
      b_pause_ticks.push_back(pause_ticks(mi.max_pause_ms));
    }
  }
  line("adopted matches:", fmt("%d distinct (owned by a worker when it was killed); completed %d, abandoned %d; "
                               "server logged %llu adoptions",
                               adopted, adopted_completed, adopted_abandoned, (unsigned long long)log_adopted_));

  // Seats.
  int seats_lost_end = 0, overlap = 0;
  for (auto& [id, mi] : matches_) {
    if (!mi.ended) continue;
    for (uint32_t pid : mi.player_ids)
      if (std::find(mi.ended_ids.begin(), mi.ended_ids.end(), pid) == mi.ended_ids.end()) {
        ++seats_lost_end;
        if (gave_up_ids_.count(pid)) ++overlap;
      }
  }
  line("seats lost:", fmt("%d  (= %d seats of completed matches whose bot got no MatchEnd + %llu automatic resumes "
                          "that gave up - %d counted in both)",
                          int(seats_lost_end + give_ups_ - uint64_t(overlap)), seats_lost_end,
                          (unsigned long long)give_ups_, overlap));
  line("  seats in counted matches:", fmt("%d", seats_counted));

  // Drops and resumes.
  line("drops / resumes:", fmt("%llu drops (%llu of them mid-match), %llu resumes, %llu reconnect attempts, %llu gave up",
                               (unsigned long long)drops_, (unsigned long long)drops_in_match_,
                               (unsigned long long)resumes_, (unsigned long long)reconnect_attempts_,
                               (unsigned long long)give_ups_));
  line("resume time (drop -> Welcome):",
       fmt("p50 %.0f ms, p99 %.0f ms, max %.0f ms over %zu resumes", pct(resume_ms_, 0.5), pct(resume_ms_, 0.99),
           vmax(resume_ms_), resume_ms_.size()));
  int during = 0, before = 0, running = 0, gone = 0, noseg = 0, others_got_it = 0, followed = 0;
  for (auto& me : missed_ends_) {
    followed += me.end_followed;
    switch (me.kind) {
      case EndSeen::EndedDuringDrop: ++during; break;
      case EndSeen::EndedBeforeDrop: ++before; break;
      case EndSeen::StillRunning: ++running; break;
      case EndSeen::RowGone: ++gone; break;
      case EndSeen::NoSegment: ++noseg; break;
    }
    auto it = matches_.find(me.match);
    if (it != matches_.end() && it->second.ended) ++others_got_it;
  }
  if (!missed_ends_.empty())
    line("  match over at resume:",
         fmt("%zu resumed Welcomes named no match: per the segment the match ended between the kill and the resume "
             "in %d, before the kill in %d, still running in %d, row gone in %d%s; another bot got its MatchEnd in %d; "
             "its MatchEnd followed the Welcome in %d",
             missed_ends_.size(), during, before, running, gone, noseg ? fmt(", not looked up in %d", noseg).c_str() : "",
             others_got_it, followed));
  line("  back into the same match:", fmt("%llu MatchFound repeated after a resume (not counted as matches); "
                                          "%llu resumes found the match already over: MatchEnd followed in %llu, "
                                          "missing in %llu",
                                          (unsigned long long)reseated_, (unsigned long long)ended_at_resume_,
                                          (unsigned long long)end_after_resume_,
                                          (unsigned long long)missed_match_end_on_resume_));

  // Ticks missed.
  line("ticks missed, adopted (tick gap):",
       fmt("p50 %u, max %u over %zu adopted matches with a bot that kept its connection (%d had none)",
           pct(a_gap, 0.5), vmax(a_gap), a_gap.size(), adopted_no_obs));
  line("ticks missed, adopted (pause):",
       fmt("p50 %.1f ticks / %.0f ms, max %.1f ticks / %.0f ms (ending at t=%.2f s)  (longest pause between "
           "snapshots; ticks = ms/33.3 - 1)",
           pct(a_pause_ticks, 0.5), pct(a_pause, 0.5), vmax(a_pause_ticks), vmax(a_pause), a_worst_at));
  line("  baseline, matches not adopted:",
       fmt("tick gap p50 %u max %u; pause p50 %.0f ms, max %.0f ms (ending at t=%.2f s) over %zu matches",
           pct(b_gap, 0.5), vmax(b_gap), pct(b_pause, 0.5), vmax(b_pause), b_worst_at, b_gap.size()));

  // Errors.
  std::string errs;
  uint64_t err_total = errors_unknown_;
  for (size_t i = 0; i < errors_.size(); ++i) {
    if (errors_[i] == 0) continue;
    err_total += errors_[i];
    errs += fmt("%s%s %llu", errs.empty() ? "" : ", ", proto::EnumNameErrorCode(proto::ErrorCode(i)),
                (unsigned long long)errors_[i]);
  }
  if (errors_unknown_) errs += fmt("%sunknown code %llu", errs.empty() ? "" : ", ", (unsigned long long)errors_unknown_);
  line("errors seen by bots:", fmt("%llu%s%s", (unsigned long long)err_total, errs.empty() ? "" : "  (",
                                   errs.empty() ? "" : (errs + ")").c_str()));
  for (auto& [code, text] : error_text_)
    std::printf("  %-32s \"%s\"\n", proto::EnumNameErrorCode(proto::ErrorCode(code)), text.c_str());

  // Bots and client side.
  line("bots at the end:", fmt("%d in a match, %d queued, %d reconnecting, %d closed (gave up or never connected)",
                               bots_in_match_end_, bots_queued_end_, bots_reconnecting_end_, bots_closed_end_));
  if (!closed_reasons_.empty()) {
    std::string rs;
    for (auto& [r, n] : closed_reasons_)
      rs += fmt("%s%s x%d", rs.empty() ? "" : ", ", r == client::kClosedDecodeError ? "decode error" : r == 0 ? "closed" : uv_err_name(r), n);
    line("  closed bots by last reason:", rs);
  }
  line("tickets lost:", fmt("%llu found Idle after a resume and re-queued (%llu of them acknowledged by "
                            "QueueStatus before the drop: anomalies; the rest were in flight to the killed worker)",
                            (unsigned long long)tickets_lost_, (unsigned long long)tickets_lost_acked_));
  line("watchdog:", fmt("%llu queue probes of bots waiting > 10 s, %llu bots stuck in a silent match "
                        "(> 5 s without a snapshot)",
                        (unsigned long long)queue_probes_, (unsigned long long)stuck_in_match_));
  line("client traffic:", fmt("%llu snapshots (%llu of another match), %llu deltas skipped (%llu missing base, %llu "
                              "bad), %llu inputs sent, %llu refused (%llu write queue full), %llu snapshots the bot "
                              "had nothing for, %llu MatchEnd of a match no bot saw start, %u connect errors",
                              (unsigned long long)snapshots_, (unsigned long long)stray_snapshots_,
                              (unsigned long long)(missing_base_ + bad_delta_), (unsigned long long)missing_base_,
                              (unsigned long long)bad_delta_, (unsigned long long)inputs_sent_,
                              (unsigned long long)inputs_refused_, (unsigned long long)write_queue_full_,
                              (unsigned long long)bot_idle_, (unsigned long long)match_end_unknown_, connect_errors_));
  auto per = [](uint64_t bytes, uint64_t n) { return n > 0 ? double(bytes) / double(n) : 0.0; };
  line("bytes per snapshot:", fmt("full %.1f (%llu frames), delta %.1f (%llu frames); frame bytes with the length "
                                  "header",
                                  per(snap_bytes_full_, snaps_full_), (unsigned long long)snaps_full_,
                                  per(snap_bytes_delta_, snaps_delta_), (unsigned long long)snaps_delta_));
  line("bench loop lag (50 ms timer):", fmt("p50 %.1f ms, p99 %.1f ms, max %.1f ms (at t=%.2f s); bench CPU %.0f %% "
                                            "of one core",
                                            pct(lag_ms_, 0.5), pct(lag_ms_, 0.99), vmax(lag_ms_), lag_max_at_s_,
                                            run_wall_s_ > 0 ? 100.0 * cpu_self_s_ / run_wall_s_ : 0.0));

  // Server.
  std::string exit_s = "not reaped";
  if (server_reaped_) {
    if (WIFEXITED(server_status_))
      exit_s = fmt("exit code %d", WEXITSTATUS(server_status_));
    else if (WIFSIGNALED(server_status_))
      exit_s = fmt("killed by signal %d", WTERMSIG(server_status_));
  }
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  const double cpu_children = double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) / 1e6 +
                              double(ru.ru_stime.tv_sec) + double(ru.ru_stime.tv_usec) / 1e6;
  line("server exit:", fmt("%s after SIGTERM%s; segment %s; CPU of all its processes %.1f s", exit_s.c_str(),
                           server_sigkilled_ ? " (SIGKILL after 10 s)" : "",
                           segment_left_ ? "left behind (unlinked now)" : "removed by the server", cpu_children));
  line("server log:", fmt("%llu lines: %llu warnings, %llu errors, %llu critical; %llu heartbeat kills, "
                          "%llu tick stalls skipped",
                          (unsigned long long)log_lines_, (unsigned long long)log_warn_,
                          (unsigned long long)log_error_, (unsigned long long)log_critical_,
                          (unsigned long long)log_heartbeat_, (unsigned long long)log_ticks_skipped_));
  for (auto& l : log_notable_) std::printf("  | %s\n", l.c_str());
  line("anomalies:", fmt("%llu%s", (unsigned long long)anomalies_total_,
                         anomalies_total_ > anomalies_.size() ? " (the first ones below)" : ""));
  for (auto& a : anomalies_) std::printf("  ! %s\n", a.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  o.server = exe_dir() + "/../server/skirmish-server";
  CLI::App app{"skirmish-bench-chaos: bots play matches of a game module while a worker is killed with -9 every few "
               "seconds; prints what survived"};
  app.add_option("--server", o.server, "skirmish-server binary")->capture_default_str();
  app.add_option("--config", o.base_config, "base config (keys are overridden)")->capture_default_str();
  app.add_option("--bots", o.bots, "bots on one loop")->check(CLI::Range(4, 50000))->capture_default_str();
  app.add_option("--ramp", o.ramp, "bots connected per second")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "seconds before the first kill")->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--kill-every", o.kill_every_s, "seconds between kills")->check(CLI::Range(0.5, 600.0))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds of kills")->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--drain", o.drain_s, "seconds after the kills for matches in flight to end")
      ->check(CLI::Range(0.0, 600.0))->capture_default_str();
  app.add_option("--workers", o.workers, "server worker processes")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--time-limit", o.time_limit_s,
                 "the arena's game.params.time_limit_s; for another game, the longest a match may last (which "
                 "matches had time to end)")
      ->check(CLI::Range(5, 3600))
      ->capture_default_str();
  app.add_option("--game", o.game, "game module the server hosts: a bundled name (arena, battleship) or a path")
      ->capture_default_str();
  app.add_option("--match-size", o.match_size, "players per match (default 4 within the module's range)")
      ->check(CLI::Range(1, 16));
  app.add_option("--param", o.params, "KEY=VALUE of [game.params] (repeatable)");
  app.add_option("--margin", o.margin_s, "seconds of slack when deciding which matches had time to end")
      ->check(CLI::Range(0.0, 600.0))->capture_default_str();
  app.add_option("--server-log", o.server_log, "also write the server's log to this file");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  if (!resolve_game(o, error)) {
    std::fprintf(stderr, "bench-chaos: %s\n", error.c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + shell_quote(argv[i]);
  Bench bench(o);
  return bench.run(cmd);
}
