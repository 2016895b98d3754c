// The view model's helpers (model.h).
#include "client/terminal/model.h"

#include <charconv>
#include <cstdio>

namespace skirmish::terminal {

const char* to_string(Phase p) {
  switch (p) {
    case Phase::Connecting: return "connecting";
    case Phase::Queued: return "queued";
    case Phase::InMatch: return "in match";
    case Phase::MatchOver: return "match over";
    case Phase::Disconnected: return "disconnected";
  }
  return "?";
}

std::string sanitize_name(std::string_view s, size_t max_len) {
  std::string out;
  bool in_junk = false;
  for (unsigned char c : s) {
    if (out.size() >= max_len) break;
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(char(c));
      in_junk = false;
    } else if (!in_junk) {
      out.push_back('?');
      in_junk = true;
    }
  }
  if (out.empty()) out.push_back('?');
  return out;
}

std::string format_mm_ss(uint32_t ms) {
  const uint32_t s = ms / 1000;
  char b[32];
  std::snprintf(b, sizeof b, "%u:%02u", s / 60, s % 60);
  return b;
}

const Param* find_param(const Model& m, std::string_view key) {
  for (const Param& p : m.params)
    if (p.key == key) return &p;
  return nullptr;
}

int64_t param_int(const Model& m, std::string_view key, int64_t fallback, int64_t lo, int64_t hi) {
  const Param* p = find_param(m, key);
  if (p == nullptr) return fallback;
  int64_t v = 0;
  const char* end = p->value.data() + p->value.size();
  const auto r = std::from_chars(p->value.data(), end, v);
  if (r.ec != std::errc{} || r.ptr != end || v < lo || v > hi) return fallback;
  return v;
}

}  // namespace skirmish::terminal
