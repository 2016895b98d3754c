#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace skirmish::log {

void init_logging(const std::string& role, spdlog::level::level_enum level) {
  spdlog::drop_all();
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(role, std::move(sink));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %n[%P] %l: %v", spdlog::pattern_time_type::utc);
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // stderr is a log, not a cache
  spdlog::set_default_logger(std::move(logger));
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view s) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  for (auto& [name, lvl] : kLevels)
    if (name == s) return lvl;
  return std::nullopt;
}

}  // namespace skirmish::log
