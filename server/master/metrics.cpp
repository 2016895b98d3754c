#include "master/metrics.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <optional>

#include "master/exposition.h"
#include "master/proc_stats.h"
#include "shm/atomic_field.h"
#include "protocol/skirmish_generated.h"

namespace skirmish::master {

namespace {

using shm::shared_load;

const char* role_name(shm::ProcessRole r) {
  switch (r) {
    case shm::ProcessRole::Worker: return "worker";
    case shm::ProcessRole::Coordinator: return "coordinator";
    case shm::ProcessRole::Master: return "master";
  }
  return "unknown";
}

const char* state_name(shm::ProcessState s) {
  switch (s) {
    case shm::ProcessState::Up: return "up";
    case shm::ProcessState::Starting: return "starting";
    case shm::ProcessState::Draining: return "draining";
    case shm::ProcessState::Down: return "down";
  }
  return "unknown";
}

// One process as this scrape sees it: its row read once (the master's from
// its own memory), its /proc read once.
struct Proc {
  uint32_t index;
  shm::ProcessRole role;
  shm::ProcessState state;
  pid_t pid;
  uint32_t respawns;
  int64_t heartbeat_ms;
  const shm::Counters* counters;
  std::string labels;  // role="...",index="..."
  std::optional<ProcStats> os;
};

std::vector<Proc> describe(const AdminView& v) {
  std::vector<Proc> out;
  out.reserve(v.processes.size());
  for (uint32_t i : v.processes) {
    const shm::ProcessRow& r = v.seg->process(i);
    Proc p{i, r.role, shared_load(r.state), shared_load(r.pid), shared_load(r.respawns), shared_load(r.heartbeat_ms),
           &r.counters, {}, {}};
    if (i == v.seg->master_index()) {
      // This master: the row is shared with the other master during an
      // upgrade, and nobody writes its state; it is the one answering.
      p.role = shm::ProcessRole::Master;
      p.state = v.listening && !v.draining ? shm::ProcessState::Up : shm::ProcessState::Draining;
      p.pid = v.master_pid;
      p.respawns = 0;
      p.counters = v.master_counters;
    }
    p.labels = std::string("role=\"") + role_name(p.role) + "\",index=\"" + std::to_string(i) + "\"";
    if (p.state != shm::ProcessState::Down) p.os = read_proc_stats(p.pid);
    out.push_back(std::move(p));
  }
  return out;
}

bool up(const Proc& p) { return p.state == shm::ProcessState::Up || p.state == shm::ProcessState::Draining; }

std::string with(const std::string& labels, std::string_view more) {
  if (more.empty()) return labels;
  return labels + "," + std::string(more);
}

// One Prometheus histogram sample set from a shm histogram: cumulative
// buckets, sum and count, in seconds (stored value / divisor).
void histogram(Exposition& w, const char* name, const std::string& labels, const shm::ShmHistogram& h,
               const uint64_t (&bounds)[shm::kHistBuckets - 1], double divisor) {
  const std::string bucket = std::string(name) + "_bucket";
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cum = 0;
  for (uint32_t i = 0; i < shm::kHistBuckets; ++i) {
    cum += shared_load(h.buckets[i]);
    // Division, not a multiplication by 1e-6: 50 / 1e6 is exactly the
    // double nearest 5e-05, so the bound prints as "5e-05".
    const std::string le = i + 1 < shm::kHistBuckets ? format_value(double(bounds[i]) / divisor) : "+Inf";
    w.sample(bucket, labels + sep + "le=\"" + le + "\"", cum);
  }
  w.sample(std::string(name) + "_sum", labels, double(shared_load(h.sum)) / divisor);
  w.sample(std::string(name) + "_count", labels, shared_load(h.count));
}

void render_processes(Exposition& w, const std::vector<Proc>& procs, int64_t now_ms) {
  w.family("skirmish_process_up", "gauge", "1 while the process runs (up or draining), 0 while starting or down.");
  for (const Proc& p : procs) w.sample("skirmish_process_up", p.labels, uint64_t(up(p)));
  w.family("skirmish_process_respawns_total", "counter", "Times the master restarted the process.");
  for (const Proc& p : procs) w.sample("skirmish_process_respawns_total", p.labels, uint64_t(p.respawns));
  w.family("skirmish_process_heartbeat_age_seconds", "gauge",
           "Seconds since the process last wrote its heartbeat (the master keeps none).");
  for (const Proc& p : procs)
    if (p.role != shm::ProcessRole::Master && p.state != shm::ProcessState::Down)
      w.sample("skirmish_process_heartbeat_age_seconds", p.labels, double(now_ms - p.heartbeat_ms) / 1000.0);

  // The process collector of the Prometheus clients, one set per process.
  w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  for (const Proc& p : procs)
    if (p.os) w.sample("process_cpu_seconds_total", p.labels, p.os->cpu_seconds);
  w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  for (const Proc& p : procs)
    if (p.os) w.sample("process_resident_memory_bytes", p.labels, p.os->rss_bytes);
  w.family("process_open_fds", "gauge", "Number of open file descriptors.");
  for (const Proc& p : procs)
    if (p.os) w.sample("process_open_fds", p.labels, p.os->open_fds);
  w.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  for (const Proc& p : procs)
    if (p.os) w.sample("process_start_time_seconds", p.labels, p.os->start_time_seconds);
}

// Every entry of the counter table, for every process of the role that
// keeps it, from the start (0 before the first event).
void render_counters(Exposition& w, const std::vector<Proc>& procs) {
  for (size_t i = 0; i < shm::kCounterCount; ++i) {
    const shm::CounterSpec& c = shm::kCounterSpecs[i];
    if (i == 0 || std::strcmp(c.metric, shm::kCounterSpecs[i - 1].metric) != 0)
      w.family(c.metric, c.kind == shm::CounterKind::Counter ? "counter" : "gauge", c.help);
    for (const Proc& p : procs)
      if (shm::keeps(shm::keeper_of(p.role), c.role))
        w.sample(c.metric, with(p.labels, c.labels), shared_load(p.counters->*c.field));
  }

  w.family("skirmish_errors_sent_total", "counter", "Error messages sent to clients, by code.");
  for (const Proc& p : procs) {
    if (p.role != shm::ProcessRole::Worker) continue;
    for (uint32_t code = 1; code <= uint32_t(proto::ErrorCode::MAX) && code < shm::kErrorCodeSlots; ++code)
      w.sample("skirmish_errors_sent_total",
               p.labels + ",code=\"" + proto::EnumNameErrorCode(proto::ErrorCode(code)) + "\"",
               shared_load(p.counters->errors_by_code[code]));
  }

  for (const shm::HistogramSpec& h : shm::kHistogramSpecs) {
    w.family(h.metric, "histogram", h.help);
    for (const Proc& p : procs)
      if (shm::keeps(shm::keeper_of(p.role), h.role))
        histogram(w, h.metric, p.labels, p.counters->*h.field, *h.bounds, h.divisor);
  }
}

void render_tables(Exposition& w, const shm::Segment& seg) {
  uint64_t running = 0;
  seg.matches().for_each_used([&](shm::Handle, shm::MatchRow& m) {
    running += shared_load(m.state) == shm::MatchState::Running;
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
  auto label = [](const T& t) { return std::string("table=\"") + t.name + "\""; };
  w.family("skirmish_table_rows", "gauge", "Rows in use in a shared-memory table.");
  for (const T& t : tables) w.sample("skirmish_table_rows", label(t), uint64_t(t.used));
  w.family("skirmish_table_capacity", "gauge", "Rows a shared-memory table holds (from config).");
  for (const T& t : tables) w.sample("skirmish_table_capacity", label(t), uint64_t(t.cap));
  w.family("skirmish_table_high_water", "gauge", "Most rows ever in use at once.");
  for (const T& t : tables) w.sample("skirmish_table_high_water", label(t), uint64_t(t.high));
  w.family("skirmish_table_full_total", "counter", "Allocations refused because the table was full.");
  for (const T& t : tables) w.sample("skirmish_table_full_total", label(t), t.failures);
  w.family("skirmish_table_lock_recoveries_total", "counter", "Table locks recovered after their holder died.");
  for (const T& t : tables) w.sample("skirmish_table_lock_recoveries_total", label(t), t.recoveries);
}

void render_mailboxes(Exposition& w, const shm::Segment& seg, const std::vector<Proc>& procs) {
  w.family("skirmish_mailbox_depth", "gauge", "Events waiting in a process's mailbox.");
  for (const Proc& p : procs) w.sample("skirmish_mailbox_depth", p.labels, uint64_t(seg.mailbox(p.index).depth()));
  w.family("skirmish_mailbox_high_water", "gauge", "Deepest a process's mailbox has been.");
  for (const Proc& p : procs)
    w.sample("skirmish_mailbox_high_water", p.labels, uint64_t(seg.mailbox(p.index).high_water()));
  w.family("skirmish_mailbox_full_total", "counter", "Events refused because a process's mailbox was full.");
  for (const Proc& p : procs) w.sample("skirmish_mailbox_full_total", p.labels, seg.mailbox(p.index).full_count());
}

}  // namespace

std::vector<uint32_t> processes_to_report(const shm::Segment& seg, uint32_t own_first, uint32_t own_count,
                                          bool own_coordinator) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < seg.worker_slots(); ++i)
    if ((i >= own_first && i < own_first + own_count) ||
        shared_load(seg.process(i).state) != shm::ProcessState::Down)
      out.push_back(i);
  const uint32_t co = seg.coordinator_index();
  if (own_coordinator || shared_load(seg.process(co).state) != shm::ProcessState::Down) out.push_back(co);
  out.push_back(seg.master_index());
  return out;
}

std::string render_metrics(const AdminView& v) {
  Exposition w;
  const std::vector<Proc> procs = describe(v);
  w.family("skirmish_build_info", "gauge", "Build version of the running server (value is always 1).");
  w.sample("skirmish_build_info", "version=\"" SKIRMISH_VERSION "\"", uint64_t(1));
  w.family("skirmish_uptime_seconds", "gauge", "Seconds since the master started.");
  w.sample("skirmish_uptime_seconds", "", double(v.now_ms - v.start_ms) / 1000.0);
  w.family("skirmish_accepting", "gauge", "1 while the master accepts connections, 0 while draining.");
  w.sample("skirmish_accepting", "", uint64_t(v.listening && !v.draining ? 1 : 0));
  render_processes(w, procs, v.now_ms);
  render_counters(w, procs);
  render_tables(w, *v.seg);
  render_mailboxes(w, *v.seg, procs);
  return w.take();
}

std::string render_status(const AdminView& v) {
  using nlohmann::json;
  const shm::Segment& seg = *v.seg;
  json procs = json::array();
  for (const Proc& p : describe(v)) {
    json j = {{"role", role_name(p.role)}, {"index", p.index}, {"state", state_name(p.state)},
              {"respawns", p.respawns}};
    if (p.state != shm::ProcessState::Down) j["pid"] = p.pid;
    if (p.role != shm::ProcessRole::Master && p.state != shm::ProcessState::Down)
      j["heartbeat_age_ms"] = v.now_ms - p.heartbeat_ms;
    if (p.role == shm::ProcessRole::Worker) {
      j["connections"] = shared_load(p.counters->connections_open);
      j["matches_owned"] = shared_load(p.counters->matches_owned);
    }
    if (p.os) {
      j["cpu_seconds"] = p.os->cpu_seconds;
      j["rss_bytes"] = p.os->rss_bytes;
      j["open_fds"] = p.os->open_fds;
      j["start_time_s"] = p.os->start_time_seconds;
    }
    procs.push_back(std::move(j));
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
