// chaos_report.cpp: skirmish-bench-chaos's report, what survived (chaos_bench.h).
//
// Printed on stdout once the loop has ended: the game and the run, the
// kills, matches started and completed, adopted matches, seats lost, drops
// and resumes, ticks missed, errors, the bots at the end, client traffic,
// the bench's loop lag, and the server's exit and log. Figures only: no
// verdict on any of them.
#include <sys/resource.h>
#include <sys/wait.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench/chaos_bench.h"

namespace bench_chaos {

using namespace skirmish;
using client::Client;

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

}  // namespace bench_chaos
