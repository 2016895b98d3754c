// /metrics and /status of the real server say what exists, and say it the
// way Prometheus and its clients do: only processes that exist (the master
// up, with its pid), the same labels on every series of a process, every
// counter of the table from the start, the standard process_* series read
// from /proc, tick drift as a histogram, numbers in the Go client's form,
// promtool satisfied.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "master/exposition.h"
#include "shm/counters.h"
#include "tests/support/server_process.h"
#include "tests/support/test_client.h"

using namespace skirmish;
using namespace skirmish::test;
using namespace skirmish::proto;

namespace {

struct Sample {
  std::string name;    // as written (a histogram's NAME_bucket)
  std::string family;  // its family
  std::map<std::string, std::string> labels;
  std::string value;   // as written
};

struct Exposition {
  std::map<std::string, std::string> types;
  std::vector<Sample> samples;

  std::vector<const Sample*> of(const std::string& family) const {
    std::vector<const Sample*> out;
    for (const Sample& s : samples)
      if (s.family == family) out.push_back(&s);
    return out;
  }
  // The sample of `name` with exactly these labels, or nullptr.
  const Sample* find(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const Sample& s : samples)
      if (s.name == name && s.labels == labels) return &s;
    return nullptr;
  }
};

std::string body_of(const std::string& response) {
  REQUIRE(response.rfind("HTTP/1.1 200", 0) == 0);
  return response.substr(response.find("\r\n\r\n") + 4);
}

Exposition parse(const std::string& text) {
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+))");
  const std::regex label(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)\"(,|$))");
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    INFO(line);
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, m, type)) {
      e.types[m[1]] = m[2];
      continue;
    }
    REQUIRE(std::regex_match(line, m, sample));
    Sample s{m[1], m[1], {}, m[3]};
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!e.types.count(s.family) && s.family.ends_with(suffix)) s.family.resize(s.family.size() - std::strlen(suffix));
    REQUIRE(e.types.count(s.family) == 1);
    const std::string labels = m[2];
    for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label); it != std::sregex_iterator(); ++it)
      REQUIRE(s.labels.emplace((*it)[1], (*it)[2]).second);
    e.samples.push_back(std::move(s));
  }
  return e;
}

Exposition scrape(const ServerProcess& srv) { return parse(body_of(http_get(srv.admin_port(), "/metrics"))); }

nlohmann::json status(const ServerProcess& srv) {
  return nlohmann::json::parse(body_of(http_get(srv.admin_port(), "/status")));
}

// Healthy: the coordinator and every worker Up (the master's own row is
// what the first test checks).
bool healthy(const ServerProcess& srv, int workers) {
  if (http_get(srv.admin_port(), "/healthz").rfind("HTTP/1.1 200", 0) != 0) return false;
  int up = 0;
  const nlohmann::json st = status(srv);  // kept: a range-for over a temporary's member dangles
  for (const auto& p : st["processes"]) up += p["role"] != "master" && p["state"] == "up";
  return up == workers + 1;
}

std::string key(const Sample& s) { return s.labels.at("role") + "/" + s.labels.at("index"); }

// role/index of every process /status lists.
std::set<std::string> processes_of(const nlohmann::json& st) {
  std::set<std::string> out;
  for (const auto& p : st["processes"])
    out.insert(p["role"].get<std::string>() + "/" + std::to_string(p["index"].get<int>()));
  return out;
}

}  // namespace

TEST_CASE("a healthy 2-worker server lists exactly its master, coordinator and workers, all up, with real pids") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(wait_until([&] { return healthy(srv, 2); }, 10s));

  const nlohmann::json st = status(srv);
  INFO(st.dump(2));
  std::map<std::string, pid_t> pids;  // role + local name -> pid
  for (const auto& p : st["processes"]) {
    REQUIRE(p["state"] == "up");
    REQUIRE(p.contains("pid"));
    std::string name = p["role"];
    if (name == "worker") name += " " + std::to_string(p["index"].get<int>());
    REQUIRE(pids.emplace(name, p["pid"].get<pid_t>()).second);
  }
  // No unstarted slot of the second bank; the master is itself.
  REQUIRE(pids.size() == 4);
  REQUIRE(pids["master"] == srv.pid());
  REQUIRE(pids["coordinator"] == child_titled(srv.pid(), "skirmish: coordinator"));
  REQUIRE(pids["worker 0"] == child_titled(srv.pid(), "skirmish: worker 0"));
  REQUIRE(pids["worker 1"] == child_titled(srv.pid(), "skirmish: worker 1"));
  for (auto& [name, pid] : pids) REQUIRE(pid > 0);

  // The alert `skirmish_process_up == 0` has nothing to fire on.
  const Exposition m = scrape(srv);
  const auto ups = m.of("skirmish_process_up");
  REQUIRE(ups.size() == 4);
  std::set<std::string> listed;
  for (const Sample* s : ups) {
    INFO(s->name << " " << key(*s));
    REQUIRE(s->value == "1");
    listed.insert(key(*s));
  }
  REQUIRE(listed == processes_of(st));
}

TEST_CASE("every counter of the table, every Error code and every histogram is exported from the start at 0") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(wait_until([&] { return healthy(srv, 2); }, 10s));
  const nlohmann::json st = status(srv);
  const Exposition m = scrape(srv);

  std::map<std::string, std::vector<std::string>> by_role;  // role -> its "index" values
  for (const auto& p : st["processes"]) by_role[p["role"]].push_back(std::to_string(p["index"].get<int>()));
  REQUIRE(by_role["worker"].size() == 2);
  auto roles_keeping = [](shm::Keeper k) {
    switch (k) {
      case shm::Keeper::Worker: return std::vector<std::string>{"worker"};
      case shm::Keeper::Coordinator: return std::vector<std::string>{"coordinator"};
      case shm::Keeper::Master: return std::vector<std::string>{"master"};
      case shm::Keeper::Any: break;
    }
    return std::vector<std::string>{"worker", "coordinator", "master"};
  };
  int checked = 0;
  for (const shm::CounterSpec& c : shm::kCounterSpecs) {
    INFO(c.metric << "{" << c.labels << "}");
    REQUIRE(m.types.count(c.metric) == 1);
    REQUIRE(m.types.at(c.metric) == (c.kind == shm::CounterKind::Counter ? "counter" : "gauge"));
    std::map<std::string, std::string> fixed;
    if (*c.labels != '\0') {
      const std::string l = c.labels;  // one k="v"
      fixed[l.substr(0, l.find('='))] = l.substr(l.find('"') + 1, l.size() - l.find('"') - 2);
    }
    for (const std::string& role : roles_keeping(c.role))
      for (const std::string& index : by_role[role]) {
        auto labels = fixed;
        labels["role"] = role;
        labels["index"] = index;
        INFO(role << " " << index);
        const Sample* s = m.find(c.metric, labels);
        REQUIRE(s != nullptr);
        CHECK(s->value == "0");  // nothing has happened yet
        ++checked;
      }
  }
  REQUIRE(checked >= int(shm::kCounterCount));

  // The six counters the workers kept without exporting, by name.
  for (const char* name : {"skirmish_decode_errors_total", "skirmish_rate_limited_total",
                           "skirmish_handshake_timeouts_total", "skirmish_idle_timeouts_total",
                           "skirmish_inputs_rejected_total", "skirmish_close_reports_dropped_total"})
    for (const std::string& index : by_role["worker"]) {
      INFO(name << " worker " << index);
      REQUIRE(m.find(name, {{"role", "worker"}, {"index", index}}) != nullptr);
    }

  // Every Error code of every worker, before any error was sent.
  for (const std::string& index : by_role["worker"])
    for (auto code = uint32_t(ErrorCode::MIN) + 1; code <= uint32_t(ErrorCode::MAX); ++code) {
      const std::string name = EnumNameErrorCode(ErrorCode(code));
      INFO("skirmish_errors_sent_total code " << name << " worker " << index);
      const Sample* s = m.find("skirmish_errors_sent_total", {{"role", "worker"}, {"index", index}, {"code", name}});
      REQUIRE(s != nullptr);
      REQUIRE(s->value == "0");
    }

  for (const shm::HistogramSpec& h : shm::kHistogramSpecs) {
    INFO(h.metric);
    REQUIRE(m.types.count(h.metric) == 1);
    REQUIRE(m.types.at(h.metric) == "histogram");
    for (const std::string& role : roles_keeping(h.role))
      for (const std::string& index : by_role[role]) {
        REQUIRE(m.find(std::string(h.metric) + "_count", {{"role", role}, {"index", index}}) != nullptr);
        REQUIRE(m.find(std::string(h.metric) + "_bucket", {{"role", role}, {"index", index}, {"le", "+Inf"}}) !=
                nullptr);
      }
  }
}

TEST_CASE("every series of a process carries role and index, and the process_* series are there for each") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(wait_until([&] { return healthy(srv, 2); }, 10s));
  TestClient c;  // some traffic, so every kind of sample has a value
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello("labels"));
  REQUIRE(c.recv_type(Message::Welcome));
  const std::set<std::string> procs = processes_of(status(srv));
  const Exposition m = scrape(srv);

  // Series that describe the whole server, not one process.
  const std::set<std::string> server_wide = {
      "skirmish_build_info",  "skirmish_uptime_seconds", "skirmish_accepting",       "skirmish_matches_active",
      "skirmish_tickets_queued", "skirmish_players",     "skirmish_table_rows",      "skirmish_table_capacity",
      "skirmish_table_high_water", "skirmish_table_full_total", "skirmish_table_lock_recoveries_total"};
  std::map<std::string, std::set<std::string>> seen;  // family -> role/index
  for (const Sample& s : m.samples) {
    INFO(s.name);
    REQUIRE(s.labels.count("worker") == 0);  // the old label
    if (server_wide.count(s.family)) {
      REQUIRE(s.labels.count("role") == 0);
      continue;
    }
    REQUIRE(s.labels.count("role") == 1);
    REQUIRE(s.labels.count("index") == 1);
    REQUIRE(procs.count(key(s)) == 1);  // a process that exists
    seen[s.family].insert(key(s));
  }
  for (const char* family : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                             "process_start_time_seconds", "skirmish_process_up", "skirmish_process_respawns_total",
                             "skirmish_mailbox_depth"}) {
    INFO(family);
    REQUIRE(seen[family] == procs);
  }
  REQUIRE(m.types.at("process_cpu_seconds_total") == "counter");
  REQUIRE(m.types.at("process_start_time_seconds") == "gauge");
}

TEST_CASE("the process_* values are those of the real processes") {
  const double test_start = double(std::time(nullptr));
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(wait_until([&] { return healthy(srv, 2); }, 10s));
  const nlohmann::json st = status(srv);
  const Exposition m = scrape(srv);
  const double now = double(std::time(nullptr));
  for (const auto& p : st["processes"]) {
    const std::map<std::string, std::string> l{{"role", p["role"]}, {"index", std::to_string(p["index"].get<int>())}};
    INFO(p.dump());
    auto value = [&](const char* name) {
      const Sample* s = m.find(name, l);
      REQUIRE(s != nullptr);
      return std::stod(s->value);
    };
    // Started during this test (seconds since the epoch, as the clients say).
    const double started = value("process_start_time_seconds");
    REQUIRE(started >= test_start - 1);
    REQUIRE(started <= now + 1);
    REQUIRE(value("process_open_fds") > 0);
    // Within a few descriptors of what /proc says now (the scrape's own
    // connection comes and goes).
    const pid_t pid = p["pid"].get<pid_t>();
    REQUIRE(std::abs(value("process_open_fds") - double(fd_count(pid))) <= 4);
    REQUIRE(value("process_resident_memory_bytes") > 1 << 20);
    REQUIRE(value("process_resident_memory_bytes") < double(rss_kib(pid) * 1024) * 2);
    const double cpu = value("process_cpu_seconds_total");
    REQUIRE(cpu >= 0);
    REQUIRE(cpu <= (now - test_start + 2) * double(sysconf(_SC_NPROCESSORS_ONLN)));
  }
}

TEST_CASE("tick drift is a histogram per worker that fills as matches tick, and no maximum since start") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(wait_until([&] { return healthy(srv, 2); }, 10s));
  std::vector<std::unique_ptr<TestClient>> players;
  for (int i = 0; i < 4; ++i) {  // match_size = 4 in configs/skirmish.toml
    auto c = std::make_unique<TestClient>();
    REQUIRE(c->connect(srv.port()));
    REQUIRE(c->send_hello("drift" + std::to_string(i)));
    REQUIRE(c->recv_type(Message::Welcome));
    REQUIRE(c->send_frame(c->enc.finish(CreateQueueJoin(c->enc.builder(), 0, 0, 1))));
    players.push_back(std::move(c));
  }
  for (auto& c : players) REQUIRE(c->recv_type(Message::MatchFound, 10s));
  auto passes = [&] {
    double n = 0;
    const Exposition now = scrape(srv);  // of() points into it
    for (const Sample* s : now.of("skirmish_tick_drift_seconds"))
      if (s->name == "skirmish_tick_drift_seconds_count") n += std::stod(s->value);
    return n;
  };
  REQUIRE(wait_until([&] { return passes() >= 10; }, 10s));
  const Exposition m = scrape(srv);
  REQUIRE(m.types.count("skirmish_tick_drift_max_seconds") == 0);
  REQUIRE(m.types.at("skirmish_tick_drift_seconds") == "histogram");
  for (const char* index : {"0", "1"}) {
    // Cumulative buckets: never decreasing, +Inf equal to the count.
    double last = 0;
    const Sample* inf = nullptr;
    for (const Sample* s : m.of("skirmish_tick_drift_seconds")) {
      if (s->name != "skirmish_tick_drift_seconds_bucket" || s->labels.at("index") != index) continue;
      REQUIRE(std::stod(s->value) >= last);
      last = std::stod(s->value);
      if (s->labels.at("le") == "+Inf") inf = s;
    }
    REQUIRE(inf != nullptr);
    const Sample* count = m.find("skirmish_tick_drift_seconds_count", {{"role", "worker"}, {"index", index}});
    REQUIRE(count != nullptr);
    REQUIRE(inf->value == count->value);
  }
}

TEST_CASE("numbers are printed as the Prometheus Go client prints them, and promtool agrees") {
  ServerProcess srv({"--workers", "2"});
  REQUIRE(srv.wait_ready());
  REQUIRE(wait_until([&] { return healthy(srv, 2); }, 10s));
  TestClient c;
  REQUIRE(c.connect(srv.port()));
  REQUIRE(c.send_hello("numbers"));
  REQUIRE(c.recv_type(Message::Welcome));
  // Let uptime and heartbeat ages reach values that are not whole seconds.
  REQUIRE(wait_until([&] { return http_get(srv.admin_port(), "/metrics").find("skirmish_uptime_seconds 0.") ==
                                  std::string::npos; }, 5s));
  const std::string text = body_of(http_get(srv.admin_port(), "/metrics"));
  const Exposition m = parse(text);
  const std::regex integer(R"(0|[1-9][0-9]*)");
  int floats = 0;
  for (const Sample& s : m.samples) {
    INFO(s.name << " " << s.value);
    if (std::regex_match(s.value, integer) || s.value == "+Inf" || s.value == "NaN") continue;
    // The shortest form that reads back to the same double (not
    // 0.098000000000000004, not 1.2e+00).
    REQUIRE(master::format_value(std::stod(s.value)) == s.value);
    ++floats;
  }
  REQUIRE(floats > 0);
  for (const Sample& s : m.samples)
    if (s.labels.count("le")) {
      INFO(s.name << " le=" << s.labels.at("le"));
      const std::string& le = s.labels.at("le");
      REQUIRE((le == "+Inf" || master::format_value(std::stod(le)) == le));
    }
  REQUIRE(m.find("skirmish_tick_drift_seconds_bucket", {{"role", "worker"}, {"index", "0"}, {"le", "5e-05"}}));
  std::string coordinator;
  const nlohmann::json st = status(srv);
  for (const auto& p : st["processes"])
    if (p["role"] == "coordinator") coordinator = std::to_string(p["index"].get<int>());
  REQUIRE(m.find("skirmish_matchmaking_wait_seconds_bucket",
                 {{"role", "coordinator"}, {"index", coordinator}, {"le", "0.1"}}));

  REQUIRE(access("/usr/bin/promtool", X_OK) == 0);  // scripts/install-deps.sh installs it
  const std::string path = "/tmp/skirmish-test-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << text;
  const std::string out = path + ".out";
  const int rc = std::system(("/usr/bin/promtool check metrics < " + path + " > " + out + " 2>&1").c_str());
  INFO(read_file(out));
  unlink(path.c_str());
  unlink(out.c_str());
  REQUIRE(rc == 0);
}
