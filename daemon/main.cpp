// Entry point: parses flags, then either checks an inventory or runs the daemon.
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/daemon.h"
#include "daemon/hardening.h"
#include "daemon/http_client.h"
#include "daemon/log.h"
#include "daemon/maintenance.h"
#include "daemon/report.h"
#include "daemon/stamp_cli.h"
#include "inventory/calendar.h"
#include "inventory/config.h"
#include "inventory/diff.h"
#include "inventory/shard.h"
#include "probes/registry.h"

#ifndef SITEPROBE_VERSION
#define SITEPROBE_VERSION "dev"
#endif

namespace {

const char* const kUsage =
    "usage: siteprobe --config FILE [--web.listen-address HOST:PORT] [--web.config.file FILE]\n"
    "                 [--web.enable-lifecycle] [--web.allowed-hosts HOST,...]\n"
    "                 [--log.level LEVEL] [--log.format logfmt|json] [--shard i/N] [--vantage NAME]\n"
    "                 [--peer URL]...\n"
    "       siteprobe check FILE...\n"
    "       siteprobe check --diff OLD NEW\n"
    "       siteprobe check --shards N [--from M] FILE\n"
    "       siteprobe readiness [--url URL] [--ca-file F] [--cert-file F [--key-file F]] [--conference "
    "NAME\n"
    "                           [--report csv|markdown]] [--username U --password-file F]\n"
    "                           [--web.config.file F] [--lang vi|en]\n"
    "       siteprobe maintenance list [--at 'YYYY-MM-DD HH:MM'] FILE\n"
    "       siteprobe report --prometheus URL --month YYYY-MM --config FILE [--format csv|md|html]\n"
    "       siteprobe path-test [OPTIONS] ADDRESS[:PORT]   (siteprobe path-test --help)\n"
    "       siteprobe reflect [OPTIONS]                    (siteprobe reflect --help)\n"
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
    "  --shard i/N                 probe only shard i of N: whole subtrees by rendezvous hashing,\n"
    "                              plus their ancestors (docs/scale-out.md; default 0/1: all)\n"
    "  --vantage NAME              where this instance probes from, on siteprobe_shard_info\n"
    "  --peer URL                  another siteprobe (vantage or shard), repeatable: its /-/healthy\n"
    "                              every 5 s is siteprobe_peer_up{peer=URL}\n"
    "  check FILE...               validate inventories, print every error, exit 1 if any\n"
    "  check --diff OLD NEW        validate both, then list the sites added, removed, renamed or\n"
    "                              merged (NEW's formerly), re-parented and renamed in place, for\n"
    "                              a change ticket; exit 0 once the diff is printed, 1 if either\n"
    "                              file is invalid\n"
    "  check --shards N [--from M] the subtrees each of N shards probes, and with --from the ones\n"
    "                              that move when M shards become N\n"
    "  maintenance list            the inventory's maintenance windows: on now (alerts muted) or\n"
    "                              when next; --at a local time (+07:00, or append an offset\n"
    "                              like +09:00) instead of now\n"
    "  report                      the month's availability per district and site against the\n"
    "                              inventory's SLO (sla.slo), from Prometheus (URL: http[s]://HOST:PORT\n"
    "                              [/prefix]); the month runs in sla.time_zone (default +07:00);\n"
    "                              minutes down by cause, longest outage, maintenance (default csv)\n"
    "  readiness                   print the endpoints a running siteprobe finds not ready for a\n"
    "                              call, by district; exit 0 all ready, 1 some not, 2 no answer.\n"
    "                              Without --url: the daemon of /etc/default/siteprobe (its listen\n"
    "                              address; https and its certificate as CA if its web config has\n"
    "                              TLS). The password is read from a file, never from argv.\n"
    "                              --lang: Vietnamese or English (default: vi if $LANG is vi*)\n"
    "                              --conference NAME: its pre-flight table; with --report, the\n"
    "                              quality report of its occurrence under way or last (exit 0)\n";

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

// `siteprobe check --shards N [--from M] FILE`.
int check_shards(int argc, char** argv) {
  const auto count = [](const char* t) {
    std::string why;
    auto s = siteprobe::parse_shard(std::string("0/") + t, why);
    return s ? s->count : 0;
  };
  const bool from = argc == 7 && std::strcmp(argv[4], "--from") == 0;
  const int n = argc >= 5 ? count(argv[3]) : 0, m = from ? count(argv[5]) : 0;
  if ((argc != 5 && !from) || n == 0 || (from && m == 0)) {
    std::fprintf(stderr, "siteprobe check: --shards N [--from M] FILE, with N and M in 1..1000\n%s", kUsage);
    return 2;
  }
  const char* file = argv[argc - 1];
  auto r = siteprobe::probes::load_inventory(file);
  if (!r.config) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "%s: FAILED: %zu error%s\n", file, r.errors.size(), r.errors.size() == 1 ? "" : "s");
    return 1;
  }
  std::printf("%s: OK: %s\n\n%s", file, siteprobe::summarize(*r.config).c_str(),
              siteprobe::format_shards(*r.config, n, m).c_str());
  return 0;
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
  const bool diff = std::strcmp(argv[2], "--diff") == 0;
  if (diff && argc != 5) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (std::strcmp(argv[2], "--shards") == 0) return check_shards(argc, argv);
  int rc = 0;
  std::vector<std::shared_ptr<const siteprobe::Config>> loaded;
  for (int i = diff ? 3 : 2; i < argc; ++i) {
    auto r = siteprobe::probes::load_inventory(argv[i]);
    for (const auto& w : r.warnings) std::fprintf(stderr, "%s\n", w.c_str());
    if (r.config) {
      std::printf("%s: OK: %s\n", argv[i], siteprobe::summarize(*r.config).c_str());
      if (auto w = siteprobe::inline_secret_warning(*r.config); !w.empty())
        std::fprintf(stderr, "%s\n", w.c_str());
      loaded.push_back(r.config);
      continue;
    }
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "%s: FAILED: %zu error%s\n", argv[i], r.errors.size(),
                 r.errors.size() == 1 ? "" : "s");
    rc = 1;
  }
  if (diff && rc == 0) {
    const auto d = siteprobe::diff_inventories(*loaded[0], *loaded[1]);
    std::printf("\n%s", siteprobe::format_diff(d, argv[3], argv[4]).c_str());
  }
  return rc;
}

// `siteprobe maintenance list [--at TIME] FILE`: what is or will be muted, from the file alone.
int maintenance(int argc, char** argv) {
  std::string at, file;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (is_help(argv[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--at" && i + 1 < argc)
      at = argv[++i];
    else if (a.rfind("--at=", 0) == 0)
      at = a.substr(5);
    else if (file.empty() && a[0] != '-')
      file = a;
    else
      return std::fprintf(stderr, "siteprobe maintenance: unexpected %s\n%s", a.c_str(), kUsage), 2;
  }
  if (argc < 3 || std::strcmp(argv[2], "list") != 0 || file.empty()) return std::fputs(kUsage, stderr), 2;
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (!at.empty()) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, oh = 7, om = 0;
    char sign = '+';
    const int n =
        std::sscanf(at.c_str(), "%4d-%2d-%2d %2d:%2d%c%2d:%2d", &y, &mo, &d, &h, &mi, &sign, &oh, &om);
    if ((n != 5 && n != 8) || (sign != '+' && sign != '-') || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        h > 23 || mi > 59)
      return std::fprintf(stderr,
                          "siteprobe maintenance: --at \"%s\" is not \"YYYY-MM-DD HH:MM\" (+07:00 unless "
                          "an offset follows)\n",
                          at.c_str()),
             2;
    const int off = (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    now =
        siteprobe::inventory_detail::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) *
            86400 +
        std::int64_t{h} * 3600 + std::int64_t{mi} * 60 - off;
  }
  auto r = siteprobe::probes::load_inventory(file);
  if (!r.config) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  std::fputs(siteprobe::Maintenance::list(*r.config, now).c_str(), stdout);
  return 0;
}

// "--name=value" or "--name value": splits `a` (argv[i]) into name and value, taking the next
// argument as the value (and stepping `i` past it) when there is no '='.
void option_value(int argc, char** argv, int& i, std::string& a, std::string& v) {
  if (const auto eq = a.find('='); eq != std::string::npos) {
    v = a.substr(eq + 1);
    a = a.substr(0, eq);
  } else if (i + 1 < argc) {
    v = argv[++i];
  }
}

// `siteprobe report`: the monthly availability report (daemon/report.h); exit 0, 1 on a query or
// inventory error, 2 on bad arguments.
int report(int argc, char** argv) {
  siteprobe::HttpGet g;
  g.timeout_s = 120;  // a month of one-minute steps over many sites takes Prometheus a while
  std::string month, file, format = "csv";
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i], v;
    if (is_help(argv[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    option_value(argc, argv, i, a, v);
    std::string* dst = a == "--prometheus" ? &g.url
                       : a == "--month"    ? &month
                       : a == "--config"   ? &file
                       : a == "--format"   ? &format
                                           : nullptr;
    if (!dst || v.empty())
      return std::fprintf(stderr, "siteprobe report: %s %s\n%s",
                          v.empty() ? "missing value for" : "unknown flag", a.c_str(), kUsage),
             2;
    *dst = v;
  }
  if (g.url.empty() || month.empty() || file.empty())
    return std::fprintf(stderr, "siteprobe report: --prometheus, --month and --config are required\n%s",
                        kUsage),
           2;
  if (format != "csv" && format != "md" && format != "html")
    return std::fprintf(stderr, "siteprobe report: --format must be csv, md or html, not %s\n",
                        format.c_str()),
           2;
  auto r = siteprobe::probes::load_inventory(file);
  if (!r.config) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  const auto& sla = r.config->sla;
  std::int64_t start = 0, end = 0;
  if (!siteprobe::report::parse_month(month, sla.utc_offset_seconds, start, end))
    return std::fprintf(stderr, "siteprobe report: --month \"%s\" is not YYYY-MM\n", month.c_str()), 2;
  if (end > static_cast<std::int64_t>(std::time(nullptr)))
    std::fprintf(stderr, "siteprobe report: warning: %s has not ended; minutes to come count as no data\n",
                 month.c_str());
  std::map<std::string, siteprobe::report::SiteMinutes> by_site;
  std::string err;
  if (!siteprobe::report::fetch(g, start, end, by_site, err))
    return std::fprintf(stderr, "siteprobe report: %s\n", err.c_str()), 1;
  const auto rows = siteprobe::report::build_rows(*r.config, by_site);
  std::fputs(siteprobe::report::render(rows, format, month, sla.time_zone, sla.utc_offset_seconds).c_str(),
             stdout);
  return 0;
}

// Reads a file whole ("" and `err` set if it cannot); a password file loses its trailing newline.
bool read_file(const std::string& path, std::string& out, std::string& err) {
  std::FILE* f = std::fopen(path.c_str(), "rb");  // NOLINT(cppcoreguidelines-owning-memory): closed below
  if (!f) {
    err = path + ": " + std::strerror(errno);
    return false;
  }
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0 && out.size() < (1u << 20);)
    out.append(buf, n);
  std::fclose(f);  // NOLINT(cppcoreguidelines-owning-memory)
  return true;
}

// The listen address and web config of an installed daemon: ARGS="..." in /etc/default/siteprobe.
void installed_daemon(const std::string& defaults, std::string& listen, std::string& web_config) {
  std::string text, err;
  if (!read_file(defaults, text, err)) return;
  std::string args;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(at, nl - at);
    if (line.rfind("ARGS=", 0) == 0) args = line.substr(5);
    at = nl + 1;
  }
  for (char& c : args)
    if (c == '"' || c == '\'' || c == '=') c = ' ';
  std::vector<std::string> words;
  for (std::size_t at = 0; (at = args.find_first_not_of(" \t", at)) != std::string::npos;) {
    const std::size_t end = std::min(args.find_first_of(" \t", at), args.size());
    words.push_back(args.substr(at, end - at));
    at = end;
  }
  for (std::size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i] == "--web.listen-address") listen = words[i + 1];
    if (words[i] == "--web.config.file") web_config = words[i + 1];
  }
}

// Fetches /readiness from a running daemon: it holds the live state (damped ICMP verdicts, MOS
// windows, the last call-service answers) that a one-shot check could not rebuild in seconds.
int readiness(int argc, char** argv) {
  siteprobe::HttpGet g;
  std::string password_file, web_config, defaults = "/etc/default/siteprobe";
  const char* env_lang = std::getenv("LANG");
  std::string lang = env_lang && std::strncmp(env_lang, "vi", 2) == 0 ? "vi" : "en";
  std::string conference, report;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i], v;
    if (is_help(argv[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    option_value(argc, argv, i, a, v);
    std::string* dst = a == "--url"               ? &g.url
                       : a == "--ca-file"         ? &g.ca_file
                       : a == "--cert-file"       ? &g.cert_file
                       : a == "--key-file"        ? &g.key_file
                       : a == "--username"        ? &g.username
                       : a == "--password-file"   ? &password_file
                       : a == "--web.config.file" ? &web_config
                       : a == "--defaults"        ? &defaults
                       : a == "--lang"            ? &lang
                       : a == "--conference"      ? &conference
                       : a == "--report"          ? &report
                                                  : nullptr;
    if (!dst || v.empty()) {
      std::fprintf(stderr, "siteprobe readiness: %s %s\n%s", v.empty() ? "missing value for" : "unknown flag",
                   a.c_str(), kUsage);
      return 2;
    }
    *dst = v;
  }
  if (!report.empty() && (conference.empty() || (report != "csv" && report != "markdown"))) {
    std::fprintf(stderr, "siteprobe readiness: --report csv|markdown needs --conference NAME\n%s", kUsage);
    return 2;
  }
  if (lang != "vi" && lang != "en") {
    std::fprintf(stderr, "siteprobe readiness: --lang must be vi or en, not %s\n%s", lang.c_str(), kUsage);
    return 2;
  }
  std::string err;
  // Without --url: the installed daemon's address and web config, as its unit starts it.
  std::string listen = "127.0.0.1:9723";
  if (g.url.empty()) installed_daemon(defaults, listen, web_config);
  std::optional<siteprobe::WebConfig> web;
  if (!web_config.empty()) {
    auto w = siteprobe::load_web_config(web_config);
    for (const auto& e : w.errors) std::fprintf(stderr, "siteprobe readiness: %s\n", e.c_str());
    if (!w.config) return 2;
    web = w.config;
  }
  if (g.url.empty()) {
    // A wildcard listen address is reached on loopback.
    const auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "[::]") host = "[::1]";
    g.url = (web && web->tls() ? "https://" : "http://") + host + listen.substr(colon);
  }
  // The daemon's own certificate is a trust anchor good enough to reach it.
  if (g.ca_file.empty() && web && web->tls()) g.ca_file = web->cert_file;
  if (!password_file.empty() && !read_file(password_file, g.password, err)) {
    std::fprintf(stderr, "siteprobe readiness: cannot read the password: %s\n", err.c_str());
    return 2;
  }
  while (!g.password.empty() && (g.password.back() == '\n' || g.password.back() == '\r'))
    g.password.pop_back();
  if (g.key_file.empty()) g.key_file = g.cert_file;
  std::string body;
  std::string query = "/readiness?lang=" + lang;
  if (!conference.empty()) {  // a conference name is an id: [A-Za-z0-9][A-Za-z0-9_.-]*, nothing to escape
    if (conference.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
        std::string::npos) {
      std::fprintf(stderr, "siteprobe readiness: --conference: not a conference name: %s\n",
                   conference.c_str());
      return 2;
    }
    query += "&conference=" + conference;
    if (!report.empty()) query = "/conference-report?conference=" + conference + "&format=" + report;
  }
  const int status = siteprobe::http_get(g, query, body, err);
  if (!status) {
    std::fprintf(stderr, "siteprobe readiness: no answer from %s: %s\n", g.url.c_str(), err.c_str());
    return 2;
  }
  if (!report.empty() && status == 404) {  // no such conference, or no occurrence yet
    std::fprintf(stderr, "siteprobe readiness: %s", body.c_str());
    return 1;
  }
  if (status == 200 || status == 503) {
    std::fwrite(body.data(), 1, body.size(), stdout);
    return status == 200 ? 0 : 1;
  }
  std::fprintf(stderr, "siteprobe readiness: %s answered HTTP %d%s\n", g.url.c_str(), status,
               status == 401 ? " (basic auth: give --username and --password-file)" : "");
  return 2;
}

// The daemon's heap on transparent huge pages (glibc.malloc.hugetlb=1: malloc madvises what it
// maps, where the kernel's THP mode is `madvise` or `always`). At 10k targets the per-target state
// spans tens of MB, and with 4 KB pages most of the probe path's reads missed the TLB (its user
// CPU fell by a third in a profile at 10k targets: docs/performance.md). glibc reads its tunables
// only at start, so the daemon runs itself again once with the tunable added, before any thread
// exists; a GLIBC_TUNABLES already naming glibc.malloc.hugetlb (=0 turns it off) is kept as it is,
// and a failed exec goes on as it was.
void use_huge_pages(char** argv) {
  const char* t = std::getenv("GLIBC_TUNABLES");
  const std::string have = t ? t : "";
  if (have.find("glibc.malloc.hugetlb") != std::string::npos) return;
  const std::string want = (have.empty() ? "" : have + ":") + "glibc.malloc.hugetlb=1";
  if (setenv("GLIBC_TUNABLES", want.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  if (t)  // the exec failed: as before
    setenv("GLIBC_TUNABLES", have.c_str(), 1);
  else
    unsetenv("GLIBC_TUNABLES");
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives the heap's top back to the kernel whenever 128 KiB lie free there, and net-snmp
  // takes and frees a 64 KiB receive buffer per datagram: each SNMP reply then paid page faults
  // (9 % of the CPU per poll). Memory freed by a load or reload is given back by malloc_trim().
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
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
  if (argc >= 2 && std::strcmp(argv[1], "maintenance") == 0) return maintenance(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "readiness") == 0) return readiness(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "report") == 0) return report(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "path-test") == 0) return siteprobe::path_test_main(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "reflect") == 0) return siteprobe::reflect_main(argc, argv);
  use_huge_pages(argv);
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
        a != "--log.format" && a != "--web.allowed-hosts" && a != "--shard" && a != "--vantage" &&
        a != "--peer") {
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
    } else if (a == "--shard") {
      std::string why;
      const auto s = siteprobe::parse_shard(v, why);
      if (!s) {
        std::fprintf(stderr, "siteprobe: bad --shard: %s\n%s", why.c_str(), kUsage);
        return 2;
      }
      opts.shard = *s;
    } else if (a == "--vantage") {
      if (v.empty() || v.size() > 64 || v.find_first_of("\"\\\n") != std::string::npos) {
        std::fprintf(stderr, "siteprobe: bad --vantage: 1 to 64 characters, no quote or backslash\n%s",
                     kUsage);
        return 2;
      }
      opts.vantage = v;
    } else if (a == "--peer") {
      if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
        std::fprintf(stderr, "siteprobe: bad --peer %s: not an http:// or https:// URL\n%s", v.c_str(),
                     kUsage);
        return 2;
      }
      opts.peers.push_back(v);
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
