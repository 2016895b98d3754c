// skirmish-game-check: the SDK's determinism harness (skirmish/game_check.h)
// on a module file, from the command line.
//
//   skirmish-game-check MODULE.so [--ticks N] [--seed S] [--players P]
//                       [--tick-rate HZ] [--param key=value]...
//
// Loads the module exactly as the server does (server/module: dlopen, the
// table checks, check_match with the params), then runs game_check::run:
// init twice, N steps of random and bot inputs on two copies compared byte
// for byte after every step, every seat's view and the spectator's checked.
// Exit codes: 0 OK; 1 a divergence (the line names the tick); 2 a bad
// module (refused at load, params refused, a view out of bounds, ...) or
// bad arguments. One line on stderr for any failure, a summary on stdout.
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "module/module.h"
#include "skirmish/game_check.h"

namespace {

int usage(const char* why) {
  std::fprintf(stderr,
               "skirmish-game-check: %s\n"
               "usage: skirmish-game-check MODULE.so [--ticks N] [--seed S] [--players P] [--tick-rate HZ] "
               "[--param key=value]...\n",
               why);
  return 2;
}

bool parse_u64(const char* s, std::uint64_t& out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-') return false;
  out = v;
  return true;
}

// key=value: an integer, true/false, a float, else a string (as TOML would type it).
bool parse_param(const std::string& kv, skirmish::module::GameParam& p) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  p.key = kv.substr(0, eq);
  const std::string v = kv.substr(eq + 1);
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(v.c_str(), &end, 10);
  if (!v.empty() && errno == 0 && *end == '\0') {
    p.type = SKIRMISH_PARAM_INT;
    p.i = i;
    return true;
  }
  if (v == "true" || v == "false") {
    p.type = SKIRMISH_PARAM_BOOL;
    p.i = v == "true";
    return true;
  }
  errno = 0;
  const double f = std::strtod(v.c_str(), &end);
  if (!v.empty() && errno == 0 && *end == '\0') {
    p.type = SKIRMISH_PARAM_FLOAT;
    p.f = f;
    return true;
  }
  p.type = SKIRMISH_PARAM_STRING;
  p.s = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  std::uint64_t ticks = 10000, seed = 1, players = 0, hz = 0;
  std::vector<skirmish::module::GameParam> params;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::uint64_t& out, std::uint64_t lo, std::uint64_t hi) {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], out) || out < lo || out > hi) return false;
      ++i;
      return true;
    };
    if (a == "--ticks") {
      if (!value(ticks, 1, 100000000)) return usage("--ticks takes 1..100000000");
    } else if (a == "--seed") {
      if (!value(seed, 0, UINT64_MAX)) return usage("--seed takes an unsigned integer");
    } else if (a == "--players") {
      if (!value(players, 1, SKIRMISH_MAX_SEATS)) return usage("--players takes 1..16");
    } else if (a == "--tick-rate") {
      if (!value(hz, 1, 1000)) return usage("--tick-rate takes 1..1000");
    } else if (a == "--param") {
      skirmish::module::GameParam p;
      if (i + 1 >= argc || !parse_param(argv[i + 1], p)) return usage("--param takes key=value");
      params.push_back(std::move(p));
      ++i;
    } else if (a == "-h" || a == "--help") {
      usage("checks a game module's determinism and bounds (docs/games.md)");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return usage(("unknown option " + a).c_str());
    } else if (path.empty()) {
      path = a;
    } else {
      return usage("one module at a time");
    }
  }
  if (path.empty()) return usage("no module given");

  std::string error;
  const auto m = skirmish::module::load(path, skirmish::module::Limits{}, error);
  if (!m) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  const skirmish_game_v1_t* t = m->game;
  if (players == 0) players = t->min_players;
  if (hz == 0) hz = t->min_tick_rate_hz <= 30 && t->max_tick_rate_hz >= 30 ? 30 : t->min_tick_rate_hz;
  const skirmish::module::GameParams gp(params, std::uint32_t(hz));
  if (!skirmish::module::check_match(*m, gp, std::uint32_t(players), error)) {
    std::fprintf(stderr, "game module %s (%s): %s\n", m->path.c_str(), t->name, error.c_str());
    return 2;
  }
  skirmish::game_check::Options o;
  o.ticks = std::uint32_t(ticks);
  o.seed = seed;
  o.players = std::uint32_t(players);
  o.params = gp.view();
  const skirmish::game_check::Result r = skirmish::game_check::run(t, o);
  if (r.status != skirmish::game_check::Status::Ok) {
    std::fprintf(stderr, "%s %s: %s\n", t->name, r.status == skirmish::game_check::Status::Divergence ? "DIVERGES" : "BAD",
                 r.message.c_str());
    return r.status == skirmish::game_check::Status::Divergence ? 1 : 2;
  }
  std::printf("%s %s: OK: %" PRIu64 " steps over %u matches (%u ended), %u players at %" PRIu64
              " Hz, seed %" PRIu64 "; %" PRIu64 " inputs passed check_input, %" PRIu64 " refused; %" PRIu64
              " views checked; state %u B, view <= %u B\n",
              t->name, t->version, r.steps, r.matches, r.matches_ended, unsigned(players), hz, seed, r.inputs_ok,
              r.inputs_refused, r.views, t->state_bytes, t->max_view_bytes);
  return 0;
}
