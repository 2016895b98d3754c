/* skirmish/game.h: the game-module ABI of Skirmish, version 1.
 *
 * A game is a shared object that exports one C symbol,
 *
 *     const skirmish_game_v1_t* skirmish_game_v1(void);
 *
 * returning a table of sizes and callbacks that lives as long as the
 * module is loaded. The server dlopen()s the module in its master before it
 * forks, checks the table (ABI version, sizes, player counts, tick rate,
 * params) and exits with one line and code 2 on any mismatch. Plain C on
 * purpose, in the manner of Redis modules: no C++ type, no STL, no
 * allocation crosses this boundary, so a module built by any compiler of
 * any version against this header loads into any server of the same ABI.
 *
 * Contract (docs/games.md has the long form and a complete example)
 * - State is `state_bytes` of plain bytes per match, owned by the server
 *   and kept in shared memory. No pointers in it, no heap behind it: any
 *   worker process may step a match another one started (that is how a
 *   dead worker's matches are adopted), the replay tool re-runs it, and a
 *   fuzzer feeds it. The server hands the callbacks 16-byte aligned state.
 * - step() is deterministic and pure: the same state bytes and inputs give
 *   the same bytes in any process. No I/O, no clock, no allocation, no
 *   global or static mutable state, no floating point whose result can
 *   differ between machines (use integers). All randomness comes from an
 *   rng kept in the state, seeded by init().
 * - Inputs are untrusted bytes from the network. check_input() classifies
 *   them before they are queued; step() sees only inputs that passed, and
 *   must still never read past `len`.
 * - view() is what one seat may see: hidden information and fog of war are
 *   the module's to decide. The server sends it to that seat as a Snapshot,
 *   full or as a generic byte delta against the client's acknowledged
 *   view (protocol/PROTOCOL.md), so no delta code is game-specific.
 * - outcome() says whether the match ended and who placed where; ratings,
 *   MatchEnd and persistence are the server's.
 * - Callbacks may be called from any thread of any process, one call per
 *   state at a time; they must not keep pointers to their arguments.
 * - The table is versioned twice: `abi_version` (a breaking change makes a
 *   new symbol, skirmish_game_v2) and `table_bytes` (fields are only ever
 *   appended; the server reads none past table_bytes).
 */
#ifndef SKIRMISH_GAME_H
#define SKIRMISH_GAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKIRMISH_GAME_ABI_VERSION 1u

/* Hard limits of ABI v1 (a module's own may be lower). */
#define SKIRMISH_MAX_SEATS 16u        /* players per match */
#define SKIRMISH_MAX_INPUT_BYTES 56u  /* one input; the shm input slot is 64 bytes */
#define SKIRMISH_MAX_VIEW_BYTES 65536u
#define SKIRMISH_MAX_QUEUED_INPUTS 8u /* per seat per tick, at most */
#define SKIRMISH_SPECTATOR 0xFFu      /* view() seat of a neutral observer */

/* ------------------------------------------------------------ params
 * [game.params] of the server's TOML, handed over as typed pairs. Keys are
 * NUL-terminated; string values too. A TOML integer is INT, a float FLOAT,
 * true/false BOOL (in `i`, 0 or 1), a string STRING. Nested tables and
 * arrays are refused by the server before a module sees them. The pointers
 * are valid only during the call. */
typedef enum skirmish_param_type {
  SKIRMISH_PARAM_INT = 1,
  SKIRMISH_PARAM_FLOAT = 2,
  SKIRMISH_PARAM_BOOL = 3,
  SKIRMISH_PARAM_STRING = 4
} skirmish_param_type;

typedef struct skirmish_param {
  const char* key;
  uint32_t type; /* skirmish_param_type */
  uint32_t reserved;
  int64_t i;     /* INT, BOOL */
  double f;      /* FLOAT */
  const char* s; /* STRING */
} skirmish_param;

typedef struct skirmish_params {
  const skirmish_param* items;
  uint32_t count;
  uint32_t tick_rate_hz; /* [game] tick_rate_hz: the rate step() is called at */
} skirmish_params;

/* ------------------------------------------------------------ inputs
 * One tick's inputs: every input that arrived for the match since the last
 * step, at most SKIRMISH_MAX_QUEUED_INPUTS per seat, grouped by seat in
 * ascending seat order and, within a seat, in the order the player sent
 * them (strictly increasing sequence numbers; the server drops replays).
 * A game applies what it needs: the newest move, every button press, or
 * each command in turn. */
typedef struct skirmish_input {
  uint8_t seat;
  uint8_t len; /* 1..max_input_bytes */
  uint16_t reserved;
  uint32_t seq; /* the client's Input.seq */
  const uint8_t* bytes;
} skirmish_input;

typedef struct skirmish_inputs {
  const skirmish_input* items;
  uint32_t count;
  uint32_t connected; /* bit i: seat i has a live session; others stand still or forfeit turns */
} skirmish_inputs;

/* ------------------------------------------------------------ results */
typedef enum skirmish_end {
  SKIRMISH_RUNNING = 0,
  SKIRMISH_END_COMPLETED = 1,   /* the game's own end (a winner, a draw) */
  SKIRMISH_END_SCORE_LIMIT = 2, /* a score reached its limit */
  SKIRMISH_END_TIME_LIMIT = 3   /* the game's clock ran out */
} skirmish_end;

typedef struct skirmish_seat_result {
  uint8_t place; /* 1 = best; equal places tie ("1224") */
  uint8_t reserved[3];
  int32_t score;
} skirmish_seat_result;

typedef struct skirmish_outcome {
  uint32_t end;    /* skirmish_end */
  uint32_t detail; /* the game's own reason code, sent in MatchEnd.detail */
  skirmish_seat_result seats[SKIRMISH_MAX_SEATS]; /* [0, players) */
} skirmish_outcome;

typedef enum skirmish_input_verdict {
  SKIRMISH_INPUT_OK = 0,
  SKIRMISH_INPUT_MALFORMED = 1,   /* wrong length or layout */
  SKIRMISH_INPUT_OUT_OF_RANGE = 2 /* well formed, a value not allowed */
} skirmish_input_verdict;

/* flags */
#define SKIRMISH_GAME_SHARED_VIEW 0x1u /* view() ignores `seat`: every seat sees the same
                                          bytes, so the server computes one view per tick */

/* ------------------------------------------------------------ the table */
typedef struct skirmish_game_v1_t {
  uint32_t abi_version; /* SKIRMISH_GAME_ABI_VERSION */
  uint32_t table_bytes; /* sizeof(skirmish_game_v1_t) the module was built with */
  const char* name;     /* [a-z0-9_-]{1,32}: in MatchFound, logs, record files */
  const char* version;  /* the game's own version, e.g. "1.0.0"; 1..32 bytes */
  uint32_t state_bytes;     /* per match, 1..[game] max_state_bytes */
  uint32_t max_input_bytes; /* 1..SKIRMISH_MAX_INPUT_BYTES */
  uint32_t max_view_bytes;  /* 1..SKIRMISH_MAX_VIEW_BYTES: view() never writes more */
  uint32_t flags;           /* SKIRMISH_GAME_* */
  uint8_t min_players;      /* 1..max_players */
  uint8_t max_players;      /* ..SKIRMISH_MAX_SEATS */
  uint16_t reserved;
  uint16_t min_tick_rate_hz; /* [game] tick_rate_hz must lie in [min, max] */
  uint16_t max_tick_rate_hz;

  /* 0 when `params` (with `players` per match) is playable; else writes one
   * line naming the key and what is allowed into err (NUL-terminated, at
   * most err_cap bytes) and returns non-zero. Unknown keys should be
   * refused: a typo is then a start-up error, not a silent default. */
  int (*check_params)(const skirmish_params* params, uint32_t players, char* err, uint32_t err_cap);

  /* Writes a fresh match into state[state_bytes] (every byte: the server
   * does not clear it). Params passed check_params. The params a step needs
   * must be copied into the state: step() gets none. */
  void (*init)(void* state, const skirmish_params* params, uint32_t players, uint64_t seed);

  /* One fixed timestep; `tick` is the tick being produced (1 for the first
   * step after init). Never called once outcome() said ended. */
  void (*step)(void* state, const skirmish_inputs* inputs, uint32_t tick);

  /* skirmish_input_verdict for one untrusted input (len 1..max_input_bytes).
   * Stateless: what passes here may still be ignored by step(). */
  uint32_t (*check_input)(const uint8_t* bytes, uint32_t len);

  /* The bytes `seat` may see (SKIRMISH_SPECTATOR: the neutral view) into
   * out[cap]; returns the length, at most max_view_bytes (cap is never
   * smaller). Deterministic in (state, seat). */
  uint32_t (*view)(const void* state, uint32_t seat, uint8_t* out, uint32_t cap);

  /* Running or ended, and each seat's place and score: fills end, detail and
   * seats[0, players); the server zeroes *out first. Called after every
   * step, so keep it cheap. */
  void (*outcome)(const void* state, skirmish_outcome* out);

  /* Optional (may be NULL): a bot's next input from its seat's newest view.
   * *rng is the bot's own generator state (never 0); returns the input's
   * length (0 = send nothing this tick), at most cap. Lets the load tester
   * and the tests play any module. */
  uint32_t (*bot_input)(const uint8_t* view, uint32_t len, uint32_t seat, uint64_t* rng,
                        uint8_t* out, uint32_t cap);

  /* Optional (may be NULL): the params a client needs to know the rules,
   * defaults filled in, into out[cap]; returns the count. Sent in
   * MatchFound. The strings must outlive the call (static, or from
   * `params`). NULL: the server sends [game.params] as configured. */
  uint32_t (*public_params)(const skirmish_params* params, skirmish_param* out, uint32_t cap);
} skirmish_game_v1_t;

typedef const skirmish_game_v1_t* (*skirmish_game_v1_fn)(void);

#if defined(__GNUC__)
#define SKIRMISH_GAME_EXPORT __attribute__((visibility("default")))
#else
#define SKIRMISH_GAME_EXPORT
#endif

#ifdef __cplusplus
}
#endif

#endif /* SKIRMISH_GAME_H */
