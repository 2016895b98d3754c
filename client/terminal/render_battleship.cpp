// Battleship in skirmish-client (game_ui.h): turn-based, an Input only when
// the player fires. The view is games/battleship/battleship.h, decoded by
// client/games/battleship_view.h.
//
// Contract
// - Keys: arrows/WASD move the aim over the opponent's board (clamped to
//   the board), Enter or space fires at it. A shot is sent only on our
//   turn and at a cell not fired at yet (else a note says why), so no input
//   is wasted and none can fire later by surprise: the module applies the
//   first valid shot of the seat whose turn it is, each tick.
// - No Input between shots: the server then sends full views (its delta
//   base is the last acked tick, and it falls back to full once that is
//   older than its state ring). A 10 x 10 view is 216 bytes.
// - Drawn: both boards side by side (stacked when the box is narrow, cut
//   when it is small), columns A.., rows 1..; '.' water, '#' a ship (own
//   board only: the view hides unhit enemy ships), 'o' a miss, 'X' a hit,
//   '*' part of a sunk ship; the aim is reversed on the opponent's board.
//   Below: whose turn, the move timer (turn_ticks_left at tick_rate_hz),
//   the result once the view says the match ended, the last note.
// - A spectator (you = 0xFF) sees seat 0's and seat 1's boards; it cannot fire.
#include <cstdio>

#include "client/games/battleship_view.h"
#include "client/terminal/game_ui.h"

namespace skirmish::terminal {
namespace {

namespace bs = client::battleship;

constexpr uint8_t kSpectator = 0xFF;

std::string fmt(const char* f, auto... args) {
  char b[256];
  std::snprintf(b, sizeof b, f, args...);
  return b;
}

std::string cell_name(uint32_t x, uint32_t y) { return fmt("%c%u", char('A' + x), y + 1); }

struct CellLook {
  char glyph;
  Style style;
};

CellLook look(uint8_t cell) {
  if (cell & BATTLESHIP_CELL_SUNK) return {'*', {Ink::Hit, 0}};
  if ((cell & BATTLESHIP_CELL_SHOT) && (cell & BATTLESHIP_CELL_SHIP)) return {'X', {Ink::Hit, kBold}};
  if (cell & BATTLESHIP_CELL_SHOT) return {'o', {Ink::Miss, 0}};
  if (cell & BATTLESHIP_CELL_SHIP) return {'#', {Ink::Ship, kBold}};
  return {'.', {Ink::Normal, kDim}};
}

class BattleshipUi final : public GameUi {
 public:
  void start(const Model& m) override {
    board_ = uint32_t(param_int(m, "board", 10, 1, BATTLESHIP_MAX_BOARD));
    max_turns_ = uint32_t(param_int(m, "max_turns", 0, 0, UINT16_MAX));
    const Param* fleet = find_param(m, "fleet");
    fleet_ = fleet != nullptr ? fleet->value : "";
    tick_rate_hz_ = m.tick_rate_hz > 0 ? m.tick_rate_hz : 30;
    aim_x_ = aim_y_ = 0;
    note_.clear();
    note_turn_ = UINT32_MAX;
    have_shot_ = false;
  }

  void stop() override { note_.clear(); }

  void on_key(Command c, client::Client& client, const Model& m) override {
    const auto v = m.world != nullptr ? bs::parse(*m.world) : std::nullopt;
    const uint32_t n = v ? v->board() : board_;
    switch (c) {
      case Command::Up: aim_y_ = aim_y_ > 0 ? aim_y_ - 1 : 0; break;
      case Command::Down: aim_y_ = aim_y_ + 1 < n ? aim_y_ + 1 : n - 1; break;
      case Command::Left: aim_x_ = aim_x_ > 0 ? aim_x_ - 1 : 0; break;
      case Command::Right: aim_x_ = aim_x_ + 1 < n ? aim_x_ + 1 : n - 1; break;
      case Command::Action:
      case Command::Enter: fire(client, v); break;
      default: break;
    }
    aim_x_ = std::min(aim_x_, n - 1);
    aim_y_ = std::min(aim_y_, n - 1);
  }

  void on_snapshot(client::Client&, const Model&) override {}

  void draw(Canvas& c, const Box& b, const Model& m) const override {
    const auto v = m.world != nullptr ? bs::parse(*m.world) : std::nullopt;
    if (!v) {
      c.centred(b.top + b.rows / 2, b.left, b.cols, "the view does not decode as a battleship view",
                {Ink::Warn, kBold});
      return;
    }
    const int n = int(v->board());
    const int h = n + 2;  // title, column letters, n rows
    const bool spectator = v->header.you == kSpectator;
    const uint8_t me = spectator ? 0 : v->header.you;
    const uint8_t them = spectator ? 1 : uint8_t(1 - (me & 1));
    const std::string t0 = spectator ? fmt("seat 0 (%u left)", v->header.ships_left[0])
                                     : fmt("your fleet (%u left)", v->header.ships_left[me & 1]);
    const std::string t1 = spectator ? fmt("seat 1 (%u left)", v->header.ships_left[1])
                                     : fmt("their waters (%u left)", v->header.ships_left[them & 1]);
    // "10 " then n cells 2 columns apart, or the longer title.
    const int w = std::max({2 * n + 2, int(t0.size()), int(t1.size())});
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0, status = 0;
    if (2 * w + 4 <= b.cols || 2 * h + 4 > b.rows) {  // side by side (also when neither fits)
      const int left = b.left + std::max(0, (b.cols - 2 * w - 4) / 2);
      y0 = y1 = b.top + std::max(0, (b.rows - h - 4) / 2);
      x0 = left;
      x1 = left + w + 4;
      status = y0 + h + 1;
    } else {  // stacked
      x0 = x1 = b.left + std::max(0, (b.cols - w) / 2);
      y0 = b.top + std::max(0, (b.rows - 2 * h - 4) / 2);
      y1 = y0 + h + 1;
      status = y1 + h + 1;
    }
    const bool aim = !spectator && v->header.ended == 0;
    draw_board(c, b, x0, y0, t0, *v, true, false);
    draw_board(c, b, x1, y1, t1, *v, false, aim);
    const int last = b.top + b.rows;
    auto line = [&](int y, const std::string& s, Style st) {
      if (y < last) c.centred(y, b.left, b.cols, s, st);
    };
    line(status, turn_text(*v), {Ink::Normal, kBold});
    if (note_turn_ == v->header.turn_number)
      line(status + 1, note_, {Ink::Warn, 0});
    else if (!spectator)
      line(status + 1, last_shot_text(*v), {Ink::Normal, 0});
    line(status + 2, ". water  # ship  o miss  X hit  * sunk", {Ink::Normal, kDim});
  }

  std::string you(const Model& m) const override {
    const auto v = m.world != nullptr ? bs::parse(*m.world) : std::nullopt;
    if (!v || v->header.ended != 0) return {};
    if (v->header.you == kSpectator) return ", watching";
    return v->header.turn == v->header.you ? ", your turn" : ", waiting";
  }

  void panel(Panel& p, const Model& m) const override {
    const auto v = m.world != nullptr ? bs::parse(*m.world) : std::nullopt;
    if (v && v->header.ended == 0) {
      const bool mine = v->header.turn == v->header.you;
      p.row("turn", fmt("%s, %s", mine ? "yours" : "theirs", timer_text(*v).c_str()),
            {mine ? Ink::Me : Ink::Normal, kBold});
    } else {
      p.row("turn", v ? "over" : "-");
    }
    p.row("shots", v ? (max_turns_ > 0 ? fmt("%u of %u", v->header.turn_number, max_turns_)
                                       : std::to_string(v->header.turn_number))
                     : "-");
    if (v && v->header.you != kSpectator)
      p.row("ships", fmt("you %u, them %u", v->header.ships_left[v->header.you & 1],
                         v->header.ships_left[(v->header.you & 1) ^ 1]));
    p.row("aim", cell_name(aim_x_, aim_y_));
    p.row("fleet", fleet_.empty() ? "-" : fleet_);
    p.gap();
    p.line("players", {Ink::Normal, kUnderline});
    for (size_t slot = 0; slot < 2 && p.y < p.bottom; ++slot) {
      const bool mine = slot == m.your_slot;
      p.line(fmt("%c%c %-*s%s", mine ? '>' : ' ', slot_glyph(uint32_t(slot)), int(kMaxNameColumns),
                 m.seats[slot].present ? m.seats[slot].name.c_str() : "?",
                 v && v->header.turn == slot && v->header.ended == 0 ? " to fire" : ""),
             {Ink::Normal, uint8_t(mine ? kBold : 0)});
    }
  }

  const char* help() const override { return "arrows/WASD aim  Enter/space fire  n queue again  q quit"; }

  std::string end_detail(uint32_t detail) const override {
    switch (detail) {
      case BATTLESHIP_DETAIL_FLEET_SUNK: return "fleet sunk";
      case BATTLESHIP_DETAIL_TURN_LIMIT: return "turn limit";
      case BATTLESHIP_DETAIL_FORFEIT: return "forfeit: too many missed turns";
      default: return detail == 0 ? "" : fmt("detail %u", detail);
    }
  }

 private:
  void fire(client::Client& client, const std::optional<bs::View>& v) {
    if (v) note_turn_ = v->header.turn_number;  // a note lasts until the next turn
    if (!v) {
      note_ = "no view yet";
      return;
    }
    if (v->header.ended != 0) {
      note_ = "the match is over";
      return;
    }
    if (v->header.you == kSpectator) {
      note_ = "spectators cannot fire";
      return;
    }
    if (v->header.turn != v->header.you) {
      note_ = "not your turn";
      return;
    }
    if (aim_x_ >= v->board() || aim_y_ >= v->board()) return;
    if (v->other_cell(aim_x_, aim_y_) & BATTLESHIP_CELL_SHOT) {
      note_ = "already fired at " + cell_name(aim_x_, aim_y_);
      return;
    }
    const int r = bs::send_shot(client, uint8_t(aim_x_), uint8_t(aim_y_));
    note_ = r == 0 ? "fired at " + cell_name(aim_x_, aim_y_) : std::string("send failed: ") + uv_strerror(r);
    if (r == 0) {
      shot_x_ = aim_x_;
      shot_y_ = aim_y_;
      have_shot_ = true;
    }
  }

  // "your shot at B2: hit" once the view shows our last shot.
  std::string last_shot_text(const bs::View& v) const {
    if (!have_shot_ || shot_x_ >= v.board() || shot_y_ >= v.board()) return {};
    const uint8_t cell = v.other_cell(shot_x_, shot_y_);
    if ((cell & BATTLESHIP_CELL_SHOT) == 0) return {};
    const char* what = (cell & BATTLESHIP_CELL_SUNK) ? "sunk!" : (cell & BATTLESHIP_CELL_SHIP) ? "hit" : "miss";
    return "your shot at " + cell_name(shot_x_, shot_y_) + ": " + what;
  }

  std::string timer_text(const bs::View& v) const {
    return fmt("%.1f s", double(v.header.turn_ticks_left) / double(tick_rate_hz_));
  }

  std::string turn_text(const bs::View& v) const {
    if (v.header.ended != 0) {
      if (v.header.winner == kSpectator) return "over: a draw";
      if (v.header.you == kSpectator) return fmt("over: seat %u won", v.header.winner);
      return v.header.winner == v.header.you ? "over: you won" : "over: you lost";
    }
    if (v.header.you == kSpectator) return fmt("seat %u to fire (%s)", v.header.turn, timer_text(v).c_str());
    if (v.header.turn == v.header.you) return "your turn: fire! (" + timer_text(v) + ")";
    return "their turn (" + timer_text(v) + ")";
  }

  // One board at (x, y): the title, column letters, then the rows.
  void draw_board(Canvas& c, const Box& b, int x, int y, const std::string& title, const bs::View& v, bool own,
                  bool aim) const {
    const uint32_t n = v.board();
    const int right = b.left + b.cols;
    const int bottom = b.top + b.rows;
    auto inside = [&](int yy, int xx) { return yy >= b.top && yy < bottom && xx >= b.left && xx < right; };
    if (inside(y, x)) c.text(y, x, title, right - x, {Ink::Normal, kUnderline});
    for (uint32_t i = 0; i < n; ++i)
      if (inside(y + 1, x + 3 + 2 * int(i))) c.glyph(y + 1, x + 3 + 2 * int(i), char('A' + i), {Ink::Normal, kDim});
    for (uint32_t row = 0; row < n; ++row) {
      const int yy = y + 2 + int(row);
      if (yy >= bottom) break;
      if (inside(yy, x)) c.text(yy, x, fmt("%2u", row + 1), std::min(2, right - x), {Ink::Normal, kDim});
      for (uint32_t col = 0; col < n; ++col) {
        const int xx = x + 3 + 2 * int(col);
        if (!inside(yy, xx)) continue;
        CellLook l = look(own ? v.own_cell(col, row) : v.other_cell(col, row));
        if (aim && col == aim_x_ && row == aim_y_) l.style.flags = kBold | kReverse;
        c.glyph(yy, xx, l.glyph, l.style);
      }
    }
  }

  uint32_t board_ = 10;
  uint32_t max_turns_ = 0;
  uint16_t tick_rate_hz_ = 30;
  std::string fleet_;
  uint32_t aim_x_ = 0, aim_y_ = 0;
  uint32_t shot_x_ = 0, shot_y_ = 0;  // our last shot sent
  bool have_shot_ = false;
  std::string note_;  // why the last Enter did (not) fire
  uint32_t note_turn_ = UINT32_MAX;  // the turn_number it was made at: shown during that turn only
};

}  // namespace

std::unique_ptr<GameUi> make_battleship_ui() { return std::make_unique<BattleshipUi>(); }

}  // namespace skirmish::terminal
