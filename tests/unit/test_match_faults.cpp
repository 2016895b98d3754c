// A process killed at every point where it can die inside a match lock
// (server/match/match_store.cpp, built here with SKIRMISH_FAULT_POINTS):
// 1,000 deaths in all, each followed by the next locker's recovery, checks
// that the match row is consistent, and one more tick. Zero deadlocks: every
// lock after a death is taken with a deadline.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

#include "match/match_store.h"
#include "shm/robust_mutex.h"

namespace skirmish::match {
extern void (*fault_point)(int point);
}

using namespace skirmish;
using namespace skirmish::match;

namespace {

constexpr int kPoints = 9;  // 1..7 in step_locked, 8..9 in queue_input_locked

int g_die_at = 0;
int g_hits_left = 0;

void die_here(int point) {
  if (point == g_die_at && --g_hits_left == 0) raise(SIGKILL);
}

struct SharedRow {
  shm::MatchRow* row;
  SharedRow() {
    void* p = mmap(nullptr, sizeof(shm::MatchRow), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    row = static_cast<shm::MatchRow*>(p);
    std::memset(static_cast<void*>(row), 0, sizeof *row);
    REQUIRE(shm::init_robust_mutex(row->lock) == 0);
    row->seat_count = 4;
    row->state = shm::MatchState::Running;
    start_locked(*row, game::Params{}, 4, 42);
  }
  ~SharedRow() { munmap(row, sizeof *row); }
};

// What every locker may rely on, whatever a dead holder left.
void check_consistent(const shm::MatchRow& row, uint32_t tick_before) {
  game::MatchState s;
  REQUIRE(load_published_locked(row, s));
  // Published is the state before the dead step or the one it completed.
  REQUIRE((s.tick == tick_before || s.tick == tick_before + 1));
  REQUIRE(row.tick <= s.tick);
  REQUIRE(s.player_count == 4);
  for (uint8_t i = 0; i < s.player_count; ++i) {
    REQUIRE(s.players[i].x >= 0);
    REQUIRE(s.players[i].x < game::Params{}.arena_width);
  }
  for (const auto& q : row.inputs) {
    REQUIRE(q.head < shm::kMaxQueuedInputs);
    REQUIRE(q.count <= shm::kMaxQueuedInputs);
  }
  // A torn ring slot is never handed out as some other tick.
  for (uint32_t t = s.tick >= shm::kStateRing ? s.tick - shm::kStateRing + 1 : 0; t <= s.tick; ++t) {
    game::MatchState old;
    if (load_tick_locked(row, t, old)) REQUIRE(old.tick == t);
  }
}

}  // namespace

TEST_CASE("a holder killed at every fault point of a match lock, 1,000 times: recovered, consistent, no deadlock") {
  SharedRow sh;
  shm::MatchRow& row = *sh.row;
  std::mt19937 rng(7);
  uint32_t seq = 1;
  int deaths = 0;
  for (int round = 0; round < 1000; ++round) {
    const int point = 1 + round % kPoints;
    const int hits = 1 + int(rng() % 3);
    uint32_t tick_before;
    {
      shm::Guard g(row.lock, std::chrono::milliseconds(2000), &shm::repair_match, &row);
      REQUIRE(g.ok());
      tick_before = uint32_t(row.tick);
      game::MatchState s;
      REQUIRE(load_published_locked(row, s));
      tick_before = s.tick;
    }
    const uint32_t seq_base = seq;
    seq += 64;
    pid_t kid = fork();
    REQUIRE(kid >= 0);
    if (kid == 0) {
      match::fault_point = die_here;
      g_die_at = point;
      g_hits_left = hits;
      uint32_t my_seq = seq_base;
      for (int i = 0; i < 16; ++i) {  // enough passes to reach any point `hits` times
        shm::Guard g(row.lock, &shm::repair_match, &row);
        for (uint8_t seat = 0; seat < 4; ++seat)
          queue_input_locked(row, seat, game::PlayerInput{my_seq++, 50, -50, 0, 0}, 4);
        step_locked(row, game::Params{}, 0xF);
      }
      _exit(0);  // not reached: every point is hit at least once per pass
    }
    int status = 0;
    REQUIRE(waitpid(kid, &status, 0) == kid);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);
    ++deaths;
    // The tick the child last completed before dying: up to `hits` passes.
    shm::Guard g(row.lock, std::chrono::milliseconds(2000), &shm::repair_match, &row);
    REQUIRE(g.ok());
    REQUIRE(g.recovered());
    game::MatchState s;
    REQUIRE(load_published_locked(row, s));
    const uint32_t done = s.tick;
    REQUIRE(done >= tick_before);
    REQUIRE(done <= tick_before + uint32_t(hits));
    check_consistent(row, done == tick_before ? tick_before : done - 1);
    // And the match goes on: one more tick publishes tick + 1.
    auto o = step_locked(row, game::Params{}, 0xF);
    REQUIRE(o.ok);
    REQUIRE(o.tick == done + 1);
    if (o.ended) start_locked(row, game::Params{}, 4, uint32_t(round));
  }
  REQUIRE(deaths == 1000);
}
