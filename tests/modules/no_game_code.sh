#!/usr/bin/env bash
# The server holds no game code (issue 13: "no coins, tags or arena sizes, a
# grep proves it"): the words of the bundled games' rules must not appear in
# the code of server/ or protocol/ outside comments. Exit 1 listing each hit.
#   tests/modules/no_game_code.sh REPO_ROOT
set -euo pipefail
root="${1:?usage: no_game_code.sh REPO_ROOT}"
words='coins?|tag_radius|pickup_radius|pickup|move_x|move_y|max_speed|arena_width|arena_height|ARENA_[A-Z_]+|BATTLESHIP_[A-Z_]+|ships?|shots?|turn_ms|tagged'
hits=$(cd "$root" && grep -rnwE --include='*.cpp' --include='*.h' --include='*.fbs' "$words" server protocol |
  grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|\*|/\*)' || true)
if [[ -n $hits ]]; then
  echo "no_game_code: game rules in the server's code (they belong in games/):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "no_game_code: server/ and protocol/ name no game rule"
