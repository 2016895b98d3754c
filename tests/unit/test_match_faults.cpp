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

#include "games/arena/arena.h"
#include "match/match_store.h"
#include "module/module.h"
#include "shm/robust_mutex.h"

namespace skirmish::match {
extern void (*fault_point)(int point);
}

using namespace skirmish;
using namespace skirmish::match;

namespace {

constexpr int kPoints = 10;  // 1..7 and 10 in step_locked, 8..9 in queue_input_locked

int g_die_at = 0;
int g_hits_left = 0;

void die_here(int point) {
  if (point == g_die_at && --g_hits_left == 0) raise(SIGKILL);
}

// The arena module, loaded once (the bundled build/games/arena.so).
const module::Game& arena() {
  static const module::Game g = [] {
    std::string err;
    auto loaded = module::load_game("arena", {}, {}, 30, 4, err);
    INFO(err);
    REQUIRE(loaded);
    return *loaded;
  }();
  return g;
}

// The tick a state holds, read from its view (arena.h), so the test needs
// nothing of the module's state layout.
uint32_t tick_of(const uint8_t* state) {
  uint8_t view[ARENA_MAX_VIEW_BYTES];
  const uint32_t n = arena().table()->view(state, SKIRMISH_SPECTATOR, view, sizeof view);
  REQUIRE(n >= ARENA_VIEW_HEADER_BYTES);
  arena_view_header h;
  std::memcpy(&h, view, sizeof h);
  REQUIRE(h.player_count == 4);
  for (uint32_t i = 0; i < h.player_count; ++i) {
    arena_entity e;
    std::memcpy(&e, view + ARENA_VIEW_HEADER_BYTES + i * ARENA_ENTITY_BYTES, sizeof e);
    REQUIRE(e.x >= 0);
    REQUIRE(e.x < 100000);  // the arena's default width
  }
  return h.tick;
}

// One match row and its state ring in MAP_SHARED memory, as in the segment.
struct SharedRow {
  shm::MatchRow* row;
  Ring ring;
  size_t bytes;
  SharedRow() {
    const uint64_t stride = (arena().table()->state_bytes + 63) / 64 * 64;
    bytes = sizeof(shm::MatchRow) + shm::kStateRing * stride;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    row = static_cast<shm::MatchRow*>(p);
    std::memset(p, 0, bytes);
    REQUIRE(shm::init_robust_mutex(row->lock) == 0);
    ring = Ring{static_cast<uint8_t*>(p) + sizeof(shm::MatchRow), stride, arena().table()};
    row->seat_count = 4;
    row->state = shm::MatchState::Running;
    start_locked(*row, ring, arena().params.view(), 4, 42);
  }
  ~SharedRow() { munmap(row, bytes); }
};

// What every locker may rely on, whatever a dead holder left.
void check_consistent(const shm::MatchRow& row, const Ring& ring, uint32_t tick_before) {
  const uint8_t* s = published_locked(row, ring);
  REQUIRE(s != nullptr);
  const uint32_t tick = tick_of(s);
  // Published is the state before the dead step or the one it completed.
  REQUIRE((tick == tick_before || tick == tick_before + 1));
  REQUIRE(row.tick <= tick);
  for (const auto& q : row.inputs) {
    REQUIRE(q.head < shm::kMaxQueuedInputs);
    REQUIRE(q.count <= shm::kMaxQueuedInputs);
  }
  // A torn ring slot is never handed out as some other tick.
  for (uint32_t t = tick >= shm::kStateRing ? tick - shm::kStateRing + 1 : 0; t <= tick; ++t) {
    INFO("t " << t << " row.tick " << row.tick << " published " << row.published << " view tick " << tick);
    if (const uint8_t* old = tick_locked(row, ring, t)) REQUIRE(tick_of(old) == t);
  }
  // An input is never applied twice: applied_seq only moves forward and
  // never past what was queued.
  for (uint32_t i = 0; i < 4; ++i) REQUIRE(row.applied_seq[i] <= row.inputs[i].last_seq);
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
      const uint8_t* s = published_locked(row, sh.ring);
      REQUIRE(s != nullptr);
      tick_before = tick_of(s);
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
        const uint8_t in[ARENA_INPUT_BYTES] = {50, uint8_t(-50), 0};
        for (uint8_t seat = 0; seat < 4; ++seat) queue_input_locked(row, seat, my_seq++, in, sizeof in, 4);
        step_locked(row, sh.ring, 0xF);
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
    const uint8_t* s = published_locked(row, sh.ring);
    REQUIRE(s != nullptr);
    const uint32_t done = tick_of(s);
    REQUIRE(done >= tick_before);
    REQUIRE(done <= tick_before + uint32_t(hits));
    check_consistent(row, sh.ring, done == tick_before ? tick_before : done - 1);
    // And the match goes on: one more tick publishes tick + 1.
    auto o = step_locked(row, sh.ring, 0xF);
    REQUIRE(o.ok);
    REQUIRE(o.tick == done + 1);
    if (o.ended) start_locked(row, sh.ring, arena().params.view(), 4, uint32_t(round));
  }
  REQUIRE(deaths == 1000);
}
