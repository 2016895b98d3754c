/* arena.h: the arena's wire formats, for clients of the "arena" module.
 *
 * The arena is a small real-time 2D game: players move, collect coins
 * (score += value) and tag each other (a tagged player is frozen a while).
 * The module (arena.c* beside this file) is built against the public game
 * ABI alone (sdk/include/skirmish/game.h); this header is what a client
 * needs to send inputs and read views. Everything is little-endian; read
 * fields through memcpy (a view may sit at any offset of a buffer).
 *
 * Units: positions in arena units (1 unit = 1 mm), the arena is
 * [0, width) x [0, height); the width, height, speed, radii and limits of
 * a match come in MatchFound.params (public_params).
 */
#ifndef SKIRMISH_GAMES_ARENA_H
#define SKIRMISH_GAMES_ARENA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARENA_MAX_PLAYERS 16u
#define ARENA_MAX_COINS 32u
#define ARENA_MAX_MOVE 100 /* |move_x|, |move_y| <= 100: percent of max speed per axis */
#define ARENA_BUTTON_TAG 0x01u
#define ARENA_KNOWN_BUTTONS ARENA_BUTTON_TAG

/* Input.data: exactly 3 bytes. */
typedef struct arena_input {
  int8_t move_x;
  int8_t move_y;
  uint8_t buttons; /* ARENA_BUTTON_*; unknown bits are refused */
} arena_input;
#define ARENA_INPUT_BYTES 3u

/* View (the same for every seat and for spectators):
 *   arena_view_header, then player_count arena_entity (ids 0..), then
 *   coin_count arena_entity (ids ARENA_MAX_PLAYERS..). Every slot is always
 *   present, so consecutive views line up byte for byte and a byte delta
 *   carries only what moved. */
typedef struct arena_view_header {
  uint32_t tick;
  uint32_t time_left_ms;
  uint8_t player_count;
  uint8_t coin_count;
  uint8_t ended;      /* 0 running, else the skirmish_end value */
  uint8_t reserved;
} arena_view_header; /* 12 bytes */

#define ARENA_KIND_PLAYER 0u
#define ARENA_KIND_COIN 1u

#define ARENA_FLAG_STUNNED 0x01u      /* player */
#define ARENA_FLAG_DISCONNECTED 0x02u /* player */
#define ARENA_FLAG_ACTIVE 0x04u       /* coin: on the field (else waiting to respawn) */

typedef struct arena_entity {
  uint16_t id;   /* player: seat; coin: ARENA_MAX_PLAYERS + index */
  uint8_t kind;  /* ARENA_KIND_* */
  uint8_t flags; /* ARENA_FLAG_* */
  int32_t x;
  int32_t y;
  int32_t score; /* player: score; coin: value 1..3 */
  int32_t extra; /* player: stun ticks left; coin: tick it appeared */
} arena_entity; /* 20 bytes */

#define ARENA_VIEW_HEADER_BYTES 12u
#define ARENA_ENTITY_BYTES 20u
#define ARENA_MAX_VIEW_BYTES (ARENA_VIEW_HEADER_BYTES + (ARENA_MAX_PLAYERS + ARENA_MAX_COINS) * ARENA_ENTITY_BYTES)

/* MatchEnd.detail: 0 (the reason says it: ScoreLimit or TimeLimit). */

#ifdef __cplusplus
}
#endif

#endif
