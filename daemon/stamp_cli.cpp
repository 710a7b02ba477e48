#include "daemon/stamp_cli.h"

#include <uv.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "daemon/hardening.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "probes/stamp.h"
#include "probes/stamp_reflect.h"
#include "util/net.h"

namespace siteprobe {
namespace {

const char* const kPathTestUsage =
    "usage: siteprobe path-test [--bitrate RATE] [--size BYTES] [--dscp CLASS] [--duration D]\n"
    "                           [--timeout D] [--max-loss PERCENT] [--format text|json] ADDRESS[:PORT]\n"
    "  Sends one STAMP stream (RFC 8762; TWAMP-Light reflectors answer it too) to ADDRESS (an IP\n"
    "  address; port 862 unless given: 192.0.2.1:862, [2001:db8::1]:862) and prints what it found.\n"
    "  --bitrate RATE    IP-level bits per second: 2M, 384k, 2000000 (default 2M)\n"
    "  --size BYTES      UDP payload per packet, 60..1472 (default 1200)\n"
    "  --dscp CLASS      AF41, EF, CS0..CS7, AFxy or 0..63 (default AF41)\n"
    "  --duration D      how long the stream runs: 20s, 1m (default 20s)\n"
    "  --timeout D       how long to wait for the last replies (default 2s)\n"
    "  --max-loss P      loss above P %% fails the test (default 1)\n"
    "  exit 0: passed; 1: loss, all lost, QoS rewritten or no reflector; 2: could not run\n";

const char* const kReflectUsage =
    "usage: siteprobe reflect [--listen ADDR:PORT]... [--stateful] [--max-pps N]\n"
    "                         [--web.listen-address ADDR:PORT] [--log.level L] [--log.format F]\n"
    "  Answers STAMP and TWAMP-Light test packets until SIGTERM or SIGINT.\n"
    "  --listen ADDR:PORT  where to listen; repeatable (default 0.0.0.0:862 and [::]:862)\n"
    "  --stateful          number replies per session (lets the sender tell forward from\n"
    "                      reverse loss); default stateless (echoes the sender's number)\n"
    "  --max-pps N         replies per second at most, over all senders (default 50000)\n"
    "  --web.listen-address ADDR  serve /metrics (siteprobe_reflector_*) there (default: off)\n";

// "2M", "384k", "2000000", "2Mbit/s" -> bits per second.
bool parse_rate(std::string s, double& out) {
  for (const char* suffix : {"bit/s", "bps"})
    if (s.size() > std::strlen(suffix) &&
        s.compare(s.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
      s.resize(s.size() - std::strlen(suffix));
  double mult = 1;
  if (!s.empty() && (s.back() == 'k' || s.back() == 'K'))
    mult = 1e3, s.pop_back();
  else if (!s.empty() && (s.back() == 'M' || s.back() == 'm'))
    mult = 1e6, s.pop_back();
  else if (!s.empty() && (s.back() == 'G' || s.back() == 'g'))
    mult = 1e9, s.pop_back();
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size() || !(v > 0)) return false;
    out = v * mult;
    return out >= 8000 && out <= 10e9;
  } catch (const std::exception&) {
    return false;
  }
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (const char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

void print(const probes::PathTestSummary& p, const probes::StreamStats& st, const std::string& to,
           bool json) {
  const auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    return std::string(b);
  };
  if (json) {
    std::cout << "{\"to\":\"" << to << "\",\"result\":\"" << verdict_name(p.verdict) << "\",\"reason\":\""
              << json_escape(p.reason) << "\",\"seq_base\":" << st.base()
              << ",\"bitrate_bps\":" << num(p.bitrate_bps) << ",\"sent\":" << p.sent
              << ",\"received\":" << p.received << ",\"duplicates\":" << st.duplicates()
              << ",\"reordered\":" << st.reordered() << ",\"invalid\":" << st.invalid_count()
              << ",\"skipped\":" << st.skipped_count() << ",\"loss\":" << num(p.loss_ratio)
              << ",\"loss_forward\":" << num(p.loss_forward) << ",\"loss_reverse\":" << num(p.loss_reverse)
              << ",\"rtt_median_seconds\":" << num(p.rtt_median_seconds)
              << ",\"ipdv_seconds\":" << num(p.ipdv_seconds)
              << ",\"ipdv_forward_seconds\":" << num(p.ipdv_forward_seconds)
              << ",\"ipdv_reverse_seconds\":" << num(p.ipdv_reverse_seconds)
              << ",\"r_factor\":" << num(p.r_factor) << ",\"mos\":" << num(p.mos) << ",\"dscp\":\"" << p.dscp
              << "\",\"dscp_forward\":" << p.dscp_forward << ",\"dscp_reverse\":" << p.dscp_reverse << "}\n";
    return;
  }
  const auto pct = [&](double r) { return r < 0 ? std::string("unknown") : num(r * 100) + " %"; };
  const auto ms = [&](double s) { return num(s * 1000) + " ms"; };
  std::cout << "path test to " << to << ": " << (p.reason.empty() ? "ok" : p.reason) << "\n"
            << "  result     " << verdict_name(p.verdict) << "\n"
            << "  packets    sent " << p.sent << ", received " << p.received << ", duplicates "
            << st.duplicates() << ", reordered " << st.reordered() << ", skipped (our own stall) "
            << st.skipped_count() << "\n"
            << "  loss       " << pct(p.loss_ratio) << " (forward " << pct(p.loss_forward) << ", reverse "
            << pct(p.loss_reverse) << ")\n"
            << "  rtt        median " << ms(p.rtt_median_seconds) << "; ipdv " << ms(p.ipdv_seconds)
            << " (forward " << ms(p.ipdv_forward_seconds) << ", reverse " << ms(p.ipdv_reverse_seconds)
            << ")\n"
            << "  dscp       " << p.dscp << " on the way there; "
            << (p.dscp_reverse < 0 ? "unknown"
                : p.dscp_reverse   ? "unchanged"
                                   : "rewritten")
            << " on the way back\n"
            << "  E-model    ";
  if (p.received == 0)
    std::cout << "n/a (no replies)\n";
  else
    std::cout << "R " << num(std::round(p.r_factor * 10) / 10) << ", MOS "
              << num(std::round(p.mos * 100) / 100) << " (at call rate)\n";
}

// "ADDR", "ADDR:PORT", "[V6]:PORT" -> address with port (default 862).
bool parse_target(const std::string& t, sockaddr_storage& out) {
  std::string host = t;
  int port = 862;
  if (!t.empty() && t.front() == '[') {
    const auto close = t.find(']');
    if (close == std::string::npos) return false;
    host = t.substr(1, close - 1);
    if (close + 1 < t.size()) {
      if (t[close + 1] != ':') return false;
      port = std::atoi(t.c_str() + close + 2);
    }
  } else if (std::count(t.begin(), t.end(), ':') == 1) {
    host = t.substr(0, t.find(':'));
    port = std::atoi(t.c_str() + t.find(':') + 1);
  }
  auto a = net::parse_ip(host);
  if (!a || port < 1 || port > 65535) return false;
  out = *a;
  net::set_port(out, port);
  return true;
}

}  // namespace

int path_test_main(int argc, char** argv) {
  probes::StreamSpec spec;
  bool json = false;
  std::string target;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "-h" || a == "--help") {
        std::cout << kPathTestUsage;
        return 0;
      } else if (a == "--bitrate") {
        const std::string v = value();
        if (!parse_rate(v, spec.bitrate_bps))
          throw std::invalid_argument("--bitrate " + v + ": not a rate from 8k to 10G");
      } else if (a == "--size") {
        const int v = std::stoi(value());
        if (v < 60 || v > 1472) throw std::invalid_argument("--size: 60..1472 bytes");
        spec.packet_size = static_cast<std::size_t>(v);
      } else if (a == "--dscp") {
        const std::string v = value();
        const auto d = probes::stamp::parse_dscp(v);
        if (!d) throw std::invalid_argument("--dscp " + v + ": not AF41, EF, CSn, AFxy or 0..63");
        spec.dscp = *d;
      } else if (a == "--duration" || a == "--timeout") {
        const std::string v = value();
        const auto d = parse_duration(v);
        if (!d || *d < std::chrono::milliseconds(100) || *d > std::chrono::minutes(10))
          throw std::invalid_argument(a + " " + v + ": a duration from 100ms to 10m");
        (a == "--duration" ? spec.duration : spec.timeout) = *d;
      } else if (a == "--max-loss") {
        const double v = std::stod(value());
        if (!(v >= 0 && v <= 100)) throw std::invalid_argument("--max-loss: 0..100");
        spec.max_loss = v / 100;
      } else if (a == "--format") {
        const std::string v = value();
        if (v != "text" && v != "json") throw std::invalid_argument("--format: text or json");
        json = v == "json";
      } else if (!a.empty() && a[0] != '-' && target.empty()) {
        target = a;
      } else {
        throw std::invalid_argument("unknown argument " + a);
      }
    } catch (const std::exception& e) {
      std::cerr << "siteprobe path-test: " << e.what() << "\n" << kPathTestUsage;
      return 2;
    }
  }
  if (target.empty() || !parse_target(target, spec.to)) {
    std::cerr << "siteprobe path-test: "
              << (target.empty() ? "no address" : "\"" + target + "\" is not IP[:PORT]") << "\n"
              << kPathTestUsage;
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 2;
  {
    probes::StampStream stream(&loop, spec,
                               [&](const probes::PathTestSummary& p, const probes::StreamStats& st) {
                                 print(p, st, target, json);
                                 rc = p.verdict == probes::PathTestSummary::Verdict::Ok ? 0 : 1;
                               });
    if (const auto err = stream.start(); !err.empty()) {
      std::cerr << "siteprobe path-test: " << err << "\n";
      return 2;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks
  uv_loop_close(&loop);
  return rc;
}

int reflect_main(int argc, char** argv) {
  probes::StampReflector::Options o;
  std::vector<std::string> listen;
  std::string web;
  LogLevel level = LogLevel::Info;
  LogFormat format = LogFormat::Logfmt;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "-h" || a == "--help") {
      std::cout << kReflectUsage;
      return 0;
    } else if (a == "--listen" && has) {
      listen.emplace_back(argv[++i]);
    } else if (a == "--stateful") {
      o.stateful = true;
    } else if (a == "--max-pps" && has) {
      o.max_pps = std::atof(argv[++i]);
      if (!(o.max_pps >= 1 && o.max_pps <= 10e6)) {
        std::cerr << "siteprobe reflect: --max-pps: 1..10000000\n";
        return 2;
      }
    } else if (a == "--web.listen-address" && has) {
      web = argv[++i];
    } else if ((a == "--log.level" && has && parse_log_level(argv[i + 1], level)) ||
               (a == "--log.format" && has && parse_log_format(argv[i + 1], format))) {
      ++i;
    } else {
      std::cerr << "siteprobe reflect: unknown or incomplete argument " << a << "\n" << kReflectUsage;
      return 2;
    }
  }
  if (!listen.empty()) o.listen = listen;
  log_setup(level, format);
  make_undumpable();
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 0;
  {
    probes::StampReflector reflector(&loop, o);
    std::string warnings;
    if (auto err = reflector.start(&warnings); !err.empty()) {
      log(LogLevel::Error, "cannot listen", {{"error", err}});
      return 1;
    }
    if (!warnings.empty()) log(LogLevel::Warn, "listen address skipped", {{"warning", warnings}});
    std::string ports;
    for (const int p : reflector.ports()) ports += (ports.empty() ? "" : ",") + std::to_string(p);
    std::atomic<bool> ready{true};
    HttpServer http(std::make_shared<prometheus::Registry>(), ready);
    if (!web.empty()) {
      http.add(reflector.exposition());
      if (auto err = http.start(web); !err.empty()) {
        log(LogLevel::Error, "cannot serve metrics", {{"error", err}});
        return 1;
      }
    }
    log(LogLevel::Info, "reflector started",
        {{"mode", o.stateful ? "stateful" : "stateless"},
         {"ports", ports},
         {"max_pps", std::to_string(o.max_pps)}});
    notify("READY=1\nSTATUS=reflecting on ports " + ports);
    UvHandle<uv_signal_t> term, intr;
    for (auto* s : {&term, &intr}) {
      uv_must(s->init([&](uv_signal_t* h) { return uv_signal_init(&loop, h); }), "uv_signal_init");
      s->get()->data = &loop;
    }
    const auto stop = [](uv_signal_t* h, int) noexcept { uv_stop(static_cast<uv_loop_t*>(h->data)); };
    uv_must(uv_signal_start(term.get(), stop, SIGTERM), "uv_signal_start");
    uv_must(uv_signal_start(intr.get(), stop, SIGINT), "uv_signal_start");
    uv_run(&loop, UV_RUN_DEFAULT);
    notify("STOPPING=1");
    log(LogLevel::Info, "reflector stopped");
    http.stop();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}

}  // namespace siteprobe
