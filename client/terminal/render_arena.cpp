// The arena in skirmish-client (game_ui.h): real time, one Input per
// Snapshot. The view is games/arena/arena.h, decoded by
// client/games/arena_view.h.
//
// Contract
// - Keys: arrows/WASD set the heading (full speed along one axis; a
//   terminal reports presses, not releases, so the heading holds until
//   another direction or x), space arms one tag, sent with the next Input.
// - One Input per Snapshot: {move_x, move_y, buttons}; the tag is cleared
//   once an Input carrying it was taken by the library.
// - The arena is params width x height (MatchFound), scaled to the box;
//   y grows downwards. Players are the hex digit of their seat (you: bold,
//   reversed; stunned: red with a '*' beside; disconnected: dim), coins
//   'o'. A size missing or < 1 falls back to 100000 (the default).
#include <cstdio>

#include "client/games/arena_view.h"
#include "client/terminal/game_ui.h"

namespace skirmish::terminal {

// Cell (column or row) of coordinate v in an arena of `size` units drawn on
// `cells` cells: floor(v * cells / size), clamped into 0..cells-1.
int scale_to_cells(int32_t v, int32_t size, int cells) {
  if (cells <= 0) return 0;
  if (size <= 0 || v <= 0) return 0;
  const int64_t c = int64_t(v) * cells / size;
  return int(std::min<int64_t>(c, cells - 1));
}

namespace {

namespace arena = client::arena;

constexpr int32_t kDefaultSize = 100000;

std::string fmt(const char* f, auto... args) {
  char b[256];
  std::snprintf(b, sizeof b, f, args...);
  return b;
}

class ArenaUi final : public GameUi {
 public:
  void start(const Model& m) override {
    width_ = int32_t(param_int(m, "width", kDefaultSize, 1, INT32_MAX));
    height_ = int32_t(param_int(m, "height", kDefaultSize, 1, INT32_MAX));
    score_limit_ = uint32_t(param_int(m, "score_limit", 0, 0, UINT32_MAX));
    stop();
  }

  void stop() override {
    move_x_ = move_y_ = 0;
    tag_pending_ = false;
  }

  void on_key(Command c, client::Client&, const Model&) override {
    switch (c) {
      case Command::Up: move_x_ = 0, move_y_ = -ARENA_MAX_MOVE; break;
      case Command::Down: move_x_ = 0, move_y_ = ARENA_MAX_MOVE; break;
      case Command::Left: move_x_ = -ARENA_MAX_MOVE, move_y_ = 0; break;
      case Command::Right: move_x_ = ARENA_MAX_MOVE, move_y_ = 0; break;
      case Command::Stop: move_x_ = 0, move_y_ = 0; break;
      case Command::Action: tag_pending_ = true; break;
      default: break;
    }
  }

  void on_snapshot(client::Client& client, const Model&) override {
    const uint8_t buttons = tag_pending_ ? ARENA_BUTTON_TAG : 0;
    if (arena::send_input(client, move_x_, move_y_, buttons) == 0) tag_pending_ = false;
  }

  void draw(Canvas& c, const Box& b, const Model& m) const override {
    const auto v = m.world != nullptr ? arena::parse(*m.world) : std::nullopt;
    if (!v) {
      c.centred(b.top + b.rows / 2, b.left, b.cols, "the view does not decode as an arena view", {Ink::Warn, kBold});
      return;
    }
    auto cell = [&](const arena::Entity& e, int* y, int* x) {
      *x = b.left + scale_to_cells(e.x(), width_, b.cols);
      *y = b.top + scale_to_cells(e.y(), height_, b.rows);
    };
    int y = 0, x = 0;
    // Coins first, then marks, then players, then you: the most important on top.
    for (uint32_t i = v->header.player_count; i < v->count; ++i) {
      const arena::Entity& e = v->entities[i];
      if (!e.active()) continue;
      cell(e, &y, &x);
      c.glyph(y, x, 'o', {Ink::Coin});
    }
    for (uint32_t i = 0; i < v->header.player_count; ++i) {
      const arena::Entity& e = v->entities[i];
      if ((e.flags() & ARENA_FLAG_STUNNED) == 0) continue;
      cell(e, &y, &x);
      if (x + 1 < b.left + b.cols) c.glyph(y, x + 1, '*', {Ink::Stunned, kBold});
    }
    const arena::Entity* me = nullptr;
    for (uint32_t i = 0; i < v->header.player_count; ++i) {
      const arena::Entity& e = v->entities[i];
      if (e.id() == m.your_slot) {
        me = &e;
        continue;
      }
      cell(e, &y, &x);
      Style st{(e.flags() & ARENA_FLAG_STUNNED) ? Ink::Stunned : Ink::Other, 0};
      if (e.flags() & ARENA_FLAG_DISCONNECTED) st.flags |= kDim;
      c.glyph(y, x, slot_glyph(e.id()), st);
    }
    if (me != nullptr) {
      cell(*me, &y, &x);
      c.glyph(y, x, slot_glyph(me->id()),
              {(me->flags() & ARENA_FLAG_STUNNED) ? Ink::Stunned : Ink::Me, uint8_t(kBold | kReverse)});
    }
  }

  std::string you(const Model&) const override { return std::string(", ") + heading(); }

  void panel(Panel& p, const Model& m) const override {
    const auto v = m.world != nullptr ? arena::parse(*m.world) : std::nullopt;
    p.row("time", v ? format_mm_ss(v->time_left_ms()) + " left" : "-");
    const arena::Entity* me = v ? v->player(m.your_slot) : nullptr;
    p.row("pos", me != nullptr ? fmt("%.1f, %.1f m", me->x() / 1000.0, me->y() / 1000.0) : "-");
    p.gap();
    p.line(score_limit_ > 0 ? fmt("scores (first to %u)", score_limit_) : "scores", {Ink::Normal, kUnderline});
    for (size_t slot = 0; slot < kMaxSeats && p.y < p.bottom; ++slot) {
      const arena::Entity* e = v ? v->player(uint32_t(slot)) : nullptr;
      if (!m.seats[slot].present && e == nullptr) continue;
      const bool mine = slot == m.your_slot;
      std::string tail;
      if (e != nullptr && (e->flags() & ARENA_FLAG_STUNNED)) tail = " stun";
      if (e != nullptr && (e->flags() & ARENA_FLAG_DISCONNECTED)) tail = " away";
      p.line(fmt("%c%c %-*s %4s%s", mine ? '>' : ' ', slot_glyph(uint32_t(slot)), int(kMaxNameColumns),
                 m.seats[slot].present ? m.seats[slot].name.c_str() : "?",
                 e != nullptr ? std::to_string(e->score()).c_str() : "-", tail.c_str()),
             {Ink::Normal, uint8_t(mine ? kBold : 0)});
    }
  }

  const char* help() const override { return "arrows/WASD move  x stop  space tag  n queue again  q quit"; }

  std::string end_detail(uint32_t) const override { return {}; }

 private:
  const char* heading() const {
    if (move_x_ == 0 && move_y_ == 0) return "standing";
    if (move_x_ > 0) return "moving right";
    if (move_x_ < 0) return "moving left";
    return move_y_ < 0 ? "moving up" : "moving down";
  }

  int32_t width_ = kDefaultSize;
  int32_t height_ = kDefaultSize;
  uint32_t score_limit_ = 0;
  int8_t move_x_ = 0;
  int8_t move_y_ = 0;
  bool tag_pending_ = false;  // space pressed; goes out with the next Input
};

}  // namespace

std::unique_ptr<GameUi> make_arena_ui() { return std::make_unique<ArenaUi>(); }

}  // namespace skirmish::terminal
