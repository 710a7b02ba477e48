// Structured logging to stderr in logfmt or JSON. log() may be called from any thread (one fwrite
// per line); log_setup() only from main, before other threads start.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

namespace siteprobe {

enum class LogLevel { Debug, Info, Warn, Error };
enum class LogFormat { Logfmt, Json };

bool parse_log_level(const std::string& s, LogLevel& out);
bool parse_log_format(const std::string& s, LogFormat& out);
void log_setup(LogLevel level, LogFormat format);

using LogFields = std::initializer_list<std::pair<const char*, std::string>>;
void log(LogLevel level, const std::string& msg, LogFields fields = {});

}  // namespace siteprobe
