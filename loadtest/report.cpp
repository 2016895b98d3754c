#include "loadtest/report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "protocol/skirmish_generated.h"

namespace skirmish::loadtest {

namespace {

using nlohmann::json;

double ms(uint64_t ns) { return double(ns) / 1e6; }
double mean(uint64_t sum, uint64_t n) { return n > 0 ? double(sum) / double(n) : 0.0; }

json hist_json(const Histogram& h, double scale = 1e-6) {
  return json{{"count", h.count()},
              {"mean", h.mean() * scale},
              {"min", double(h.min()) * scale},
              {"p50", double(h.quantile(0.50)) * scale},
              {"p90", double(h.quantile(0.90)) * scale},
              {"p99", double(h.quantile(0.99)) * scale},
              {"p999", double(h.quantile(0.999)) * scale},
              {"max", double(h.max()) * scale}};
}

json metrics_json(const Metrics& m) {
  json errors = json::object();
  for (size_t i = 0; i < m.errors.size(); ++i)
    if (m.errors[i] > 0) errors[proto::EnumNameErrorCode(proto::ErrorCode(i))] = m.errors[i];
  return json{{"latency_ms",
               {{"connect_to_welcome", hist_json(m.connect_welcome)},
                {"ping_rtt", hist_json(m.ping_rtt)},
                {"queue_to_match_found", hist_json(m.queue_match)},
                {"input_to_snapshot", hist_json(m.input_snapshot)},
                {"input_to_snapshot_read_clock", hist_json(m.input_snapshot_read)},
                {"read_delay", hist_json(m.read_delay)}}},
              {"reads", m.reads},
              {"reads_multi_snapshot", m.reads_multi_snapshot},
              {"reads_without_rx_time", m.reads_without_rx_time},
              {"rx_after_read", m.rx_after_read},
              {"latency_negative", m.latency_negative},
              {"snapshot_rate_hz", hist_json(m.snapshot_rate, 1e-3)},
              {"frames_in", m.frames_in},
              {"frames_out", m.frames_out},
              {"bytes_in", m.bytes_in},
              {"bytes_out", m.bytes_out},
              {"inputs_sent", m.inputs_sent},
              {"bot_idle", m.bot_idle},
              {"snapshots", m.snapshots},
              {"snapshot_bytes",
               {{"full", {{"count", m.snapshots_full},
                          {"bytes", m.snapshot_bytes_full},
                          {"mean", mean(m.snapshot_bytes_full, m.snapshots_full)}}},
                {"delta", {{"count", m.snapshots_delta},
                           {"bytes", m.snapshot_bytes_delta},
                           {"mean", mean(m.snapshot_bytes_delta, m.snapshots_delta)}}},
                {"view_mean", mean(m.view_bytes, m.snapshots)},
                {"missing_base", m.snapshots_missing_base},
                {"bad_delta", m.snapshots_bad_delta}}},
              {"matches_without_bot", m.matches_without_bot},
              {"matches_found", m.matches_found},
              {"matches_ended", m.matches_ended},
              {"connect_failures", m.connect_failures},
              {"drops", m.drops},
              {"resumes", m.resumes},
              {"write_queue_full", m.write_queue_full},
              {"churned", m.churned},
              {"errors", errors},
              {"errors_total", m.error_total()}};
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string fmt(double v, int prec = 1) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

struct Line {
  std::string name, color;
  std::vector<double> ys;
};

// A line chart in SVG: x = the run's seconds, one polyline per series, a
// y axis from 0 to the largest value, a legend.
std::string svg_chart(const std::string& title, const std::string& unit, const std::vector<double>& xs,
                      const std::vector<Line>& lines) {
  const double W = 760, H = 240, L = 60, R = 20, T = 30, B = 34;
  double ymax = 0, xmax = xs.empty() ? 1 : xs.back();
  for (const Line& l : lines)
    for (double y : l.ys) ymax = std::max(ymax, y);
  if (ymax <= 0) ymax = 1;
  if (xmax <= 0) xmax = 1;
  std::ostringstream o;
  o << "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << esc(title) << "\">\n";
  o << "<title>" << esc(title) << "</title>\n";
  o << "<text x=\"" << L << "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" << esc(title) << "</text>\n";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double y = T + (H - T - B) * (1 - i / 4.0);
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << y + 4
      << "\" font-size=\"11\" text-anchor=\"end\">" << fmt(ymax * i / 4, ymax < 10 ? 2 : 0) << "</text>\n";
  }
  for (int i = 0; i <= 5; ++i) {
    const double x = L + (W - L - R) * i / 5.0;
    o << "<text x=\"" << x << "\" y=\"" << H - B + 16 << "\" font-size=\"11\" text-anchor=\"middle\">"
      << fmt(xmax * i / 5, 0) << " s</text>\n";
  }
  o << "<text x=\"12\" y=\"" << T + (H - T - B) / 2 << "\" font-size=\"11\" transform=\"rotate(-90 12 "
    << T + (H - T - B) / 2 << ")\" text-anchor=\"middle\">" << esc(unit) << "</text>\n";
  double lx = W - R - 10;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    lx -= 9 * double(it->name.size()) + 24;
    o << "<rect x=\"" << lx << "\" y=\"8\" width=\"12\" height=\"3\" fill=\"" << it->color << "\"/><text x=\""
      << lx + 16 << "\" y=\"13\" font-size=\"11\">" << esc(it->name) << "</text>\n";
  }
  for (const Line& l : lines) {
    o << "<polyline fill=\"none\" stroke=\"" << l.color << "\" stroke-width=\"1.5\" points=\"";
    for (size_t i = 0; i < xs.size() && i < l.ys.size(); ++i)
      o << fmt(L + (W - L - R) * xs[i] / xmax, 1) << "," << fmt(T + (H - T - B) * (1 - l.ys[i] / ymax), 1) << " ";
    o << "\"/>\n";
  }
  o << "</svg></figure>\n";
  return o.str();
}

}  // namespace

std::string summary_ms(const Histogram& h) {
  if (h.count() == 0) return "-";
  char b[160];
  std::snprintf(b, sizeof b, "p50 %.1f p90 %.1f p99 %.1f max %.1f ms (n=%llu)", ms(h.quantile(0.5)),
                ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.max()), (unsigned long long)h.count());
  return b;
}

std::string describe_game(const GameInfo& g) {
  std::string s = g.name.empty() ? std::string("(no name)") : g.name;
  if (g.table == nullptr) return s + ": no module here (" + g.error + "): the bots sent no input";
  s += " " + g.module_version + " (" + g.module_path + ")";
  s += g.has_bot_input() ? ": inputs from its bot_input" : ": the module has no bot_input: the bots sent no input";
  if (!g.note.empty()) s += "; " + g.note;
  return s;
}

std::string snapshot_summary(const Metrics& m) {
  char b[256];
  std::snprintf(b, sizeof b,
                "full %llu, mean %.1f bytes; delta %llu, mean %.1f bytes; view mean %.1f bytes; %llu missing base, "
                "%llu bad delta",
                (unsigned long long)m.snapshots_full, mean(m.snapshot_bytes_full, m.snapshots_full),
                (unsigned long long)m.snapshots_delta, mean(m.snapshot_bytes_delta, m.snapshots_delta),
                mean(m.view_bytes, m.snapshots), (unsigned long long)m.snapshots_missing_base,
                (unsigned long long)m.snapshots_bad_delta);
  return b;
}

const char* rx_clock_name(const Options& o) { return o.rx_kernel ? "kernel" : "read"; }

const char* read_mode_name(const Options& o) {
  if (o.read_at_slots) return o.slot_reads_own ? "slots-own" : "slots-all";
  return o.rx_kernel ? "readable-epoll" : "readable-libuv";
}

std::string rx_clock_summary(const Run& run) {
  const Options& o = run.opts;
  const Metrics& m = run.total;
  std::string s = o.rx_kernel ? "kernel RX timestamps (SO_TIMESTAMPING, software)" : "read time (when the bot read it)";
  if (o.read_at_slots)
    s += o.slot_reads_own ? "; reads at the input phase slots, each slot its own bots"
                          : "; reads at the input phase slots, every ready bot of the thread";
  else
    s += o.rx_kernel ? "; reads on readability (epoll set)" : "; reads on readability (libuv)";
  char b[200];
  std::snprintf(b, sizeof b, "; %llu reads, %llu (%.3f %%) with more than one snapshot",
                (unsigned long long)m.reads, (unsigned long long)m.reads_multi_snapshot,
                m.reads > 0 ? 100.0 * double(m.reads_multi_snapshot) / double(m.reads) : 0.0);
  s += b;
  if (o.rx_kernel) {
    std::snprintf(b, sizeof b, "; without a timestamp %llu, dated after the read %llu, negative latencies %llu",
                  (unsigned long long)m.reads_without_rx_time, (unsigned long long)m.rx_after_read,
                  (unsigned long long)m.latency_negative);
    s += b;
  }
  return s;
}

bool write_json(const Run& run, const std::string& path, std::string& error) {
  const Options& o = run.opts;
  json j;
  j["tool"] = "skirmish-loadtest";
  j["started_at"] = run.started_at;
  j["elapsed_s"] = run.elapsed_s;
  j["options"] = {{"host", o.host},         {"port", o.port},
                  {"bots", o.bots},         {"ramp", o.ramp},
                  {"duration_s", o.duration_s}, {"seed", o.seed},
                  {"threads", o.threads},   {"rate", o.rate},
                  {"ping_interval_s", o.ping_interval_s}, {"warmup_s", o.warmup_s},
                  {"churn_per_min", o.churn_per_min},
                  {"max_p99_ms", o.max_p99_ms}, {"max_error_rate", o.max_error_rate},
                  {"server_pid", o.server_pid},
                  {"read_at_slots", o.read_at_slots}, {"rx_clock", rx_clock_name(o)},
                  {"read_mode", read_mode_name(o)}};
  j["rx_clock"] = rx_clock_name(o);
  j["machine"] = {{"hostname", run.machine.hostname},
                  {"kernel", run.machine.kernel},
                  {"cpu_model", run.machine.cpu_model},
                  {"cpus", run.machine.cpus},
                  {"mem_total_kib", run.machine.mem_total_kib}};
  j["server"] = {{"version", run.server_version},
                 {"address", o.host + ":" + std::to_string(o.port)},
                 {"cpu_cores", run.server_cpu_cores},
                 {"cpu_cores_per_1000_bots", run.server_cores_per_1000_bots},
                 {"pss_idle_kib", run.server_pss_idle_kib},
                 {"pss_kib", run.server_pss_kib},
                 {"pss_per_bot_kib", run.server_pss_per_bot_kib}};
  json games = json::array();
  for (const GameInfo& g : run.games)
    games.push_back({{"name", g.name},
                     {"server_version", g.server_version},
                     {"module_version", g.module_version},
                     {"module_path", g.module_path},
                     {"loaded", g.table != nullptr},
                     {"bot_input", g.has_bot_input()},
                     {"error", g.error},
                     {"note", g.note}});
  j["games"] = games;
  j["loadtest_cpu_cores"] = run.self_cpu_cores;
  j["total"] = metrics_json(run.total);
  j["steady"] = metrics_json(run.steady);
  j["error_rate"] = run.error_rate;
  j["slo"] = {{"passed", run.slo_failures.empty()}, {"failures", run.slo_failures}};
  json series = json::array();
  for (const Sample& s : run.series)
    series.push_back({{"t", s.t},
                      {"connecting", s.gauges.connecting},
                      {"connected", s.gauges.connected()},
                      {"queued", s.gauges.queued},
                      {"in_match", s.gauges.in_match},
                      {"closed", s.gauges.closed},
                      {"frames_in", s.frames_in},
                      {"frames_out", s.frames_out},
                      {"bytes_in", s.bytes_in},
                      {"bytes_out", s.bytes_out},
                      {"errors", s.errors},
                      {"drops", s.drops},
                      {"matches_ended", s.matches_ended},
                      {"input_to_snapshot_ms",
                       {{"p50", s.input_snapshot_ms[0]},
                        {"p90", s.input_snapshot_ms[1]},
                        {"p99", s.input_snapshot_ms[2]},
                        {"max", s.input_snapshot_ms[3]}}},
                      {"ping_p99_ms", s.ping_p99_ms},
                      {"server_cpu_cores", s.server_cpu_cores},
                      {"server_pss_kib", s.server_pss_kib},
                      {"loadtest_cpu_cores", s.self_cpu_cores}});
  j["series"] = series;
  std::ofstream f(path);
  if (!f) {
    error = "cannot write " + path;
    return false;
  }
  f << j.dump(2) << "\n";
  return bool(f);
}

bool write_html(const Run& run, const std::string& path, std::string& error) {
  std::vector<double> xs;
  Line p50{"p50", "#1f77b4", {}}, p90{"p90", "#2ca02c", {}}, p99{"p99", "#d62728", {}}, mx{"max", "#999999", {}};
  Line conn{"connected", "#1f77b4", {}}, queued{"queued", "#ff7f0e", {}}, playing{"in match", "#2ca02c", {}};
  Line fin{"frames in/s", "#1f77b4", {}}, fout{"frames out/s", "#d62728", {}};
  Line scpu{"server", "#d62728", {}}, lcpu{"load test", "#1f77b4", {}};
  bool have_server = false;
  for (const Sample& s : run.series) {
    xs.push_back(s.t);
    p50.ys.push_back(s.input_snapshot_ms[0]);
    p90.ys.push_back(s.input_snapshot_ms[1]);
    p99.ys.push_back(s.input_snapshot_ms[2]);
    mx.ys.push_back(s.input_snapshot_ms[3]);
    conn.ys.push_back(s.gauges.connected());
    queued.ys.push_back(s.gauges.queued);
    playing.ys.push_back(s.gauges.in_match);
    fin.ys.push_back(double(s.frames_in));
    fout.ys.push_back(double(s.frames_out));
    scpu.ys.push_back(std::max(0.0, s.server_cpu_cores));
    lcpu.ys.push_back(s.self_cpu_cores);
    have_server = have_server || s.server_cpu_cores >= 0;
  }
  const Metrics& m = run.steady;
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>skirmish-loadtest report</title>\n"
       "<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{text-align:left;background:#f4f4f4}"
       "figure{margin:16px 0}.fail{color:#b00}.ok{color:#080}</style>\n</head><body>\n";
  o << "<h1>skirmish-loadtest</h1>\n<p>" << esc(run.started_at) << " &middot; " << run.opts.bots << " bots, "
    << fmt(run.elapsed_s, 0) << " s, " << run.opts.threads << " thread(s), inputs "
    << (run.opts.rate > 0 ? fmt(run.opts.rate, 0) + "/s on a clock" : std::string("one per snapshot"))
    << " &middot; server " << esc(run.server_version.empty() ? "?" : run.server_version) << " at "
    << esc(run.opts.host) << ":" << run.opts.port << " &middot; " << esc(run.machine.cpu_model) << ", "
    << run.machine.cpus << " CPUs</p>\n";
  for (const GameInfo& g : run.games) o << "<p>game " << esc(describe_game(g)) << "</p>\n";
  if (run.games.empty()) o << "<p>game: no match was found</p>\n";
  o << "<p class=\"" << (run.slo_failures.empty() ? "ok\">SLOs met" : "fail\">SLOs missed: ");
  for (const std::string& f : run.slo_failures) o << esc(f) << "; ";
  o << "</p>\n<h2>Latency after the warm-up (ms)</h2>\n<table><tr><th>metric</th><th>n</th><th>p50</th><th>p90</th>"
       "<th>p99</th><th>max</th></tr>\n";
  auto row = [&](const char* name, const Histogram& h) {
    o << "<tr><th>" << name << "</th><td>" << h.count() << "</td><td>" << fmt(ms(h.quantile(0.5)), 2) << "</td><td>"
      << fmt(ms(h.quantile(0.9)), 2) << "</td><td>" << fmt(ms(h.quantile(0.99)), 2) << "</td><td>"
      << fmt(ms(h.max()), 2) << "</td></tr>\n";
  };
  row("input &rarr; snapshot", m.input_snapshot);
  row("ping RTT", m.ping_rtt);
  row("connect &rarr; Welcome", run.total.connect_welcome);
  row("queue &rarr; MatchFound", run.total.queue_match);
  o << "</table>\n<h2>Totals</h2>\n<table>\n";
  auto kv = [&](const char* k, const std::string& v) { o << "<tr><th>" << k << "</th><td>" << v << "</td></tr>\n"; };
  kv("frames in / out", std::to_string(run.total.frames_in) + " / " + std::to_string(run.total.frames_out));
  kv("bytes in / out", std::to_string(run.total.bytes_in) + " / " + std::to_string(run.total.bytes_out));
  kv("matches found / ended", std::to_string(run.total.matches_found) + " / " + std::to_string(run.total.matches_ended));
  kv("snapshot rate per bot (Hz, p50)", fmt(double(run.total.snapshot_rate.quantile(0.5)) / 1000.0, 1));
  const Metrics& t = run.total;
  kv("snapshots full: count / mean bytes", std::to_string(t.snapshots_full) + " / " +
                                               fmt(mean(t.snapshot_bytes_full, t.snapshots_full), 1));
  kv("snapshots delta: count / mean bytes", std::to_string(t.snapshots_delta) + " / " +
                                                fmt(mean(t.snapshot_bytes_delta, t.snapshots_delta), 1));
  kv("view size (bytes, mean)", fmt(mean(t.view_bytes, t.snapshots), 1));
  kv("deltas skipped: missing base / bad", std::to_string(t.snapshots_missing_base) + " / " +
                                               std::to_string(t.snapshots_bad_delta));
  kv("inputs sent / bot had none", std::to_string(t.inputs_sent) + " / " + std::to_string(t.bot_idle));
  kv("matches with no bot_input", std::to_string(t.matches_without_bot));
  kv("errors / drops / failed connects", std::to_string(run.total.error_total()) + " / " +
                                            std::to_string(run.total.drops) + " / " +
                                            std::to_string(run.total.connect_failures));
  if (run.server_cpu_cores >= 0) {
    kv("server CPU (cores, steady)", fmt(run.server_cpu_cores, 3));
    kv("server CPU per 1,000 bots (cores)", fmt(run.server_cores_per_1000_bots, 3));
    kv("server memory per bot above idle (KiB, PSS)", fmt(run.server_pss_per_bot_kib, 2));
  }
  kv("load test CPU (cores, steady)", fmt(run.self_cpu_cores, 3));
  o << "</table>\n";
  o << svg_chart("Input to snapshot latency per second", "ms", xs, {p50, p90, p99, mx});
  o << svg_chart("Bots over time", "bots", xs, {conn, queued, playing});
  o << svg_chart("Throughput", "frames per second", xs, {fin, fout});
  if (have_server) o << svg_chart("CPU", "cores", xs, {scpu, lcpu});
  o << "</body></html>\n";
  std::ofstream f(path);
  if (!f) {
    error = "cannot write " + path;
    return false;
  }
  f << o.str();
  return bool(f);
}

}  // namespace skirmish::loadtest
