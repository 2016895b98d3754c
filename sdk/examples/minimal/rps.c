/* rps.c: rock-paper-scissors as a Skirmish game module, the complete
 * example of docs/games.md. Two players; each round both send one byte
 * (0 rock, 1 paper, 2 scissors); a player sees that the other has chosen,
 * not what, until the round is resolved. The first to `wins` rounds
 * (param, default 3) wins the match. Plain C against the public header. */
#include <stdio.h>
#include <string.h>

#include <skirmish/game.h>

typedef struct rps_state {       /* plain bytes: no pointers, no padding */
  uint32_t round;                /* rounds resolved */
  uint8_t wins_needed, ended;
  uint8_t chosen[2];             /* 1 once a seat chose this round */
  uint8_t choice[2];             /* this round's choices (hidden) */
  uint8_t last[2];               /* the previous round's choices, or 0xFF */
  uint8_t score[2];
  uint8_t reserved[2];
} rps_state;

typedef struct rps_view {        /* what a seat sees: 12 bytes */
  uint32_t round;
  uint8_t you, ended, score[2];
  uint8_t chosen[2];             /* who has chosen (not what) */
  uint8_t last[2];
} rps_view;

static int check_params(const skirmish_params* p, uint32_t players, char* err, uint32_t cap) {
  for (uint32_t i = 0; i < p->count; ++i) {
    const skirmish_param* v = &p->items[i];
    if (strcmp(v->key, "wins") != 0) {
      snprintf(err, cap, "unknown key %s (rps takes wins)", v->key);
      return 1;
    }
    if (v->type != SKIRMISH_PARAM_INT || v->i < 1 || v->i > 100) {
      snprintf(err, cap, "wins must be an integer (allowed: 1..100)");
      return 1;
    }
  }
  if (players != 2) {
    snprintf(err, cap, "players = %u is out of range (rps is for exactly 2)", players);
    return 1;
  }
  return 0;
}

static void init(void* state, const skirmish_params* p, uint32_t players, uint64_t seed) {
  (void)players, (void)seed; /* no randomness in this game */
  rps_state s;
  memset(&s, 0, sizeof s);
  s.wins_needed = 3;
  for (uint32_t i = 0; i < p->count; ++i) s.wins_needed = (uint8_t)p->items[i].i;
  s.last[0] = s.last[1] = 0xFF;
  memcpy(state, &s, sizeof s);
}

static void step(void* state, const skirmish_inputs* in, uint32_t tick) {
  (void)tick;
  rps_state s;
  memcpy(&s, state, sizeof s);
  for (uint32_t i = 0; i < in->count; ++i) {
    const skirmish_input* x = &in->items[i];
    if (x->seat < 2 && x->len == 1 && !s.chosen[x->seat]) {
      s.chosen[x->seat] = 1;
      s.choice[x->seat] = x->bytes[0];
    }
  }
  if (s.chosen[0] && s.chosen[1]) {       /* resolve the round */
    const int d = (3 + s.choice[0] - s.choice[1]) % 3; /* 1: seat 0 wins, 2: seat 1 */
    if (d == 1) ++s.score[0];
    if (d == 2) ++s.score[1];
    s.last[0] = s.choice[0], s.last[1] = s.choice[1];
    s.chosen[0] = s.chosen[1] = s.choice[0] = s.choice[1] = 0;
    ++s.round;
    if (s.score[0] >= s.wins_needed || s.score[1] >= s.wins_needed) s.ended = 1;
  }
  memcpy(state, &s, sizeof s);
}

static uint32_t check_input(const uint8_t* b, uint32_t len) {
  if (len != 1) return SKIRMISH_INPUT_MALFORMED;
  return b[0] <= 2 ? SKIRMISH_INPUT_OK : SKIRMISH_INPUT_OUT_OF_RANGE;
}

static uint32_t view(const void* state, uint32_t seat, uint8_t* out, uint32_t cap) {
  rps_state s;
  memcpy(&s, state, sizeof s);
  rps_view v = {s.round, (uint8_t)(seat < 2 ? seat : 0xFF), s.ended, {s.score[0], s.score[1]},
                {s.chosen[0], s.chosen[1]}, {s.last[0], s.last[1]}};
  if (cap < sizeof v) return 0;
  memcpy(out, &v, sizeof v);
  return sizeof v;
}

static void outcome(const void* state, skirmish_outcome* out) {
  rps_state s;
  memcpy(&s, state, sizeof s);
  memset(out, 0, sizeof *out);
  out->end = s.ended ? SKIRMISH_END_COMPLETED : SKIRMISH_RUNNING;
  for (int i = 0; i < 2; ++i) {
    out->seats[i].score = s.score[i];
    out->seats[i].place = s.score[i] >= s.score[1 - i] ? 1 : 2;
  }
}

static uint32_t bot_input(const uint8_t* v, uint32_t len, uint32_t seat, uint64_t* rng, uint8_t* out, uint32_t cap) {
  rps_view w;
  if (len < sizeof w || cap < 1 || seat > 1) return 0;
  memcpy(&w, v, sizeof w);
  if (w.ended || w.chosen[seat]) return 0;
  *rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17; /* xorshift64 */
  out[0] = (uint8_t)(*rng % 3);
  return 1;
}

static const skirmish_game_v1_t table = {
    SKIRMISH_GAME_ABI_VERSION, sizeof(skirmish_game_v1_t), "rps", "1.0.0",
    sizeof(rps_state), 1, sizeof(rps_view), 0, /* flags: views differ (you) */
    2, 2, 0, 1, 240, /* players 2..2, tick rates 1..240 Hz */
    check_params, init, step, check_input, view, outcome, bot_input, NULL};

SKIRMISH_GAME_EXPORT const skirmish_game_v1_t* skirmish_game_v1(void) { return &table; }
