#include "daemon/log.h"

#include <cstdio>
#include <ctime>
#include <string>

namespace siteprobe {
namespace {

LogLevel g_level = LogLevel::Info;
LogFormat g_format = LogFormat::Logfmt;
const char* const kNames[] = {"debug", "info", "warn", "error"};

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\')
      o += '\\', o += ch;
    else if (c == '\n')
      o += "\\n";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else
      o += ch;
  }
  return o;
}

std::string logfmt_value(const std::string& s) {
  bool quote = s.empty();
  for (char c : s)
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\\') quote = true;
  return quote ? "\"" + json_escape(s) + "\"" : s;
}

}  // namespace

bool parse_log_level(const std::string& s, LogLevel& out) {
  for (int i = 0; i < 4; ++i)
    if (s == kNames[i]) {
      out = static_cast<LogLevel>(i);
      return true;
    }
  return false;
}

bool parse_log_format(const std::string& s, LogFormat& out) {
  if (s == "logfmt")
    out = LogFormat::Logfmt;
  else if (s == "json")
    out = LogFormat::Json;
  else
    return false;
  return true;
}

void log_setup(LogLevel level, LogFormat format) {
  g_level = level;
  g_format = format;
}

void log(LogLevel level, const std::string& msg, LogFields fields) {
  if (level < g_level) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[64];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1,
                t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  const char* lvl = kNames[static_cast<int>(level)];
  std::string line;
  if (g_format == LogFormat::Json) {
    line = std::string("{\"ts\":\"") + when + "\",\"level\":\"" + lvl + "\",\"msg\":\"" + json_escape(msg) +
           "\"";
    for (const auto& [k, v] : fields) line += std::string(",\"") + k + "\":\"" + json_escape(v) + "\"";
    line += "}\n";
  } else {
    line = std::string("ts=") + when + " level=" + lvl + " msg=" + logfmt_value(msg);
    for (const auto& [k, v] : fields) line += std::string(" ") + k + "=" + logfmt_value(v);
    line += "\n";
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace siteprobe
