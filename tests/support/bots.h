// Bots for end-to-end tests: real players on the client library that
// queue, play whatever game MatchFound names through that module's own
// bot_input (loaded here as the server loads it, server/module), and record
// what they saw. Header-only, for the game and chaos tests.
#pragma once

#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/server_process.h"
#include "client/lib/skirmish_client.h"
#include "module/module.h"
#include "tests/support/uv_loop.h"

namespace skirmish::test {

using client::Client;
using client::Options;
using proto::ErrorCode;

constexpr uint32_t kTickHz = 30;
constexpr uint32_t kTimeLimitS = 5;

// configs/loadtest.toml (every bot from one address) with short matches in
// a small arena, so that bots steering to coins score within the match.
struct GameConfig {
  std::string path;
  // `params`: when not empty, the whole [game.params] table (another game's).
  struct Params {
    std::string text;
  };
  explicit GameConfig(std::map<std::string, std::string> overrides = {}, const Params& game_params = {}) {
    const std::string& params = game_params.text;
    overrides.emplace("time_limit_s", std::to_string(kTimeLimitS));
    overrides.emplace("width", "20000");
    overrides.emplace("height", "20000");
    overrides.emplace("max_wait_ms", "2000");
    overrides.emplace("tick_rate_hz", std::to_string(kTickHz));
    std::string text = read_file(std::string(SKIRMISH_SOURCE_DIR) + "/configs/loadtest.toml");
    for (auto& [key, value] : overrides) {
      std::regex line("(^|\n)" + key + " *= *[^#\n]*");
      REQUIRE(std::regex_search(text, line));
      text = std::regex_replace(text, line, "$1" + key + " = " + value + " ");
    }
    if (!params.empty()) {
      const size_t at = text.find("[game.params]\n");
      REQUIRE(at != std::string::npos);
      const size_t end = text.find("\n[", at + 1);
      REQUIRE(end != std::string::npos);
      text = text.substr(0, at) + "[game.params]\n" + params + text.substr(end);
    }
    static int n = 0;
    path = "/tmp/skirmish-game-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".toml";
    std::ofstream(path) << text;
  }
  ~GameConfig() { unlink(path.c_str()); }
};

// The table of the game module `name` (a bundled name or a path), loaded
// once per process and never unloaded (module.h).
inline const skirmish_game_v1_t* game_table(const std::string& name) {
  static std::map<std::string, const skirmish_game_v1_t*> loaded;
  if (auto it = loaded.find(name); it != loaded.end()) return it->second;
  std::string error;
  auto m = module::load(name, module::Limits{.max_state_bytes = 1u << 20}, error);
  INFO(error);
  REQUIRE(m.has_value());
  return loaded[name] = m->game;
}

struct Result {
  uint32_t player_id;
  uint8_t place;
  int32_t score;
  float before, after;
};

// One player: queues on Welcome, answers every snapshot with the game's
// bot_input for its seat (in the arena: steer to the nearest coin, tag
// whoever is close; in battleship: fire at a cell not shot yet), and
// records what it saw.
struct Bot {
  std::unique_ptr<Client> c;
  uint32_t party_key = 0;
  uint8_t party_size = 1;
  int matches_wanted = 1;  // queue again after MatchEnd until this many were found
  bool queue_on_welcome = true;  // false: the test queues it (e.g. into a party it picks)

  int matches_found = 0;
  uint32_t match_id = 0;
  uint8_t slot = 0;       // in the current match
  uint8_t first_slot = 0;  // in the first match
  std::string game;        // MatchFound.game
  const skirmish_game_v1_t* table = nullptr;  // its module
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  std::set<uint32_t> match_ids;
  std::vector<float> found_rating;  // own rating in each MatchFound
  uint32_t snapshots = 0;
  uint64_t first_snapshot_ms = 0, last_snapshot_ms = 0;
  uint32_t last_tick = 0;
  uint32_t last_input_seq_seen = 0;
  int match_ends = 0;
  uint32_t end_match_id = 0;
  uint32_t final_tick = 0;
  proto::EndReason reason = proto::EndReason::Abandoned;
  std::vector<Result> results;
  std::vector<ErrorCode> errors;

  // Automatic resume (chaos tests).
  int drops = 0;                  // on_reconnecting with attempt 1
  int reseated = 0;               // MatchFound again for the same match (after a resume)
  bool status_asked = false;      // QueueStatus asked after a resume, not yet answered
  uint64_t dropped_at_ms = 0;
  std::vector<uint64_t> resume_ms;  // drop -> resumed Welcome
  uint64_t max_gap_ms = 0;          // longest pause between snapshots of the first match

  std::string account;  // Welcome.account ("" = anonymous)
  float welcome_rating = 0;

  Bot(uv_loop_t* loop, const std::string& name, bool auto_resume = false, const std::string& auth_token = "") {
    Options o{.name = name};
    o.auth_token = auth_token;
    o.reconnect.enabled = auto_resume;
    c = std::make_unique<Client>(loop, o);
    auto& cb = c->callbacks();
    cb.on_reconnecting = [this](uint32_t attempt, uint32_t, int) {
      if (attempt == 1) {
        ++drops;
        dropped_at_ms = uv_now(c->loop());
      }
    };
    cb.on_welcome = [this](const proto::Welcome& w) {
      account = w.account() != nullptr ? w.account()->str() : "";
      welcome_rating = w.rating();
      if (w.resumed()) {
        resume_ms.push_back(uv_now(c->loop()) - dropped_at_ms);
        // In the match: MatchFound follows. Otherwise still queued (the
        // ticket waited) or not (a QueueJoin died with the old worker, or a
        // match ended meanwhile: its MatchEnd follows): ask, and queue again
        // if Idle and more matches are wanted.
        if (w.match_id() == 0 && c->queue_status() == 0) status_asked = true;
        return;
      }
      if (queue_on_welcome) c->queue_join(0, party_key, party_size);
    };
    cb.on_match_found = [this](const proto::MatchFound& m) {
      if (matches_found > 0 && m.match_id() == match_id) {
        ++reseated;  // resumed into the same match
        return;
      }
      ++matches_found;
      match_id = m.match_id();
      slot = m.your_slot();
      game = m.game() != nullptr ? m.game()->str() : "";
      table = game_table(game);
      rng ^= uint64_t(c->player_id()) << 17 | 1;
      if (matches_found == 1) first_slot = slot;
      match_ids.insert(m.match_id());
      for (const auto* p : *m.players())
        if (p->slot() == slot) found_rating.push_back(p->rating());
    };
    cb.on_snapshot = [this](const client::World& w) {
      if (matches_found != 1) return;  // the rate is measured over the first match
      const uint64_t now = uv_now(c->loop());
      if (snapshots > 0) max_gap_ms = std::max(max_gap_ms, now - last_snapshot_ms);
      if (snapshots++ == 0) first_snapshot_ms = now;
      last_snapshot_ms = now;
      last_tick = w.tick;
      last_input_seq_seen = w.last_input_seq;
      steer(w);
    };
    cb.on_match_end = [this](const proto::MatchEnd& m) {
      if (++match_ends == 1) {
        end_match_id = m.match_id();
        final_tick = m.final_tick();
        reason = m.reason();
        for (const auto* r : *m.results())
          results.push_back({r->player_id(), r->place(), r->score(), r->rating_before(), r->rating_after()});
      }
      status_asked = false;  // the QueueJoin below answers it
      if (matches_found < matches_wanted) c->queue_join(0, party_key, party_size);
    };
    cb.on_error = [this](ErrorCode code, std::string_view, bool) { errors.push_back(code); };
    cb.on_queue_status = [this](const proto::QueueStatus& s) {
      if (status_asked && s.state() == proto::QueueState::Idle && matches_found < matches_wanted &&
          match_ends >= matches_found)
        c->queue_join(0, party_key, party_size);
      status_asked = false;
    };
  }

  void steer(const client::World& w) {
    if (table == nullptr || table->bot_input == nullptr) return;
    uint8_t in[SKIRMISH_MAX_INPUT_BYTES];
    const uint32_t n = table->bot_input(w.data(), w.size(), slot, &rng, in, sizeof in);
    if (n > 0) c->send_input(in, n);
  }
};

struct Round {
  std::vector<std::unique_ptr<Bot>> bots;
  std::map<uint16_t, int> per_worker;
};

// Connects `n` bots and runs the loop until `done` or the deadline.
inline void connect_bots(Loop& loop, Round& r, uint16_t port, int n, int matches_wanted = 1) {
  for (int i = 0; i < n; ++i) {
    r.bots.push_back(std::make_unique<Bot>(loop.get(), "bot" + std::to_string(i)));
    r.bots.back()->matches_wanted = matches_wanted;
  }
  for (auto& b : r.bots) REQUIRE(b->c->connect("127.0.0.1", port) == 0);
}


// Every bot got at least `matches` MatchEnds, the first for the match it was
// first put in, with all `seats` players in its results; every dropped bot
// resumed and none gave up. Returns how many bots lost a connection.
inline int check_survived(Round& r, int matches = 1, size_t seats = 4) {
  std::map<uint32_t, int> players_of;
  int dropped = 0;
  for (auto& b : r.bots) {
    INFO("bot " << b->c->player_id() << " drops " << b->drops << " resumes " << b->c->stats().resumes);
    REQUIRE(b->match_ends >= matches);
    REQUIRE(b->end_match_id == *b->match_ids.begin());
    REQUIRE(b->results.size() == seats);
    ++players_of[b->end_match_id];
    REQUIRE(b->c->stats().reconnect_give_ups == 0);
    if (b->drops > 0) {
      ++dropped;
      REQUIRE(b->c->stats().resumes >= uint64_t(b->drops));
    }
    for (ErrorCode e : b->errors)  // a resume that raced the server's notice of the drop
      REQUIRE(e == ErrorCode::BadToken);
  }
  for (auto& [id, n] : players_of) REQUIRE(size_t(n) == seats);
  return dropped;
}

inline bool all(Round& r, const std::function<bool(const Bot&)>& pred) {
  return std::all_of(r.bots.begin(), r.bots.end(), [&](const auto& b) { return pred(*b); });
}

}  // namespace skirmish::test
