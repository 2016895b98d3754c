// The per-game side of skirmish-client: one GameUi per game this client can
// play, picked by MatchFound.game (make_game_ui). The App and the Screen
// know no game; a GameUi knows one: it decodes the seat's view bytes with
// the game's client header (client/games/<name>_view.h), maps keys to the
// game's inputs, and draws the game's box and panel rows.
//
// Contract
// - A GameUi is made at MatchFound and lives until the next one; start()
//   reads the match's params from the Model (untrusted: a missing or bad
//   value falls back to the game's documented default).
// - on_key() and on_snapshot() run on the loop; they may send inputs
//   (client.send_input through the game's header), never block, and ignore
//   keys they do not use. The App calls them only while in a match.
// - draw() and panel() draw through a Canvas only (no ncurses outside
//   screen.cpp), clip to the Box they are given, and must cope with
//   m.world == nullptr or a view that does not decode (a line saying so).
// - Nothing here allocates per frame beyond small strings.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "client/lib/skirmish_client.h"
#include "client/terminal/model.h"

namespace skirmish::terminal {

enum class Command : uint8_t {
  None,    // a key with no meaning
  Up,      // Up arrow, w
  Down,    // Down arrow, s
  Left,    // Left arrow, a
  Right,   // Right arrow, d
  Stop,    // x
  Action,  // space: arena tag, battleship fire
  Enter,   // Enter: battleship fire
  Queue,   // n: queue again after a match, connect again when disconnected
  Quit,    // q
  Resize,  // KEY_RESIZE
  Redraw,  // Ctrl-L: repaint every cell
};

// Colours; the Screen maps them to curses pairs (or to nothing).
enum class Ink : uint8_t { Normal, Me, Other, Coin, Stunned, Warn, Border, Ship, Hit, Miss };
inline constexpr uint8_t kBold = 0x01, kReverse = 0x02, kDim = 0x04, kUnderline = 0x08;

struct Style {
  Ink ink = Ink::Normal;
  uint8_t flags = 0;  // kBold | kReverse | ...
};

struct Box {
  int top, left, rows, cols;  // the inner area (without the border)
};

// Drawing, clipped to the terminal by the implementation (screen.cpp).
class Canvas {
 public:
  virtual ~Canvas() = default;
  // Text at (y, x), cut at column x + width.
  virtual void text(int y, int x, std::string_view s, int width, Style st = {}) = 0;
  virtual void glyph(int y, int x, char c, Style st = {}) = 0;
  // `s` centred on row y between columns x and x + width.
  void centred(int y, int x, int width, std::string_view s, Style st = {}) {
    const int n = std::min<int>(int(s.size()), width);
    text(y, x + (width - n) / 2, s, n, st);
  }
};

// The panel's rows: "label   value", one per call, while they fit.
struct Panel {
  Canvas& c;
  int x, y, bottom, width;
  void row(std::string_view label, std::string_view value, Style st = {}) {
    if (y >= bottom) return;
    c.text(y, x, label, width);
    c.text(y, x + 8, value, width - 8, st);
    ++y;
  }
  void line(std::string_view s, Style st = {}) {
    if (y >= bottom) return;
    c.text(y++, x, s, width, st);
  }
  void gap() { ++y; }
};

class GameUi {
 public:
  virtual ~GameUi() = default;
  virtual void start(const Model& m) = 0;
  virtual void on_key(Command c, client::Client& client, const Model& m) = 0;
  virtual void on_snapshot(client::Client& client, const Model& m) = 0;
  // After MatchEnd: drop what is pending.
  virtual void stop() {}
  // The game's box while in a match.
  virtual void draw(Canvas& c, const Box& b, const Model& m) const = 0;
  // What follows "you  slot N" in the panel, e.g. ", moving left".
  virtual std::string you(const Model& m) const = 0;
  // The game's rows of the panel (scores, turn, ...).
  virtual void panel(Panel& p, const Model& m) const = 0;
  // The key help line.
  virtual const char* help() const = 0;
  // MatchEnd.detail in words ("" when there is nothing to say).
  virtual std::string end_detail(uint32_t detail) const = 0;
};

std::unique_ptr<GameUi> make_arena_ui();
std::unique_ptr<GameUi> make_battleship_ui();
// The GameUi of MatchFound.game, or nullptr for a game this client does not know.
std::unique_ptr<GameUi> make_game_ui(std::string_view game);
// "arena, battleship": for the message about an unknown game.
const char* known_games();

// Cell (column or row) of coordinate v in a field of `size` units drawn on
// `cells` cells: floor(v * cells / size), clamped into 0..cells-1
// (render_arena.cpp).
int scale_to_cells(int32_t v, int32_t size, int cells);

// "0".."9", "a".."f" for seats 0..15, '?' beyond.
inline char slot_glyph(uint32_t id) { return id < 16 ? "0123456789abcdef"[id] : '?'; }

}  // namespace skirmish::terminal
