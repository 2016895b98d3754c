// chaos_run.cpp: skirmish-bench-chaos's run and its phases (chaos_bench.h).
//
// Bench::run writes the config, starts the server and runs the one loop to
// its end; then the phases, each a uv timer: the bots' ramp, the warm-up,
// a SIGKILL every --kill-every s to the worker owning the most Running
// matches (read from the live segment; only workers whose parent is the
// server), the drain, and the end sequence (finish) that stops the bots and
// the server. Every wait is bounded by a deadline, and a hard stop ends the
// loop whatever happens.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/chaos_bench.h"

namespace bench_chaos {

using namespace skirmish;
using client::Client;

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

void Bench::close_all_handles() {
  for (Timer* t : {start_deadline_.get(), ramp_.get(), warmup_.get(), kill_.get(), kills_end_.get(), end_.get(),
                   sweep_.get(), lag_.get(), poll_.get(), hard_stop_.get()})
    t->close();
  if (log_open_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&log_pipe_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&log_pipe_), nullptr);
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


}  // namespace bench_chaos
