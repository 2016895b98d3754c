// arena_view.h: the client side of the "arena" game for C++ clients:
// building its 3-byte input and decoding its view (games/arena/arena.h has
// the wire layout). The client library itself knows no game; the tests and
// the terminal client include this to read what an arena Snapshot shows.
//
// Contract: header-only, no allocation, no I/O. parse() never reads past
// the bytes it is given and refuses a view whose counts do not fit them.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include "client/lib/skirmish_client.h"
#include "games/arena/arena.h"

namespace skirmish::client::arena {

inline std::array<uint8_t, ARENA_INPUT_BYTES> input(int8_t move_x, int8_t move_y, uint8_t buttons) {
  return {uint8_t(move_x), uint8_t(move_y), buttons};
}

inline int send_input(Client& c, int8_t move_x, int8_t move_y, uint8_t buttons) {
  const auto in = input(move_x, move_y, buttons);
  return c.send_input(in.data(), in.size());
}

// One player or coin of a view, with the accessor names of a flatbuffers
// table so call sites read alike.
struct Entity {
  arena_entity e{};
  uint16_t id() const { return e.id; }
  uint8_t kind() const { return e.kind; }
  uint8_t flags() const { return e.flags; }
  int32_t x() const { return e.x; }
  int32_t y() const { return e.y; }
  int32_t score() const { return e.score; }
  int32_t extra() const { return e.extra; }
  bool is_player() const { return e.kind == ARENA_KIND_PLAYER; }
  bool active() const { return is_player() || (e.flags & ARENA_FLAG_ACTIVE) != 0; }
};

struct View {
  arena_view_header header{};
  std::array<Entity, ARENA_MAX_PLAYERS + ARENA_MAX_COINS> entities{};  // players, then coins
  uint32_t count = 0;  // header.player_count + header.coin_count

  uint32_t tick() const { return header.tick; }
  uint32_t time_left_ms() const { return header.time_left_ms; }
  const Entity* player(uint32_t seat) const { return seat < header.player_count ? &entities[seat] : nullptr; }
  // Players by seat, coins by ARENA_MAX_PLAYERS + index; inactive coins too.
  const Entity* find(uint16_t id) const {
    for (uint32_t i = 0; i < count; ++i)
      if (entities[i].id() == id) return &entities[i];
    return nullptr;
  }
};

// nullopt when the bytes are not an arena view.
inline std::optional<View> parse(const uint8_t* p, uint32_t len) {
  if (len < ARENA_VIEW_HEADER_BYTES) return std::nullopt;
  View v;
  std::memcpy(&v.header, p, ARENA_VIEW_HEADER_BYTES);
  if (v.header.player_count > ARENA_MAX_PLAYERS || v.header.coin_count > ARENA_MAX_COINS) return std::nullopt;
  v.count = uint32_t(v.header.player_count) + v.header.coin_count;
  if (len != ARENA_VIEW_HEADER_BYTES + v.count * ARENA_ENTITY_BYTES) return std::nullopt;
  for (uint32_t i = 0; i < v.count; ++i)
    std::memcpy(&v.entities[i].e, p + ARENA_VIEW_HEADER_BYTES + i * ARENA_ENTITY_BYTES, ARENA_ENTITY_BYTES);
  return v;
}

inline std::optional<View> parse(const World& w) { return parse(w.data(), w.size()); }

}  // namespace skirmish::client::arena
