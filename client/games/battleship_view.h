// battleship_view.h: the client side of the "battleship" game for C++
// clients: its 2-byte input and its view (games/battleship/battleship.h has
// the wire layout). Header-only, no allocation; parse() never reads past
// the bytes it is given.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include "client/lib/skirmish_client.h"
#include "games/battleship/battleship.h"

namespace skirmish::client::battleship {

inline int send_shot(Client& c, uint8_t x, uint8_t y) {
  const uint8_t in[BATTLESHIP_INPUT_BYTES] = {x, y};
  return c.send_input(in, sizeof in);
}

struct View {
  battleship_view_header header{};
  const uint8_t* own = nullptr;    // board*board cells: the viewer's board (seat 0's for a spectator)
  const uint8_t* other = nullptr;  // the opponent's (seat 1's for a spectator)
  uint32_t board() const { return header.board; }
  uint8_t own_cell(uint32_t x, uint32_t y) const { return own[y * header.board + x]; }
  uint8_t other_cell(uint32_t x, uint32_t y) const { return other[y * header.board + x]; }
};

// nullopt when the bytes are not a battleship view. The View points into
// the bytes: keep them alive while it is used.
inline std::optional<View> parse(const uint8_t* p, uint32_t len) {
  if (len < BATTLESHIP_VIEW_HEADER_BYTES) return std::nullopt;
  View v;
  std::memcpy(&v.header, p, BATTLESHIP_VIEW_HEADER_BYTES);
  const uint32_t cells = uint32_t(v.header.board) * v.header.board;
  if (v.header.board == 0 || v.header.board > BATTLESHIP_MAX_BOARD ||
      len != BATTLESHIP_VIEW_HEADER_BYTES + 2 * cells)
    return std::nullopt;
  v.own = p + BATTLESHIP_VIEW_HEADER_BYTES;
  v.other = v.own + cells;
  return v;
}

inline std::optional<View> parse(const World& w) { return parse(w.data(), w.size()); }

}  // namespace skirmish::client::battleship
