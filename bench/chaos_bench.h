// chaos_bench.h: the state of one skirmish-bench-chaos run (bench/README.md).
//
// MatchInfo is what the bots saw of one match, Bot one bot and its client,
// Kill one scheduled SIGKILL, and Bench the run: the server process
// (chaos_server.cpp), the phases (chaos_run.cpp), the bots' callbacks
// (chaos_bots.cpp) and the report (chaos_report.cpp). Everything runs on the
// one uv loop of Bench::run.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <array>
#include <cstdint>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bench/chaos_options.h"
#include "bench/chaos_util.h"
#include "client/lib/skirmish_client.h"
#include "shm/segment.h"

namespace bench_chaos {

using namespace skirmish;
using client::Client;

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

}  // namespace bench_chaos
