// Entry point: parses flags, then either checks an inventory or runs the daemon.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "daemon/daemon.h"
#include "daemon/hardening.h"
#include "daemon/log.h"
#include "inventory/config.h"

#ifndef SITEPROBE_VERSION
#define SITEPROBE_VERSION "dev"
#endif

namespace {

const char* const kUsage =
    "usage: siteprobe --config FILE [--web.listen-address HOST:PORT] [--web.config.file FILE]\n"
    "                 [--web.enable-lifecycle] [--web.allowed-hosts HOST,...]\n"
    "                 [--log.level LEVEL] [--log.format logfmt|json]\n"
    "       siteprobe check FILE...\n"
    "       siteprobe readiness [--url http://127.0.0.1:9723]\n"
    "       siteprobe --version | help | -h | --help\n"
    "\n"
    "  --config FILE               site inventory (YAML); SIGHUP reloads it\n"
    "  --web.listen-address ADDR   where to serve /metrics, /-/healthy, /-/ready: IP:PORT,\n"
    "                              [IPv6]:PORT, HOSTNAME:PORT, or :PORT for every address\n"
    "                              (default 127.0.0.1:9723, this host only)\n"
    "  --web.config.file FILE      TLS and basic auth, exporter-toolkit format (default: none)\n"
    "  --web.enable-lifecycle      allow POST /-/reload (same as SIGHUP; default off)\n"
    "  --web.allowed-hosts LIST    answer only requests whose Host header is one of these names or\n"
    "                              addresses, comma-separated (default: any; against DNS rebinding)\n"
    "  --log.level LEVEL           debug, info, warn or error (default info)\n"
    "  --log.format FORMAT         logfmt or json (default logfmt)\n"
    "  check FILE...               validate inventories, print every error, exit 1 if any\n"
    "  readiness [--url URL]       print the endpoints a running siteprobe finds not ready for a\n"
    "                              call, by district; exit 0 all ready, 1 some not, 2 no answer\n";

bool is_help(const char* a) {
  return std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0;
}

// "HOST:PORT" or ":PORT": empty if well formed, else what is wrong with it.
std::string listen_address_error(const std::string& a) {
  const auto colon = a.rfind(':');
  if (colon == std::string::npos) return "no port (use IP:PORT, HOSTNAME:PORT or :PORT)";
  std::string host = a.substr(0, colon);
  const std::string port = a.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535)
    return "port \"" + port + "\" is not a number from 0 to 65535";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {  // [IPv6]:PORT
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) == 1) return "";
    return "\"" + host + "\" is not an IPv6 address in brackets";
  }
  if (host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
      std::string::npos)
    return "\"" + host + "\" is not an IPv4 address, [IPv6] address or host name";
  return "";
}

int check(int argc, char** argv) {
  for (int i = 2; i < argc; ++i)
    if (is_help(argv[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  if (argc < 3) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  int rc = 0;
  for (int i = 2; i < argc; ++i) {
    auto r = siteprobe::load_config(argv[i]);
    for (const auto& w : r.warnings) std::fprintf(stderr, "%s\n", w.c_str());
    if (r.config) {
      std::printf("%s: OK: %s\n", argv[i], siteprobe::summarize(*r.config).c_str());
      if (auto w = siteprobe::inline_secret_warning(*r.config); !w.empty())
        std::fprintf(stderr, "%s\n", w.c_str());
      continue;
    }
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "%s: FAILED: %zu error%s\n", argv[i], r.errors.size(),
                 r.errors.size() == 1 ? "" : "s");
    rc = 1;
  }
  return rc;
}

// A blocking HTTP/1.0 GET (10 s timeouts): the status and body, or 0 and `err`.
int http_get(const std::string& host, int port, const std::string& path, std::string& body,
             std::string& err) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (const int e = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); e != 0) {
    err = gai_strerror(e);
    return 0;
  }
  int fd = -1;
  err = "no address";
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const timeval tv{10, 0};
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
                    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)) {
      err = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return 0;
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: " +
                          (host.find(':') != std::string::npos ? "[" + host + "]" : host) + "\r\n\r\n";
  std::string resp;
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[8192];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  const auto end = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12 || end == std::string::npos) {
    err = "not an HTTP response";
    return 0;
  }
  body = resp.substr(end + 4);
  return std::atoi(resp.c_str() + 9);
}

// Fetches /readiness from a running daemon: it holds the live state (damped ICMP verdicts, MOS
// windows, the last call-service answers) that a one-shot check could not rebuild in seconds.
int readiness(int argc, char** argv) {
  std::string url = "http://127.0.0.1:9723";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (is_help(argv[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--url" && i + 1 < argc) {
      url = argv[++i];
    } else if (a.rfind("--url=", 0) == 0) {
      url = a.substr(6);
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  // http://HOST:PORT, http://[V6]:PORT; a trailing path is ignored.
  std::string rest = url.rfind("http://", 0) == 0 ? url.substr(7) : url;
  rest = rest.substr(0, rest.find('/'));
  std::string host = rest;
  int port = 80;
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    host = rest.substr(0, colon);
    port = std::atoi(rest.c_str() + colon + 1);
  }
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || port <= 0 || port > 65535) {
    std::fprintf(stderr, "siteprobe readiness: bad --url %s (use http://HOST:PORT)\n", url.c_str());
    return 2;
  }
  std::string body, err;
  const int status = http_get(host, port, "/readiness", body, err);
  if (!status) {
    std::fprintf(stderr, "siteprobe readiness: no answer from %s: %s\n", url.c_str(), err.c_str());
    return 2;
  }
  std::fwrite(body.data(), 1, body.size(), stdout);
  if (status == 200 || status == 503) return status == 200 ? 0 : 1;
  std::fprintf(stderr, "siteprobe readiness: %s answered HTTP %d\n", url.c_str(), status);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any inventory (and so any SNMP secret) is read: a core dump would hold them in clear.
  if (!siteprobe::make_undumpable()) {
    siteprobe::log(siteprobe::LogLevel::Error, "cannot disable core dumps",
                   {{"error", std::strerror(errno)}});
    return 1;
  }
  if (argc >= 2 && std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "check") == 0) return check(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "readiness") == 0) return readiness(argc, argv);
  siteprobe::Options opts;
  siteprobe::LogLevel level = siteprobe::LogLevel::Info;
  siteprobe::LogFormat format = siteprobe::LogFormat::Logfmt;
  std::string web_config, allowed_hosts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    if (a == "--web.enable-lifecycle") {
      opts.enable_lifecycle = true;
      continue;
    }
    if (a == "--version") {
      std::printf("siteprobe %s\n", SITEPROBE_VERSION);
      return 0;
    }
    if (is_help(argv[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    const auto eq = a.find('=');
    if (eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (a != "--config" && a != "--web.listen-address" && a != "--web.config.file" && a != "--log.level" &&
        a != "--log.format" && a != "--web.allowed-hosts") {
      std::fprintf(stderr, "siteprobe: unknown %s: %s\n%s", a.rfind('-', 0) == 0 ? "flag" : "command",
                   a.c_str(), kUsage);
      return 2;
    }
    if (eq == std::string::npos) {
      if (i + 1 == argc) {
        std::fprintf(stderr, "siteprobe: %s needs a value\n%s", a.c_str(), kUsage);
        return 2;
      }
      v = argv[++i];
    }
    if (a == "--config") {
      opts.config_file = v;
    } else if (a == "--web.listen-address") {
      if (auto e = listen_address_error(v); !e.empty()) {
        std::fprintf(stderr, "siteprobe: bad --web.listen-address %s: %s\n%s", v.c_str(), e.c_str(), kUsage);
        return 2;
      }
      opts.listen_address = v;
    } else if (a == "--web.config.file") {
      web_config = v;
    } else if (a == "--web.allowed-hosts") {
      allowed_hosts = v;
    } else if (!(a == "--log.level" && siteprobe::parse_log_level(v, level)) &&
               !(a == "--log.format" && siteprobe::parse_log_format(v, format))) {
      std::fprintf(stderr, "siteprobe: bad value for %s: %s\n%s", a.c_str(), v.c_str(), kUsage);
      return 2;
    }
  }
  if (opts.config_file.empty()) {
    std::fprintf(stderr, "siteprobe: --config FILE is required\n%s", kUsage);
    return 2;
  }
  siteprobe::log_setup(level, format);
  if (!web_config.empty()) {
    auto w = siteprobe::load_web_config(web_config);
    for (const auto& e : w.errors)
      siteprobe::log(siteprobe::LogLevel::Error, "invalid web config", {{"error", e}});
    if (!w.config) return 1;
    opts.web = *w.config;
  }
  for (std::size_t at = 0; at < allowed_hosts.size();) {  // lower case, without [] around IPv6
    std::size_t comma = allowed_hosts.find(',', at);
    if (comma == std::string::npos) comma = allowed_hosts.size();
    std::string h = allowed_hosts.substr(at, comma - at);
    if (h.size() > 1 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    for (auto& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!h.empty()) opts.web.allowed_hosts.push_back(h);
    at = comma + 1;
  }
  siteprobe::Daemon d(opts);
  if (!d.start()) return 1;
  return d.run();
}
