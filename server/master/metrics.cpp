#include "master/metrics.h"

#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstdio>

#include "master/stats.h"
#include "shm/atomic_field.h"
#include "protocol/skirmish_generated.h"

namespace skirmish::master {

namespace {

using shm::shared_load;

class Writer {
 public:
  // One metric family: HELP and TYPE once, then its samples.
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const char* name, const std::string& labels, double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", v);
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += b;
    out_ += '\n';
  }
  void sample(const char* name, const std::string& labels, uint64_t v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += std::to_string(v);
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

const char* role_of(const shm::ProcessRow& r) {
  switch (r.role) {
    case shm::ProcessRole::Worker: return "worker";
    case shm::ProcessRole::Coordinator: return "coordinator";
    case shm::ProcessRole::Master: return "master";
  }
  return "unknown";
}

std::string proc_labels(const shm::ProcessRow& r) {
  return std::string("role=\"") + role_of(r) + "\",index=\"" + std::to_string(r.index) + "\"";
}

std::string worker_label(uint32_t w) { return "worker=\"" + std::to_string(w) + "\""; }

// One Prometheus histogram sample set from a shm histogram: cumulative
// buckets, sum and count, in `scale` units per stored unit (seconds).
void histogram(Writer& w, const char* name, const std::string& labels, const shm::ShmHistogram& h,
               const std::uint64_t (&bounds)[shm::kHistBuckets - 1], double scale) {
  const std::string base = std::string(name);
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cum = 0;
  char le[48];
  for (uint32_t i = 0; i < shm::kHistBuckets; ++i) {
    cum += shared_load(h.buckets[i]);
    if (i + 1 < shm::kHistBuckets)
      std::snprintf(le, sizeof le, "%.6g", double(bounds[i]) * scale);
    else
      std::snprintf(le, sizeof le, "+Inf");
    w.sample((base + "_bucket").c_str(), labels + sep + "le=\"" + le + "\"", cum);
  }
  w.sample((base + "_sum").c_str(), labels, double(shared_load(h.sum)) * scale);
  w.sample((base + "_count").c_str(), labels, shared_load(h.count));
}

// A per-worker counter family from one ProcessRow field.
template <class F>
void per_worker(Writer& w, const AdminView& v, const char* name, const char* type, const char* help, F field) {
  w.family(name, type, help);
  for (uint32_t i : v.workers) w.sample(name, worker_label(i), uint64_t(field(v.seg->process(i))));
}

}  // namespace

std::string render_metrics(const AdminView& v) {
  Writer w;
  const shm::Segment& seg = *v.seg;
  const MasterStats& ms = *v.stats;
  const uint32_t procs = seg.process_count();

  w.family("skirmish_build_info", "gauge", "Build version of the running server (value is always 1).");
  w.sample("skirmish_build_info", "version=\"" SKIRMISH_VERSION "\"", uint64_t(1));
  w.family("skirmish_uptime_seconds", "gauge", "Seconds since the master started.");
  w.sample("skirmish_uptime_seconds", "", double(v.now_ms - v.start_ms) / 1000.0);
  w.family("skirmish_accepting", "gauge", "1 while the master accepts connections, 0 while draining.");
  w.sample("skirmish_accepting", "", uint64_t(v.listening && !v.draining ? 1 : 0));

  // Processes.
  w.family("skirmish_process_up", "gauge", "1 when the process reports Up in the process table.");
  for (uint32_t i = 0; i < procs; ++i) {
    const auto& r = seg.process(i);
    w.sample("skirmish_process_up", proc_labels(r), uint64_t(shared_load(r.state) == shm::ProcessState::Up));
  }
  w.family("skirmish_process_respawns_total", "counter", "Times the master restarted the process.");
  for (uint32_t i = 0; i < procs; ++i) {
    const auto& r = seg.process(i);
    w.sample("skirmish_process_respawns_total", proc_labels(r), uint64_t(shared_load(r.respawns)));
  }
  w.family("skirmish_process_heartbeat_age_seconds", "gauge", "Seconds since the process last wrote its heartbeat.");
  for (uint32_t i = 0; i + 1 < procs; ++i) {  // the master has no heartbeat of its own
    const auto& r = seg.process(i);
    w.sample("skirmish_process_heartbeat_age_seconds", proc_labels(r),
             double(v.now_ms - shared_load(r.heartbeat_ms)) / 1000.0);
  }

  // Connections (the master's view).
  w.family("skirmish_connections_accepted_total", "counter", "TCP connections accepted by the master.");
  w.sample("skirmish_connections_accepted_total", "", ms.accepted);
  w.family("skirmish_connections_handed_off_total", "counter", "Connections passed to a worker (SCM_RIGHTS).");
  w.sample("skirmish_connections_handed_off_total", "", ms.handed_off);
  w.family("skirmish_connections_refused_total", "counter", "Connections the master refused, by reason.");
  w.sample("skirmish_connections_refused_total", "reason=\"server_full\"", ms.refused_full);
  w.sample("skirmish_connections_refused_total", "reason=\"no_worker\"", ms.refused_no_worker);
  w.sample("skirmish_connections_refused_total", "reason=\"per_address\"", ms.refused_per_address);
  w.sample("skirmish_connections_refused_total", "reason=\"fd_limit\"", ms.refused_fd_limit);
  w.sample("skirmish_connections_refused_total", "reason=\"handoff_failed\"", ms.handoff_failed);
  w.family("skirmish_accept_pauses_total", "counter",
           "Times accepting paused for lack of any spare file descriptor.");
  w.sample("skirmish_accept_pauses_total", "", ms.accept_pauses);
  w.family("skirmish_heartbeat_kills_total", "counter", "Children killed by the master for a stale heartbeat.");
  w.sample("skirmish_heartbeat_kills_total", "", ms.heartbeat_kills);

  // Per worker.
  per_worker(w, v, "skirmish_connections_open", "gauge", "Client connections a worker holds now.",
             [](const shm::ProcessRow& r) { return shared_load(r.connections_open); });
  per_worker(w, v, "skirmish_worker_connections_accepted_total", "counter", "Connections a worker took from the master.",
             [](const shm::ProcessRow& r) { return shared_load(r.connections_accepted); });
  per_worker(w, v, "skirmish_worker_connections_closed_total", "counter", "Connections a worker closed.",
             [](const shm::ProcessRow& r) { return shared_load(r.connections_closed); });
  per_worker(w, v, "skirmish_frames_received_total", "counter", "Frames received from clients.",
             [](const shm::ProcessRow& r) { return shared_load(r.frames_in); });
  per_worker(w, v, "skirmish_frames_sent_total", "counter", "Frames queued to clients.",
             [](const shm::ProcessRow& r) { return shared_load(r.frames_out); });
  per_worker(w, v, "skirmish_received_bytes_total", "counter", "Bytes received from clients.",
             [](const shm::ProcessRow& r) { return shared_load(r.bytes_in); });
  per_worker(w, v, "skirmish_sent_bytes_total", "counter", "Bytes written to clients.",
             [](const shm::ProcessRow& r) { return shared_load(r.bytes_out); });
  per_worker(w, v, "skirmish_slow_consumers_total", "counter", "Clients closed because their write queue was full.",
             [](const shm::ProcessRow& r) { return shared_load(r.slow_consumers); });
  w.family("skirmish_errors_sent_total", "counter", "Error messages sent to clients, by worker and code.");
  for (uint32_t i : v.workers)
    for (uint32_t c = 1; c <= uint32_t(proto::ErrorCode::MAX) && c < shm::kErrorCodeSlots; ++c) {
      const uint64_t n = shared_load(seg.process(i).errors_by_code[c]);
      if (n > 0)
        w.sample("skirmish_errors_sent_total",
                 worker_label(i) + ",code=\"" + proto::EnumNameErrorCode(proto::ErrorCode(c)) + "\"", n);
    }
  per_worker(w, v, "skirmish_tickets_created_total", "counter", "Matchmaking tickets created (QueueJoin).",
             [](const shm::ProcessRow& r) { return shared_load(r.tickets_created); });
  per_worker(w, v, "skirmish_tickets_cancelled_total", "counter", "Tickets cancelled by QueueLeave or a drain.",
             [](const shm::ProcessRow& r) { return shared_load(r.tickets_cancelled); });
  per_worker(w, v, "skirmish_matches_owned", "gauge", "Matches a worker ticks now.",
             [](const shm::ProcessRow& r) { return shared_load(r.matches_owned); });
  per_worker(w, v, "skirmish_matches_ended_total", "counter",
             "Matches a worker ended (score or time limit, or a drain's deadline).",
             [](const shm::ProcessRow& r) { return shared_load(r.matches_ended); });
  per_worker(w, v, "skirmish_matches_ended_at_drain_deadline_total", "counter",
             "Matches still running at a drain's deadline (timeouts.drain_timeout_ms), ended with no rating change.",
             [](const shm::ProcessRow& r) { return shared_load(r.matches_ended_at_deadline); });
  per_worker(w, v, "skirmish_match_ticks_total", "counter", "Match steps run.",
             [](const shm::ProcessRow& r) { return shared_load(r.ticks); });
  per_worker(w, v, "skirmish_tick_passes_late_total", "counter", "Tick passes run more than one interval late.",
             [](const shm::ProcessRow& r) { return shared_load(r.ticks_late); });
  per_worker(w, v, "skirmish_tick_passes_skipped_total", "counter", "Tick passes given up after a stall (logged).",
             [](const shm::ProcessRow& r) { return shared_load(r.ticks_skipped); });
  w.family("skirmish_tick_drift_max_seconds", "gauge", "Worst lateness of a tick pass since the worker started.");
  for (uint32_t i : v.workers)
    w.sample("skirmish_tick_drift_max_seconds", worker_label(i),
             double(shared_load(seg.process(i).tick_drift_max_us)) / 1e6);
  per_worker(w, v, "skirmish_snapshots_sent_total", "counter", "Snapshots sent to clients.",
             [](const shm::ProcessRow& r) { return shared_load(r.snapshots_sent); });
  per_worker(w, v, "skirmish_snapshot_sent_bytes_total", "counter", "Bytes of the snapshots sent.",
             [](const shm::ProcessRow& r) { return shared_load(r.snapshot_bytes); });
  per_worker(w, v, "skirmish_inputs_received_total", "counter", "Inputs received.",
             [](const shm::ProcessRow& r) { return shared_load(r.inputs); });
  per_worker(w, v, "skirmish_inputs_dropped_total", "counter", "Inputs dropped: stale, queue full, or superseded.",
             [](const shm::ProcessRow& r) { return shared_load(r.inputs_dropped); });
  w.family("skirmish_resumes_total", "counter", "Resume attempts, by worker and result.");
  for (uint32_t i : v.workers) {
    w.sample("skirmish_resumes_total", worker_label(i) + ",result=\"ok\"", shared_load(seg.process(i).resumes));
    w.sample("skirmish_resumes_total", worker_label(i) + ",result=\"failed\"",
             shared_load(seg.process(i).resume_failures));
  }

  w.family("skirmish_tick_pass_duration_seconds", "histogram",
           "Wall time of one tick pass over every match a worker owns.");
  for (uint32_t i : v.workers)
    histogram(w, "skirmish_tick_pass_duration_seconds", worker_label(i), seg.process(i).tick_pass_us,
              shm::kHistBoundsUs, 1e-6);
  w.family("skirmish_tick_drift_seconds", "histogram", "How late a tick pass started against its schedule.");
  for (uint32_t i : v.workers)
    histogram(w, "skirmish_tick_drift_seconds", worker_label(i), seg.process(i).tick_drift_us, shm::kHistBoundsUs,
              1e-6);

  // Coordinator.
  const auto& co = seg.process(seg.coordinator_index());
  w.family("skirmish_matchmaking_wait_seconds", "histogram", "Time from a ticket's QueueJoin to its match.");
  histogram(w, "skirmish_matchmaking_wait_seconds", "", co.matchmaking_wait_ms, shm::kWaitBoundsMs, 1e-3);
  w.family("skirmish_matches_formed_total", "counter", "Matches the coordinator formed.");
  w.sample("skirmish_matches_formed_total", "", shared_load(co.matches_formed));
  w.family("skirmish_matches_adopted_total", "counter", "Matches handed to a new owner after their worker died.");
  w.sample("skirmish_matches_adopted_total", "", shared_load(co.matches_adopted));

  // Tables.
  uint64_t running = 0, ended = 0;
  seg.matches().for_each_used([&](shm::Handle, shm::MatchRow& m) {
    const auto st = shared_load(m.state);
    running += st == shm::MatchState::Running;
    ended += st == shm::MatchState::Ended;
  });
  w.family("skirmish_matches_active", "gauge", "Matches running now.");
  w.sample("skirmish_matches_active", "", running);
  w.family("skirmish_tickets_queued", "gauge", "Matchmaking tickets in the table now.");
  w.sample("skirmish_tickets_queued", "", uint64_t(seg.tickets().size()));
  uint64_t connected = 0, disconnected = 0;
  seg.players().for_each_used([&](shm::Handle, shm::PlayerRow& p) {
    const auto st = shared_load(p.state);
    connected += st == shm::PlayerState::Connected;
    disconnected += st == shm::PlayerState::Disconnected;
  });
  w.family("skirmish_players", "gauge", "Player seats, by state (disconnected = waiting out the resume grace).");
  w.sample("skirmish_players", "state=\"connected\"", connected);
  w.sample("skirmish_players", "state=\"disconnected\"", disconnected);
  struct T {
    const char* name;
    uint32_t used, cap, high;
    uint64_t failures, recoveries;
  };
  const T tables[] = {
      {"players", seg.players().size(), seg.players().capacity(), seg.players().high_water(),
       seg.players().alloc_failures(), seg.players().recoveries()},
      {"tickets", seg.tickets().size(), seg.tickets().capacity(), seg.tickets().high_water(),
       seg.tickets().alloc_failures(), seg.tickets().recoveries()},
      {"matches", seg.matches().size(), seg.matches().capacity(), seg.matches().high_water(),
       seg.matches().alloc_failures(), seg.matches().recoveries()},
  };
  w.family("skirmish_table_rows", "gauge", "Rows in use in a shared-memory table.");
  for (const T& t : tables) w.sample("skirmish_table_rows", std::string("table=\"") + t.name + "\"", uint64_t(t.used));
  w.family("skirmish_table_capacity", "gauge", "Rows a shared-memory table holds (from config).");
  for (const T& t : tables) w.sample("skirmish_table_capacity", std::string("table=\"") + t.name + "\"", uint64_t(t.cap));
  w.family("skirmish_table_high_water", "gauge", "Most rows ever in use at once.");
  for (const T& t : tables) w.sample("skirmish_table_high_water", std::string("table=\"") + t.name + "\"", uint64_t(t.high));
  w.family("skirmish_table_full_total", "counter", "Allocations refused because the table was full.");
  for (const T& t : tables) w.sample("skirmish_table_full_total", std::string("table=\"") + t.name + "\"", t.failures);
  w.family("skirmish_table_lock_recoveries_total", "counter", "Table locks recovered after their holder died.");
  for (const T& t : tables)
    w.sample("skirmish_table_lock_recoveries_total", std::string("table=\"") + t.name + "\"", t.recoveries);

  // Mailboxes.
  w.family("skirmish_mailbox_depth", "gauge", "Events waiting in a process's mailbox.");
  for (uint32_t i = 0; i < procs; ++i) w.sample("skirmish_mailbox_depth", proc_labels(seg.process(i)), uint64_t(seg.mailbox(i).depth()));
  w.family("skirmish_mailbox_high_water", "gauge", "Deepest a process's mailbox has been.");
  for (uint32_t i = 0; i < procs; ++i)
    w.sample("skirmish_mailbox_high_water", proc_labels(seg.process(i)), uint64_t(seg.mailbox(i).high_water()));
  w.family("skirmish_mailbox_full_total", "counter", "Events refused because a process's mailbox was full.");
  for (uint32_t i = 0; i < procs; ++i)
    w.sample("skirmish_mailbox_full_total", proc_labels(seg.process(i)), seg.mailbox(i).full_count());
  return w.take();
}

std::string render_status(const AdminView& v) {
  using nlohmann::json;
  const shm::Segment& seg = *v.seg;
  json procs = json::array();
  for (uint32_t i = 0; i < seg.process_count(); ++i) {
    const auto& r = seg.process(i);
    const auto st = shared_load(r.state);
    const char* state = st == shm::ProcessState::Up         ? "up"
                        : st == shm::ProcessState::Starting ? "starting"
                        : st == shm::ProcessState::Draining ? "draining"
                                                            : "down";
    json p = {{"role", role_of(r)}, {"index", r.index}, {"pid", shared_load(r.pid)}, {"state", state},
              {"respawns", shared_load(r.respawns)}};
    if (r.role == shm::ProcessRole::Worker) {
      p["connections"] = shared_load(r.connections_open);
      p["matches_owned"] = shared_load(r.matches_owned);
    }
    if (r.role != shm::ProcessRole::Master) p["heartbeat_age_ms"] = v.now_ms - shared_load(r.heartbeat_ms);
    procs.push_back(p);
  }
  auto table = [](auto t) { return json{{"used", t.size()}, {"capacity", t.capacity()}, {"high_water", t.high_water()}}; };
  json j = {{"version", SKIRMISH_VERSION},
            {"uptime_s", double(v.now_ms - v.start_ms) / 1000.0},
            {"accepting", v.listening && !v.draining},
            {"draining", v.draining},
            {"shm", seg.name()},
            {"shm_bytes", seg.bytes()},
            {"tick_rate_hz", v.cfg->tick_rate_hz},
            {"match_size", v.cfg->match_size},
            {"processes", procs},
            {"tables", {{"players", table(seg.players())}, {"tickets", table(seg.tickets())}, {"matches", table(seg.matches())}}}};
  return j.dump(2) + "\n";
}

}  // namespace skirmish::master
