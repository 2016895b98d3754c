// ncurses for skirmish-client: see screen.h for the contract and layout.
#define NCURSES_NOMACROS 1  // real functions, no move()/erase()/clear() macros
#include "client/terminal/screen.h"

#include <curses.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace skirmish::terminal {
namespace {

enum Pair : short { kPairMe = 1, kPairOther, kPairCoin, kPairStunned, kPairWarn, kPairBorder, kPairShip, kPairHit, kPairMiss };

SCREEN* scr(void* p) { return static_cast<SCREEN*>(p); }

// Text at (y, x), cut at column x + width and at the screen edge.
void put(int y, int x, std::string_view s, int width, attr_t attr = A_NORMAL) {
  if (y < 0 || y >= LINES || x < 0 || x >= COLS || width <= 0) return;
  const int n = std::min<int>({int(s.size()), width, COLS - x});
  if (n <= 0) return;
  attron(attr);
  mvaddnstr(y, x, s.data(), n);
  attroff(attr);
}

// `s` centred on row y between columns x and x + width.
void put_centred(int y, int x, int width, std::string_view s, attr_t attr = A_NORMAL) {
  const int n = std::min<int>(int(s.size()), width);
  put(y, x + (width - n) / 2, s, n, attr);
}

std::string fmt(const char* f, auto... args) {
  char b[256];
  std::snprintf(b, sizeof b, f, args...);
  return b;
}

attr_t pair_attr(bool colors, Pair p) { return colors ? attr_t(COLOR_PAIR(p)) : A_NORMAL; }

// A Style (game_ui.h) as curses attributes.
attr_t style_attr(bool colors, Style st) {
  attr_t a = A_NORMAL;
  switch (st.ink) {
    case Ink::Normal: break;
    case Ink::Me: a = pair_attr(colors, kPairMe); break;
    case Ink::Other: a = pair_attr(colors, kPairOther); break;
    case Ink::Coin: a = pair_attr(colors, kPairCoin); break;
    case Ink::Stunned: a = pair_attr(colors, kPairStunned); break;
    case Ink::Warn: a = pair_attr(colors, kPairWarn); break;
    case Ink::Border: a = pair_attr(colors, kPairBorder); break;
    case Ink::Ship: a = pair_attr(colors, kPairShip); break;
    case Ink::Hit: a = pair_attr(colors, kPairHit); break;
    case Ink::Miss: a = pair_attr(colors, kPairMiss); break;
  }
  if (st.flags & kBold) a |= A_BOLD;
  if (st.flags & kReverse) a |= A_REVERSE;
  if (st.flags & kDim) a |= A_DIM;
  if (st.flags & kUnderline) a |= A_UNDERLINE;
  return a;
}

// The Canvas a GameUi draws on: stdscr, clipped to the terminal.
class CursesCanvas final : public Canvas {
 public:
  explicit CursesCanvas(bool colors) : colors_(colors) {}
  void text(int y, int x, std::string_view s, int width, Style st) override {
    put(y, x, s, width, style_attr(colors_, st));
  }
  void glyph(int y, int x, char c, Style st) override {
    if (y < 0 || y >= LINES || x < 0 || x >= COLS) return;
    const unsigned char u = static_cast<unsigned char>(c);
    mvaddch(y, x, chtype(u >= 0x20 && u < 0x7f ? u : '?') | style_attr(colors_, st));
  }

 private:
  bool colors_;
};

void draw_border(int top, int left, int rows, int cols, attr_t attr) {
  attron(attr);
  mvaddch(top, left, '+');
  mvaddch(top, left + cols - 1, '+');
  mvaddch(top + rows - 1, left, '+');
  mvaddch(top + rows - 1, left + cols - 1, '+');
  mvhline(top, left + 1, '-', cols - 2);
  mvhline(top + rows - 1, left + 1, '-', cols - 2);
  mvvline(top + 1, left, '|', rows - 2);
  mvvline(top + 1, left + cols - 1, '|', rows - 2);
  attroff(attr);
}

void draw_results(const Model& m, const Box& b) {
  int y = b.top + std::max(0, (b.rows - int(m.results.size()) - 5) / 2);
  const int last = b.top + b.rows - 1;
  put_centred(y++, b.left, b.cols,
              "match over: " + m.end_reason + (m.end_detail.empty() ? "" : " (" + m.end_detail + ")"), A_BOLD);
  ++y;
  const int w = std::min(b.cols, 56);
  const int x = b.left + (b.cols - w) / 2;
  put(y++, x, "place  player                score  rating", w, A_UNDERLINE);
  for (const ResultRow& r : m.results) {
    if (y >= last - 1) break;
    const bool me = r.slot == m.your_slot;
    put(y++, x,
        fmt("%5u  %-*s %6d  %.0f -> %.0f", r.place, 21, (r.name + (me ? " (you)" : "")).c_str(), r.score,
            double(r.rating_before), double(r.rating_after)),
        w, me ? A_BOLD : A_NORMAL);
  }
  if (m.results.empty()) put_centred(y++, b.left, b.cols, "(no results)");
  put_centred(std::min(y + 1, last), b.left, b.cols, "n = play again   q = quit");
}

// The game box's inner message for the states without a world (or without a GameUi).
void draw_message(const Model& m, const Box& b, bool colors) {
  std::string line1, line2;
  switch (m.phase) {
    case Phase::Connecting: line1 = "connecting to " + m.target + " ..."; break;
    case Phase::Queued:
      line1 = fmt("searching for a match (%llu s)",
                  static_cast<unsigned long long>((m.now_ms - std::min(m.now_ms, m.queued_at_ms)) / 1000));
      if (m.queued_players > 0)
        line2 = fmt("%u player%s searching", m.queued_players, m.queued_players == 1 ? "" : "s");
      break;
    case Phase::InMatch:
      if (!m.unsupported.empty()) {
        line1 = m.unsupported;
        line2 = "the match goes on without you; q = quit";
      } else {
        line1 = "match found; waiting for the first snapshot";
      }
      break;
    case Phase::MatchOver: break;
    case Phase::Disconnected:
      line1 = "disconnected";
      line2 = "n = connect again   q = quit";
      break;
  }
  const int mid = b.top + b.rows / 2 - 1;
  put_centred(mid, b.left, b.cols, line1, A_BOLD);
  put_centred(mid + 1, b.left, b.cols, line2);
  if (m.reconnect_attempt > 0)
    put_centred(mid + 3, b.left, b.cols, fmt("reconnecting (attempt %u)", m.reconnect_attempt),
                A_BOLD | pair_attr(colors, kPairWarn));
}

// Long text over up to `max_lines` rows of the panel, broken at spaces
// where it can be.
int put_wrapped(int y, int x, int width, std::string_view s, int max_lines, attr_t attr) {
  if (width <= 0) return y;
  for (int i = 0; i < max_lines && !s.empty(); ++i) {
    size_t n = std::min(s.size(), size_t(width));
    if (n < s.size()) {
      const size_t space = s.substr(0, n + 1).rfind(' ');
      if (space != std::string_view::npos && space > 0) n = space;
    }
    put(y++, x, s.substr(0, n), width, attr);
    s.remove_prefix(n);
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  }
  return y;
}

void draw_panel(const Model& m, const GameUi* game, int x, int bottom, bool colors) {
  const int w = kPanelWidth - 1;
  CursesCanvas canvas(colors);
  Panel p{canvas, x, 0, bottom, w};
  const Style bold{Ink::Normal, kBold};
  p.line("Skirmish  " + m.name, bold);
  if (m.reconnect_attempt > 0)
    p.row("state", fmt("reconnecting (attempt %u)", m.reconnect_attempt), {Ink::Warn, kBold});
  else
    p.row("state", to_string(m.phase), bold);
  const bool matchy = m.phase == Phase::InMatch || m.phase == Phase::MatchOver;
  p.row("server", m.target);
  p.row("worker", m.have_welcome ? std::to_string(m.worker_index) : "-");
  p.row("ping", m.ping_us < 0 ? "-" : fmt("%.1f ms", double(m.ping_us) / 1000.0));
  p.row("rating", m.have_welcome ? fmt("%.0f", double(m.rating)) : "-");
  p.row("game", matchy ? m.game + (m.game_version.empty() ? "" : " " + m.game_version) : "-");
  p.row("match", matchy ? std::to_string(m.match_id) : "-");
  p.row("tick", m.world != nullptr ? std::to_string(m.world->tick) : "-");
  p.row("you", matchy ? fmt("slot %u", m.your_slot) + (game != nullptr ? game->you(m) : "") : "-");
  if (matchy && game != nullptr) game->panel(p, m);
  p.gap();
  int y = p.y;
  if (!m.notice.empty() && y < bottom) y = put_wrapped(y, x, w, m.notice, std::min(2, bottom - y), A_NORMAL);
  if (!m.last_error.empty() && y < bottom)
    put_wrapped(y, x, w, "error: " + m.last_error, std::min(4, bottom - y), pair_attr(colors, kPairWarn));
}

}  // namespace

Screen::~Screen() { end(); }

bool Screen::begin(std::string* error) {
  if (screen_ != nullptr) return true;
  SCREEN* s = newterm(nullptr, stdout, stdin);
  if (s == nullptr) {
    *error = "cannot start ncurses on this terminal (is TERM set?)";
    return false;
  }
  set_term(s);
  screen_ = s;
  cbreak();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  nodelay(stdscr, TRUE);
  set_escdelay(25);
  curs_set(0);
  if (has_colors() && start_color() == OK) {
    use_default_colors();
    colors_ = true;
    init_pair(kPairMe, COLOR_YELLOW, -1);
    init_pair(kPairOther, COLOR_CYAN, -1);
    init_pair(kPairCoin, COLOR_GREEN, -1);
    init_pair(kPairStunned, COLOR_RED, -1);
    init_pair(kPairWarn, COLOR_RED, -1);
    init_pair(kPairBorder, COLOR_BLUE, -1);
    init_pair(kPairShip, COLOR_WHITE, -1);
    init_pair(kPairHit, COLOR_RED, -1);
    init_pair(kPairMiss, COLOR_CYAN, -1);
  }
  return true;
}

void Screen::end() {
  if (screen_ == nullptr) return;
  curs_set(1);
  endwin();
  delscreen(scr(screen_));
  screen_ = nullptr;
  std::fflush(stdout);
}

bool Screen::next_key(Command* out) {
  if (screen_ == nullptr) return false;
  const int k = wgetch(stdscr);
  if (k == ERR) return false;
  switch (k) {
    case KEY_UP: case 'w': case 'W': *out = Command::Up; break;
    case KEY_DOWN: case 's': case 'S': *out = Command::Down; break;
    case KEY_LEFT: case 'a': case 'A': *out = Command::Left; break;
    case KEY_RIGHT: case 'd': case 'D': *out = Command::Right; break;
    case 'x': case 'X': *out = Command::Stop; break;
    case ' ': *out = Command::Action; break;
    case '\r': case '\n': case KEY_ENTER: *out = Command::Enter; break;
    case 'n': case 'N': *out = Command::Queue; break;
    case 'q': case 'Q': *out = Command::Quit; break;
    case KEY_RESIZE: *out = Command::Resize; break;
    case 'L' & 0x1f: *out = Command::Redraw; break;
    default: *out = Command::None; break;
  }
  return true;
}

void Screen::resize(int rows, int cols) {
  if (screen_ != nullptr && rows > 0 && cols > 0) resizeterm(rows, cols);
}

void Screen::invalidate() {
  if (screen_ != nullptr) clearok(curscr, TRUE);
}

void Screen::draw(const Model& m, const GameUi* game) {
  if (screen_ == nullptr) return;
  werase(stdscr);
  if (COLS < kMinCols || LINES < kMinRows) {
    put(0, 0, fmt("terminal too small: %dx%d", COLS, LINES), COLS, A_BOLD);
    put(1, 0, fmt("need %dx%d", kMinCols, kMinRows), COLS);
    put(2, 0, std::string("state: ") + to_string(m.phase), COLS);
    put(3, 0, "q = quit", COLS);
    wrefresh(stdscr);
    return;
  }
  const int box_cols = COLS - kPanelWidth;
  const int box_rows = LINES - 1;  // the last line is the key help
  draw_border(0, 0, box_rows, box_cols, pair_attr(colors_, kPairBorder));
  const Box inner{1, 1, box_rows - 2, box_cols - 2};
  if (m.phase == Phase::MatchOver) {
    draw_results(m, inner);
  } else if (m.phase == Phase::InMatch && m.world != nullptr && game != nullptr) {
    CursesCanvas canvas(colors_);
    game->draw(canvas, inner, m);
    if (m.reconnect_attempt > 0)
      put_centred(inner.top, inner.left, inner.cols, fmt(" reconnecting (attempt %u) ", m.reconnect_attempt),
                  A_BOLD | A_REVERSE | pair_attr(colors_, kPairWarn));
  } else {
    draw_message(m, inner, colors_);
  }
  draw_panel(m, game, box_cols + 1, box_rows, colors_);
  const bool playing = game != nullptr && (m.phase == Phase::InMatch || m.phase == Phase::MatchOver);
  put(LINES - 1, 0, playing ? game->help() : "n queue again  q quit  Ctrl-L repaint", COLS - 1, A_DIM);
  wrefresh(stdscr);
}

}  // namespace skirmish::terminal
