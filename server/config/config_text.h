// Inside server/config only: the text helpers every config error is built
// with (one line whatever the input held, did-you-mean), and [game.params], the game
// module's own table. config.cpp holds the schema and the loaders.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "config/config.h"

namespace skirmish::config::detail {

// Control characters become spaces.
std::string one_line(std::string_view s);
// A string as it would be written in TOML, escaped and cut to 60 characters.
std::string quote(std::string_view s);
// "string", "integer", ... for an error's "got ...".
std::string_view type_name(const toml::node& n);
// A value as given in the file: scalars as TOML, containers elided.
std::string show(const toml::node& n);
// Did-you-mean: `given` is within a small edit distance of `known`, case,
// '_' and '-' ignored ("tickrate" finds "tick_rate_hz").
bool close_enough(std::string_view given, std::string_view known);

// [game.params] into c.game_params: keys of 1..64 bytes, at most 64 of
// them, integer, float, boolean or string values (what the ABI carries).
bool apply_game_params(const toml::node& node, Config& c, std::string& error);

}  // namespace skirmish::config::detail
