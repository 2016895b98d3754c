// skirmish-hostile's output: the final table and the JSON summary.
#include <arpa/inet.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loadtest/hostile.h"

namespace skirmish::hostile {

using proto::EnumNameErrorCode;
using proto::ErrorCode;

Counters Results::total() const {
  Counters t;
  for (const Counters& x : by_attack) {
    t.opened += x.opened;
    t.expected += x.expected;
    t.unexpected += x.unexpected;
    t.capped += x.capped;
    t.connect_failed += x.connect_failed;
    t.unfinished += x.unfinished;
    t.still_open += x.still_open;
    t.server_closes += x.server_closes;
    for (size_t i = 0; i < kErrorCodes; ++i) t.errors[i] += x.errors[i];
  }
  return t;
}

std::string ip_text(uint32_t ip) {
  in_addr a{htonl(ip)};
  char b[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, b, sizeof b);
  return b;
}

void print_table(const Options& o, const Results& r) {
  using ull = unsigned long long;
  std::printf("\n%-13s %8s %9s %10s %7s %14s %10s %10s %13s  %s\n", "attack", "opened", "expected", "unexpected",
              "capped", "connect_failed", "unfinished", "still_open", "server_closes", "closed after (ms)");
  auto row = [](const char* name, const Counters& x) {
    char range[48] = "-";
    if (x.close_ms_min != UINT64_MAX)
      std::snprintf(range, sizeof range, "%llu..%llu", ull(x.close_ms_min), ull(x.close_ms_max));
    std::printf("%-13s %8llu %9llu %10llu %7llu %14llu %10llu %10llu %13llu  %s\n", name, ull(x.opened),
                ull(x.expected), ull(x.unexpected), ull(x.capped), ull(x.connect_failed), ull(x.unfinished),
                ull(x.still_open), ull(x.server_closes), range);
  };
  for (size_t i = 0; i < kAttacks; ++i)
    if (o.enabled[i]) row(kAttackNames[i], r.by_attack[i]);
  row("total", r.total());
  if (o.enabled[size_t(Attack::WrongState)]) {
    const Counters& ws = r.by_attack[size_t(Attack::WrongState)];
    std::printf("wrongstate expected: %s %llu, %s %llu, %s %llu\n", kWrongStateNames[0], ull(ws.variant_expected[0]),
                kWrongStateNames[1], ull(ws.variant_expected[1]), kWrongStateNames[2], ull(ws.variant_expected[2]));
  }
  if (o.enabled[size_t(Attack::BadInput)]) {
    const Counters& bi = r.by_attack[size_t(Attack::BadInput)];
    std::printf("badinput expected: %s %llu, %s %llu, %s %llu, %s %llu\n", kBadInputNames[0],
                ull(bi.variant_expected[0]), kBadInputNames[1], ull(bi.variant_expected[1]), kBadInputNames[2],
                ull(bi.variant_expected[2]), kBadInputNames[3], ull(bi.variant_expected[3]));
  }
  std::string errors;
  const Counters t = r.total();
  for (size_t i = 0; i < kErrorCodes; ++i)
    if (t.errors[i] > 0) errors += std::string(errors.empty() ? "" : ", ") + EnumNameErrorCode(ErrorCode(i)) + " " +
                                   std::to_string(t.errors[i]);
  std::printf("Error frames received: %s\n", errors.empty() ? "none" : errors.c_str());
  if (r.rate_skipped > 0) std::printf("rate connections skipped (the loop fell behind): %llu\n", ull(r.rate_skipped));
  if (!r.first_connect_error.empty()) std::printf("first connect failure: %s\n", r.first_connect_error.c_str());
  for (const Sample& s : r.samples)
    std::printf("unexpected: [%6.2fs] %s: %s\n", s.t, kAttackNames[size_t(s.attack)], s.reason.c_str());
}

bool write_report(const Options& o, const Results& r, int exit_code, std::string& error) {
  using nlohmann::json;
  auto counters = [](const Counters& x) {
    json errors = json::object();
    for (size_t i = 0; i < kErrorCodes; ++i)
      if (x.errors[i] > 0) errors[EnumNameErrorCode(ErrorCode(i))] = x.errors[i];
    json j{{"opened", x.opened},
           {"expected", x.expected},
           {"unexpected", x.unexpected},
           {"capped", x.capped},
           {"connect_failed", x.connect_failed},
           {"unfinished", x.unfinished},
           {"still_open", x.still_open},
           {"server_closes", x.server_closes},
           {"errors_received", errors}};
    if (x.close_ms_min != UINT64_MAX) j["closed_after_ms"] = {{"min", x.close_ms_min}, {"max", x.close_ms_max}};
    return j;
  };
  json attacks = json::object();
  for (size_t i = 0; i < kAttacks; ++i)
    if (o.enabled[i]) attacks[kAttackNames[i]] = counters(r.by_attack[i]);
  if (o.enabled[size_t(Attack::WrongState)])
    for (size_t v = 0; v < 3; ++v)
      attacks["wrongstate"]["variants_expected"][kWrongStateNames[v]] =
          r.by_attack[size_t(Attack::WrongState)].variant_expected[v];
  if (o.enabled[size_t(Attack::BadInput)])
    for (size_t v = 0; v < 4; ++v)
      attacks["badinput"]["variants_expected"][kBadInputNames[v]] =
          r.by_attack[size_t(Attack::BadInput)].variant_expected[v];
  json samples = json::array();
  for (const Sample& s : r.samples)
    samples.push_back({{"t_s", s.t}, {"attack", kAttackNames[size_t(s.attack)]}, {"reason", s.reason}});
  json sources = json::array();
  for (uint32_t ip : o.sources) sources.push_back(ip_text(ip));
  const json j{{"tool", "skirmish-hostile"},
               {"options",
                {{"target", o.target},
                 {"duration_s", o.duration_s},
                 {"sources", sources},
                 {"attacks", o.attacks_text},
                 {"slowloris", o.slowloris},
                 {"rate", o.rate},
                 {"flood", o.flood},
                 {"noread", o.noread},
                 {"badinput", o.badinput},
                 {"match_wait_ms", o.match_wait_ms},
                 {"handshake_ms", o.handshake_ms},
                 {"grace_ms", o.grace_ms},
                 {"handshake_frame_bytes", o.handshake_frame_bytes},
                 {"per_address_cap", o.per_address_cap},
                 {"seed", o.seed}}},
               {"elapsed_s", r.elapsed_s},
               {"attacks", attacks},
               {"total", counters(r.total())},
               {"rate_skipped", r.rate_skipped},
               {"first_connect_failure", r.first_connect_error},
               {"unexpected_samples", samples},
               {"exit_code", exit_code}};
  std::ofstream f(o.report);
  f << j.dump(2) << "\n";
  f.close();
  if (!f) {
    error = "cannot write " + o.report;
    return false;
  }
  return true;
}

}  // namespace skirmish::hostile
