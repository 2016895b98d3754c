#include "module/module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace skirmish::module {
namespace {

bool is_name(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string exe_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, std::size_t(n));
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool exists(const std::string& p) { return ::access(p.c_str(), R_OK) == 0; }

bool bounded_string(const char* s, std::size_t max) {
  if (s == nullptr) return false;
  const std::size_t n = ::strnlen(s, max + 1);
  return n >= 1 && n <= max;
}

std::string fmt(const char* f, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, f, args...);
  return buf;
}

}  // namespace

std::string param_text(const skirmish_param& p) {
  switch (p.type) {
    case SKIRMISH_PARAM_INT: return std::to_string(p.i);
    case SKIRMISH_PARAM_BOOL: return p.i != 0 ? "true" : "false";
    case SKIRMISH_PARAM_FLOAT: return fmt("%.17g", p.f);
    case SKIRMISH_PARAM_STRING: return p.s != nullptr ? p.s : "";
    default: return "";
  }
}

GameParams::GameParams(std::vector<GameParam> items, std::uint32_t tick_rate_hz) : items_(std::move(items)) {
  view_.tick_rate_hz = tick_rate_hz;
  rebuild();
}

GameParams& GameParams::operator=(const GameParams& o) {
  if (this != &o) {
    items_ = o.items_;
    view_.tick_rate_hz = o.view_.tick_rate_hz;
    rebuild();
  }
  return *this;
}

void GameParams::rebuild() {
  c_items_.clear();
  c_items_.reserve(items_.size());
  for (const GameParam& g : items_) {
    skirmish_param p{};
    p.key = g.key.c_str();
    p.type = std::uint32_t(g.type);
    p.i = g.i;
    p.f = g.f;
    p.s = g.type == SKIRMISH_PARAM_STRING ? g.s.c_str() : nullptr;
    c_items_.push_back(p);
  }
  view_.items = c_items_.empty() ? nullptr : c_items_.data();
  view_.count = std::uint32_t(c_items_.size());
}

std::string resolve(const std::string& name_or_path) {
  if (!is_name(name_or_path)) return name_or_path;
  const std::string file = name_or_path + ".so";
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("SKIRMISH_GAMES_DIR"); env != nullptr && *env != '\0') dirs.emplace_back(env);
  const std::string exe = exe_dir();
  dirs.push_back(exe + "/../games");
  dirs.push_back(exe + "/../lib/skirmish/games");
  for (const std::string& d : dirs) {
    if (exists(d + "/" + file)) return d + "/" + file;
  }
  return dirs.back() + "/" + file;  // for the error message
}

bool check_table(const skirmish_game_v1_t* t, const Limits& limits, std::string& error) {
  if (t == nullptr) {
    error = "skirmish_game_v1() returned NULL";
    return false;
  }
  if (t->abi_version != SKIRMISH_GAME_ABI_VERSION) {
    error = fmt("abi_version %u is not supported (this server speaks %u)", t->abi_version, SKIRMISH_GAME_ABI_VERSION);
    return false;
  }
  // Fields are only appended, so a table from an older header is shorter:
  // v1 has no older header, so the whole v1 table must be there.
  if (t->table_bytes < sizeof(skirmish_game_v1_t)) {
    error = fmt("table_bytes %u is smaller than the v1 table (%zu)", t->table_bytes, sizeof(skirmish_game_v1_t));
    return false;
  }
  if (!bounded_string(t->name, 32) || !is_name(t->name)) {
    error = "name must be 1..32 characters of [a-z0-9_-]";
    return false;
  }
  if (!bounded_string(t->version, 32)) {
    error = "version must be 1..32 bytes";
    return false;
  }
  if (t->state_bytes < 1 || t->state_bytes > limits.max_state_bytes) {
    error = fmt("state_bytes %u is out of range (allowed: 1..%u, [game] max_state_bytes)", t->state_bytes,
                limits.max_state_bytes);
    return false;
  }
  if (t->max_input_bytes < 1 || t->max_input_bytes > SKIRMISH_MAX_INPUT_BYTES) {
    error = fmt("max_input_bytes %u is out of range (allowed: 1..%u)", t->max_input_bytes, SKIRMISH_MAX_INPUT_BYTES);
    return false;
  }
  if (t->max_view_bytes < 1 || t->max_view_bytes > SKIRMISH_MAX_VIEW_BYTES) {
    error = fmt("max_view_bytes %u is out of range (allowed: 1..%u)", t->max_view_bytes, SKIRMISH_MAX_VIEW_BYTES);
    return false;
  }
  if (t->min_players < 1 || t->min_players > t->max_players || t->max_players > SKIRMISH_MAX_SEATS) {
    error = fmt("players %u..%u is not allowed (1 <= min <= max <= %u)", unsigned(t->min_players),
                unsigned(t->max_players), SKIRMISH_MAX_SEATS);
    return false;
  }
  if (t->min_tick_rate_hz < 1 || t->min_tick_rate_hz > t->max_tick_rate_hz) {
    error = fmt("tick rates %u..%u Hz are not allowed (1 <= min <= max)", unsigned(t->min_tick_rate_hz),
                unsigned(t->max_tick_rate_hz));
    return false;
  }
  if (t->check_params == nullptr || t->init == nullptr || t->step == nullptr || t->check_input == nullptr ||
      t->view == nullptr || t->outcome == nullptr) {
    error = "check_params, init, step, check_input, view and outcome must all be set";
    return false;
  }
  return true;
}

std::optional<Module> load(const std::string& name_or_path, const Limits& limits, std::string& error) {
  Module m;
  m.path = resolve(name_or_path);
  // RTLD_NOW: an unresolved symbol fails here, at start-up, not mid-match.
  m.handle = ::dlopen(m.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (m.handle == nullptr) {
    const char* why = ::dlerror();
    error = "game module " + m.path + ": cannot load: " + (why != nullptr ? why : "unknown error");
    return std::nullopt;
  }
  ::dlerror();
  void* sym = ::dlsym(m.handle, "skirmish_game_v1");
  if (sym == nullptr) {
    error = "game module " + m.path + ": no symbol skirmish_game_v1 (built against sdk/include/skirmish/game.h?)";
    ::dlclose(m.handle);
    return std::nullopt;
  }
  skirmish_game_v1_fn fn;
  std::memcpy(&fn, &sym, sizeof fn);
  m.game = fn();
  std::string why;
  if (!check_table(m.game, limits, why)) {
    error = "game module " + m.path + ": " + why;
    ::dlclose(m.handle);
    return std::nullopt;
  }
  return m;
}

bool check_match(const Module& m, const GameParams& params, std::uint32_t players, std::string& error) {
  const skirmish_game_v1_t* t = m.game;
  if (players < t->min_players || players > t->max_players) {
    error = fmt("game.match_size = %u is out of range for game %s (allowed: %u..%u)", players, t->name,
                unsigned(t->min_players), unsigned(t->max_players));
    return false;
  }
  const std::uint32_t hz = params.view()->tick_rate_hz;
  if (hz < t->min_tick_rate_hz || hz > t->max_tick_rate_hz) {
    error = fmt("game.tick_rate_hz = %u is out of range for game %s (allowed: %u..%u)", hz, t->name,
                unsigned(t->min_tick_rate_hz), unsigned(t->max_tick_rate_hz));
    return false;
  }
  char buf[256] = {};
  if (t->check_params(params.view(), players, buf, sizeof buf) != 0) {
    buf[sizeof buf - 1] = '\0';
    error = std::string("game.params: ") + (buf[0] != '\0' ? buf : "refused by the game (no reason given)");
    return false;
  }
  return true;
}

std::vector<skirmish_param> public_params(const Module& m, const GameParams& params) {
  std::vector<skirmish_param> out;
  if (m.game->public_params == nullptr) {
    out.assign(params.view()->items, params.view()->items + params.view()->count);
    return out;
  }
  out.resize(64);
  std::uint32_t n = m.game->public_params(params.view(), out.data(), std::uint32_t(out.size()));
  if (n > out.size()) n = std::uint32_t(out.size());
  out.resize(n);
  return out;
}

void Game::rebind() {
  public_params = module.game != nullptr ? ::skirmish::module::public_params(module, params)
                                         : std::vector<skirmish_param>{};
}

std::optional<Game> load_game(const std::string& name_or_path, const Limits& limits, std::vector<GameParam> params,
                              std::uint32_t tick_rate_hz, std::uint32_t players, std::string& error) {
  auto m = load(name_or_path, limits, error);
  if (!m) return std::nullopt;
  std::optional<Game> g(std::in_place);
  g->module = *m;
  g->params = GameParams(std::move(params), tick_rate_hz);
  std::string why;
  if (!check_match(g->module, g->params, players, why)) {
    error = "game module " + g->module.path + " (" + g->table()->name + "): " + why;
    return std::nullopt;
  }
  g->rebind();
  return g;
}

}  // namespace skirmish::module
