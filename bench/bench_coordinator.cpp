// skirmish-bench-coordinator: how many matches per second the coordinator
// forms from 10,000 queued tickets, end to end through shared memory
// (bench/README.md). Figures, not a test.
//
// One real segment (POSIX shm, robust locks) with 10,000 connected players
// and their Waiting tickets (ratings ~ N(1500, 300), joined over the last
// 30 s); then one Coordinator::round: read the tickets, form_matches, and per
// match allocate the row, start the game's state (the module's init(), as
// the server does: --game, "arena" by default, loaded through
// server/module like the server loads it), claim the tickets, seat the
// players, mark it Running, post MatchCreated / MatchFound, release the
// tickets. Repeated on a fresh segment --runs times; prints each and the
// median.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "config/config.h"
#include "coordinator/coordinator.h"
#include "core/process.h"
#include "module/module.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"

using namespace skirmish;

int main(int argc, char** argv) {
  CLI::App app{"skirmish-bench-coordinator: matches formed per second through shared memory"};
  int tickets = 10000, runs = 5;
  unsigned seed = 1;
  std::string game_name = "arena";
  uint32_t match_size = 0;  // 0: 4 within the module's player range
  app.add_option("--game", game_name, "game module: a bundled name or a path to a .so")->capture_default_str();
  app.add_option("--match-size", match_size, "players per match (default 4 within the module's range)")
      ->check(CLI::Range(1u, 16u));
  app.add_option("--tickets", tickets, "queued tickets")->check(CLI::Range(4, 500000));
  app.add_option("--runs", runs, "rounds timed, each on a fresh segment")->check(CLI::Range(1, 100));
  app.add_option("--seed", seed, "rng seed");
  CLI11_PARSE(app, argc, argv);

  config::Config cfg;
  std::string load_error;
  if (match_size == 0) {
    const auto m = module::load(game_name, module::Limits{.max_state_bytes = cfg.max_state_bytes}, load_error);
    if (!m) {
      std::fprintf(stderr, "%s\n", load_error.c_str());
      return 2;
    }
    match_size = std::clamp<uint32_t>(4, m->game->min_players, m->game->max_players);
  }
  cfg.workers = 2;
  cfg.match_size = match_size;
  cfg.game_module = game_name;
  const auto game = module::load_game(game_name, module::Limits{.max_state_bytes = cfg.max_state_bytes}, {},
                                      cfg.tick_rate_hz, cfg.match_size, load_error);
  if (!game) {
    std::fprintf(stderr, "%s\n", load_error.c_str());
    return 2;
  }
  std::vector<double> ms;
  size_t formed = 0;
  for (int run = 0; run < runs; ++run) {
    const std::string name = "bench-coord-" + std::to_string(getpid());
    shm::Sizes sizes{cfg.workers, uint32_t(tickets), uint32_t(tickets), uint32_t(tickets) / match_size + 16, 1u << 16,
                     game->table()->state_bytes};
    std::string error;
    auto seg = shm::Segment::create(name, sizes, error);
    if (!seg) {
      std::fprintf(stderr, "segment: %s\n", error.c_str());
      return 1;
    }
    seg->unlink();  // the mapping stays; nothing left in /dev/shm
    for (uint32_t w = 0; w < cfg.workers; ++w) shm::shared_store(seg->process(w).state, shm::ProcessState::Up);

    std::mt19937 rng(seed);
    std::normal_distribution<float> rating(1500, 300);
    std::uniform_int_distribution<int64_t> age(0, 30000);
    const int64_t now = core::monotonic_ms();
    for (int i = 0; i < tickets; ++i) {
      const float r = rating(rng);
      auto p = seg->players().alloc([&](shm::PlayerRow& row) {
        row.state = shm::PlayerState::Connected;
        row.player_id = uint32_t(i + 1);
        row.rating = r;
        row.worker = uint32_t(i) % cfg.workers;
      });
      const uint32_t pw = shm::to_wire(*p);
      auto t = seg->tickets().alloc([&](shm::TicketRow& row) {
        row.state = shm::TicketState::Waiting;
        row.player = pw;
        row.rating = r;
        row.party_size = 1;
        row.worker = uint32_t(i) % cfg.workers;
        row.joined_at_ms = now - age(rng);
      });
      seg->players().get(*p)->ticket = shm::to_wire(*t);
    }
    coordinator::Coordinator coord(cfg, &*seg, seg->coordinator_index(), &*game);
    const auto t0 = std::chrono::steady_clock::now();
    formed = coord.round(now);
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    std::printf("run %d: %d tickets -> %zu matches in %.2f ms = %.0f matches/s (tickets left %u)\n", run, tickets,
                formed, ms.back(), double(formed) / (ms.back() / 1000.0), seg->tickets().size());
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  std::printf("coordinator round (%s %s, %u players, state %u bytes): %d tickets -> %zu matches, median %.2f ms = "
              "%.0f matches/s\n",
              game->table()->name, game->table()->version, match_size, game->table()->state_bytes, tickets, formed, med,
              double(formed) / (med / 1000.0));
  return 0;
}
