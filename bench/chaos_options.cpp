// chaos_options.cpp: skirmish-bench-chaos's game resolution and the server
// config it writes (chaos_options.h).
//
// resolve_game loads the module with server/module as the server does;
// write_config rewrites `key = value` lines and the body of [game.params]
// of the base config. Neither prints: errors are one line in `error`.
#include "bench/chaos_options.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/chaos_util.h"

namespace bench_chaos {

using namespace skirmish;

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

}  // namespace bench_chaos
