// The config's text helpers and [game.params] (config_text.h).
#include "config/config_text.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <vector>
#include <sstream>

namespace skirmish::config::detail {
namespace {
// Values echoed in an error are cut so one line stays readable.
constexpr std::size_t kMaxShownChars = 60;
}  // namespace


std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

// A string value as it would be written in TOML, escaped and cut short.
std::string quote(std::string_view s) {
  bool cut = false;
  if (s.size() > kMaxShownChars) {
    std::size_t n = kMaxShownChars;
    // Back up to a UTF-8 lead byte so the cut never splits a character.
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s = s.substr(0, n);
    cut = true;
  }
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += cut ? "...\"" : "\"";
  return out;
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::array:
      return "array";
    case toml::node_type::table:
      return "table";
    default:
      return "nothing";
  }
}


std::string show(const toml::node& n) {
  if (const auto* s = n.as_string()) return quote(s->get());
  if (n.is_array()) return "[...]";
  if (n.is_table()) return "{...}";
  std::ostringstream os;
  n.visit([&os](const auto& v) { os << v; });
  return one_line(os.str());
}

// [game.params]: the game module's own table, handed to it as typed pairs
// (module::GameParam). Which keys and ranges are allowed is the module's
// check_params, run by the master once the module is loaded; here only the
// types the ABI carries: integer, float, boolean, string.
bool apply_game_params(const toml::node& node, Config& c, std::string& error) {
  const toml::table* t = node.as_table();
  if (t == nullptr) {
    error = "config: game.params must be a table, got " + std::string(type_name(node)) +
            " (allowed: a [game.params] table of the game's keys)";
    return false;
  }
  c.game_params.clear();
  for (auto&& [key, v] : *t) {
    module::GameParam p;
    p.key = std::string(key.str());
    const std::string who = "game.params." + one_line(p.key);
    if (p.key.empty() || p.key.size() > 64) {
      error = "config: " + who + ": a key must be 1..64 bytes";
      return false;
    }
    if (const auto* i = v.as_integer()) {
      p.type = SKIRMISH_PARAM_INT;
      p.i = i->get();
    } else if (const auto* f = v.as_floating_point()) {
      p.type = SKIRMISH_PARAM_FLOAT;
      p.f = f->get();
    } else if (const auto* b = v.as_boolean()) {
      p.type = SKIRMISH_PARAM_BOOL;
      p.i = b->get() ? 1 : 0;
    } else if (const auto* s = v.as_string()) {
      p.type = SKIRMISH_PARAM_STRING;
      p.s = s->get();
      if (p.s.size() > 1024 || p.s.find('\0') != std::string::npos) {
        error = "config: " + who + " must be a string of at most 1024 bytes without NUL";
        return false;
      }
    } else {
      error = "config: " + who + " must be an integer, float, boolean or string, got " +
              std::string(type_name(v)) + " " + show(v);
      return false;
    }
    if (c.game_params.size() >= 64) {
      error = "config: game.params has more than 64 keys";
      return false;
    }
    c.game_params.push_back(std::move(p));
  }
  return true;
}

// Did-you-mean: edit distance on names with case, '_' and '-' ignored, so
// "tickrate" finds "tick_rate_hz".
namespace {
std::string normalize(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64))
    if (c != '_' && c != '-')
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

bool close_enough(std::string_view given, std::string_view known) {
  const std::string g = normalize(given);
  return distance(g, normalize(known)) <=
         std::max<std::size_t>(2, g.size() / 3);
}

}  // namespace skirmish::config::detail
