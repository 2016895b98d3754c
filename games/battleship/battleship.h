/* battleship.h: the wire formats of the "battleship" module, for clients.
 *
 * Two players, turn-based, hidden information: each has a fleet on its own
 * board, placed by the module from the match seed, and sees only its own
 * ships and the shots on both boards. On its turn a player fires at one
 * cell of the other board; a hit fires again, a miss passes the turn. A
 * player who does not fire within the move timer loses the turn. Whoever
 * sinks the whole other fleet wins; at max_turns the one with more hits
 * wins (equal: a draw). Board size, fleet, move timer and turn limit come
 * in MatchFound.params. Little-endian; read fields through memcpy.
 */
#ifndef SKIRMISH_GAMES_BATTLESHIP_H
#define SKIRMISH_GAMES_BATTLESHIP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BATTLESHIP_MAX_BOARD 10u

/* Input.data: exactly 2 bytes, a cell of the opponent's board. */
typedef struct battleship_input {
  uint8_t x; /* 0..board-1 */
  uint8_t y;
} battleship_input;
#define BATTLESHIP_INPUT_BYTES 2u

/* View: battleship_view_header, then two boards of board*board cells, row
 * by row (y major): first the viewer's own board, then the opponent's. A
 * spectator (seat SKIRMISH_SPECTATOR) gets seat 0's board then seat 1's,
 * with ships hidden on both. */
typedef struct battleship_view_header {
  uint32_t tick;
  uint8_t board;        /* side of a board, cells */
  uint8_t you;          /* the viewer's seat, or 0xFF for a spectator */
  uint8_t turn;         /* seat whose turn it is */
  uint8_t ended;        /* 0 running, else the skirmish_end value */
  uint8_t winner;       /* seat, or 0xFF (none yet, or a draw) */
  uint8_t ships_left[2]; /* per seat: ships not yet sunk */
  uint8_t reserved;
  uint16_t turn_ticks_left; /* ticks before the turn passes */
  uint16_t turn_number;     /* turns taken so far, from 0 */
} battleship_view_header; /* 16 bytes */

/* A cell (one byte). */
#define BATTLESHIP_CELL_SHIP 0x01u /* a ship here: on the viewer's own board, or once hit */
#define BATTLESHIP_CELL_SHOT 0x02u /* fired at */
#define BATTLESHIP_CELL_SUNK 0x04u /* part of a sunk ship */

#define BATTLESHIP_VIEW_HEADER_BYTES 16u
#define BATTLESHIP_MAX_VIEW_BYTES (BATTLESHIP_VIEW_HEADER_BYTES + 2u * BATTLESHIP_MAX_BOARD * BATTLESHIP_MAX_BOARD)

/* MatchEnd.detail */
#define BATTLESHIP_DETAIL_FLEET_SUNK 1u
#define BATTLESHIP_DETAIL_TURN_LIMIT 2u
#define BATTLESHIP_DETAIL_FORFEIT 3u /* a player missed max_stalls turns in a row */

#ifdef __cplusplus
}
#endif

#endif
