// Inventory parsing and validation.
//
// The parser walks the YAML tree once, checks every key against the allowed set for its block, and
// records each problem with the node's position instead of stopping at the first. Cross-references
// (parents, levels, cycles, profiles, auth) are checked after the walk. Only an inventory with no
// error at all becomes a Config.
#include "inventory/config.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include "inventory/parser.h"
#include "metrics/families.h"
#include "util/pattern.h"
#include "util/text.h"

namespace siteprobe {
namespace inventory_detail {

// How many nodes the inventory has once every alias is expanded, counted from the parser's events
// without building anything: aliases cost nothing to load, but every part of siteprobe that walks the
// tree walks each expansion again ("billion laughs": 57 KB became 250,000 devices).
class ExpansionCounter final : public YAML::EventHandler {
 public:
  std::uint64_t literal = 0, expanded = 0;
  struct Alias {
    YAML::Mark mark;
    std::string name;
    std::uint64_t nodes = 0;
  } largest;  // the alias that expands most

  int documents = 0;
  YAML::Mark second_document;
  void OnDocumentStart(const YAML::Mark& m) override {
    if (++documents == 2) second_document = m;
  }
  void OnDocumentEnd() override {}
  void OnAnchor(const YAML::Mark&, const std::string& name) override { names_.push_back(name); }
  void OnNull(const YAML::Mark&, YAML::anchor_t a) override { leaf(a); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t a, const std::string&) override {
    leaf(a);
  }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t a) override {
    const auto it = sizes_.find(a);
    const std::uint64_t n = it == sizes_.end() ? 1 : it->second;
    ++literal;
    add(n);
    if (n > largest.nodes)
      largest = {m, a >= 1 && a <= names_.size() ? names_[a - 1] : "#" + std::to_string(a), n};
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t a,
                       YAML::EmitterStyle::value) override {
    open(a);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t a,
                  YAML::EmitterStyle::value) override {
    open(a);
  }
  void OnMapEnd() override { close(); }

 private:
  static constexpr std::uint64_t kSaturate = std::uint64_t{1} << 62;
  void leaf(YAML::anchor_t a) {
    ++literal;
    if (a) sizes_[a] = 1;
    add(1);
  }
  void open(YAML::anchor_t a) {
    ++literal;
    open_.push_back({a, 1});
  }
  void close() {
    const auto o = open_.back();
    open_.pop_back();
    if (o.first) sizes_[o.first] = o.second;
    add(o.second);
  }
  void add(std::uint64_t n) {
    std::uint64_t& into = open_.empty() ? expanded : open_.back().second;
    into = std::min(kSaturate, into + n);
  }
  std::vector<std::pair<YAML::anchor_t, std::uint64_t>> open_;  // anchor, expanded nodes so far
  std::map<YAML::anchor_t, std::uint64_t> sizes_;
  std::vector<std::string> names_;  // by anchor number - 1
};

// yaml-cpp's syntax error in an editor's terms, for the mistakes people make by hand ("" if none).
std::string syntax_hint(const std::string& text, const YAML::ParserException& e) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  const auto n = static_cast<std::size_t>(std::max(0, e.mark.line));
  const auto indent = [&](std::size_t i) {  // where the line's key starts: "  - id: x" -> 4
    const std::string& l = lines[i];
    std::size_t k = l.find_first_not_of(' ');
    while (k != std::string::npos && l.compare(k, 2, "- ") == 0) k = l.find_first_not_of(' ', k + 2);
    return k;
  };
  const auto content = [&](std::size_t i) {
    const std::size_t k = lines[i].find_first_not_of(' ');
    return k != std::string::npos && lines[i][k] != '#';
  };
  const auto previous = [&]() -> std::size_t {  // the content line above the error's, or npos
    for (std::size_t p = std::min(n, lines.size()); p-- > 0;)
      if (content(p)) return p;
    return std::string::npos;
  };
  const auto misindented = [&]() -> std::string {
    const std::size_t p = previous();
    if (n >= lines.size() || !content(n) || p == std::string::npos || indent(n) == indent(p)) return "";
    return " (line " + std::to_string(n + 1) + " is indented " + std::to_string(indent(n)) +
           " spaces; line " + std::to_string(p + 1) + " above it, " + std::to_string(indent(p)) +
           ": keys of one mapping line up)";
  };
  if (e.msg.find("illegal map value") != std::string::npos) {  // a deeper key, or a value with ": "
    if (auto h = misindented(); !h.empty()) return h;
    return " (a value containing \": \" must be quoted, e.g. name: \"Trung tâm: Bắc Kạn\")";
  }
  if (n < lines.size() && lines[n].find('\t') < lines[n].find_first_not_of(" \t"))
    return " (line " + std::to_string(n + 1) + " is indented with a tab: YAML indents with spaces only)";
  if (e.msg.find("unknown escape character") != std::string::npos)
    return " (in double quotes a backslash starts an escape: write \\\\, or use single quotes)";
  if (e.msg.find("flow not found") != std::string::npos) return " (a { or [ is not closed)";
  if (e.msg.find("not found") != std::string::npos) return misindented();
  return "";
}

LoadResult Parser::run(const std::string& text) {
  try {
    parse(text);
  } catch (const YAML::ParserException& e) {
    error(e.mark, "(yaml)", "syntax error: " + e.msg + syntax_hint(text, e));
  } catch (const std::exception& e) {  // a conversion we did not foresee: still an error, not a crash
    error(YAML::Mark::null_mark(), "(inventory)", std::string("cannot be read: ") + e.what());
  }
  std::stable_sort(found_.begin(), found_.end(), [](const Error& a, const Error& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  LoadResult r;
  for (auto& e : found_) r.errors.push_back(std::move(e.text));
  r.warnings = std::move(warnings_);
  if (r.errors.empty()) r.config = std::make_shared<const Config>(std::move(cfg_));
  return r;
}

bool Parser::check_text(const std::string& text) {
  // UTF-8 only: a name saved as Windows-1258 or TCVN3 would pass YAML, then be exported as a label
  // value Prometheus rejects, and every scrape of siteprobe would fail. One error per line.
  std::size_t bad_lines = 0;
  YAML::Mark at;
  at.line = 0;
  at.column = 0;
  int reported_line = -1;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = text::sequence(std::string_view(text).substr(i));
    if (len == 0 && reported_line != at.line) {
      reported_line = at.line;
      if (++bad_lines <= 20) {
        char b[8];
        std::snprintf(b, sizeof b, "0x%02X", static_cast<unsigned char>(text[i]));
        error(at, "(encoding)",
              std::string("invalid UTF-8 (byte ") + b +
                  "): the file looks like Windows-1258 or TCVN3; save it as UTF-8 (e.g. iconv -f "
                  "WINDOWS-1258 -t UTF-8)");
      }
    }
    if (text[i] == '\n') {
      ++at.line;
      at.column = 0;
    } else {
      ++at.column;
    }
    i += len ? len : 1;
  }
  if (bad_lines > 20)
    error(YAML::Mark::null_mark(), "(encoding)",
          std::to_string(bad_lines - 20) + " more lines with invalid UTF-8");
  if (bad_lines) return false;

  std::istringstream in(text);
  YAML::Parser events(in);
  ExpansionCounter count;
  // Two documents at most: past the first, only whether there is another matters, and yaml-cpp's
  // HandleNextDocument can return true for ever on some broken input (found by fuzz_config).
  for (int k = 0; k < 2 && events.HandleNextDocument(count); ++k) {
  }
  const bool marker = text.rfind("---", 0) == 0 || text.find("\n---") != std::string::npos ||
                      text.find("\n...") != std::string::npos;
  if (count.documents > 1 && marker) {  // yaml-cpp's Load would read the first and drop the rest unseen
    error(count.second_document, "(yaml)",
          "a second YAML document (after a --- line): an inventory is one document; remove the --- "
          "line or move the rest into the first document");
    return false;
  }
  const std::uint64_t limit = std::max<std::uint64_t>(kMaxExpandedNodes, kMaxExpansion * count.literal);
  if (count.expanded > limit) {
    error(count.largest.mark, "(aliases)",
          "alias *" + count.largest.name + " expands to " + std::to_string(count.largest.nodes) +
              " nodes, and with it the inventory to " + std::to_string(count.expanded) + " (limit " +
              std::to_string(limit) + ", or " + std::to_string(kMaxExpansion) +
              " times the nodes written out); write the repeated parts out, or share settings with profiles");
    return false;
  }
  return true;
}

void Parser::parse(const std::string& text) {
  text_ = text;
  if (!check_text(text)) return;
  const YAML::Node root = YAML::Load(text);
  if (!check_map(root, "",
                 {"levels", "global", "site_state", "readiness", "defaults", "roles", "profiles", "auth",
                  "snmp_modules", "sites", "conferences", "maintenance", "sla", "traps", "trace"}))
    return;
  cfg_.file = name_;
  if (auto n = root["levels"]) parse_levels(n);
  if (auto n = root["global"]) parse_global(n);
  if (auto n = root["site_state"]) parse_site_state(n);
  if (auto n = root["readiness"]; n && check_map(n, "readiness", {"min_mos"})) {
    if (auto v = n["min_mos"])
      if (auto x = number_of(v, "readiness.min_mos", 1, 4.5)) cfg_.readiness_min_mos = *x;
  }
  if (auto n = root["defaults"]) {
    defaults_block_ = parse_overrides(n, "defaults");
    defaults_block_.icmp.apply_to(defaults_);
  }
  for (const char* block : {"roles", "profiles"}) {
    auto n = root[block];
    if (!n) continue;
    auto& into = std::string(block) == "roles" ? roles_ : profiles_;
    if (!n.IsMap()) {
      error(n.Mark(), block, "must be a mapping of name to settings");
      continue;
    }
    for (const auto& kv : n) {
      const std::string name = kv.first.Scalar();
      if (!valid_id(name))
        error(kv.first.Mark(), std::string(block) + "." + name,
              "invalid name (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)");
      into[name] = parse_overrides(kv.second, std::string(block) + "." + name);
    }
  }
  if (auto n = root["auth"]) parse_auth(n);
  if (auto n = root["snmp_modules"]) parse_snmp_modules(n);
  if (auto n = root["sites"]) {
    if (n.IsSequence() && n.size() == 0) error(n.Mark(), "sites", "must list at least one site");
    parse_sites(n);
  } else {
    error(root.Mark(), "sites", "missing required key \"sites\"");
  }
  if (auto n = root["conferences"]) parse_conferences(n);
  if (auto n = root["maintenance"]) parse_maintenance(n);
  if (auto n = root["sla"]) parse_sla(n);
  if (auto n = root["traps"]) parse_traps(n);
  if (auto n = root["trace"]) parse_trace(n);
}

}  // namespace inventory_detail

using inventory_detail::Parser;

std::map<std::string, std::string> Config::site_labels(const Site& s) const {
  std::map<std::string, std::string> l{{"site", s.id}, {"level", s.level}};
  const auto chain = chain_labels();
  for (std::size_t i = 0; i < chain.size() && i < s.chain.size(); ++i) l[chain[i]] = s.chain[i];
  return l;
}

std::map<std::string, std::string> Config::device_labels(const Site& s, const Device& d) const {
  auto l = site_labels(s);
  l["device"] = d.name;
  l["role"] = d.role;
  return l;
}

std::size_t Config::device_count() const {
  std::size_t n = 0;
  for (const auto& s : sites) n += s.devices.size();
  return n;
}

std::optional<Duration> parse_duration(const std::string& s) {
  // Units in decreasing order, each at most once ("1h30m", not "30m1h" or "1h1h"); at most 9
  // digits per part and 10000h in total, so nothing overflows.
  static const std::pair<const char*, std::int64_t> kUnits[] = {
      {"h", 3600000000000}, {"m", 60000000000}, {"s", 1000000000}, {"ms", 1000000}};
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0, next_unit = 0;
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i || j - i > 9) return std::nullopt;
    const std::int64_t v = std::stoll(s.substr(i, j - i));
    std::size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    const std::string unit = s.substr(j, k - j);
    std::size_t u = next_unit;
    while (u < 4 && unit != kUnits[u].first) ++u;
    if (u == 4) return std::nullopt;
    if (v > 10000 * (kUnits[0].second / kUnits[u].second)) return std::nullopt;
    total += v * kUnits[u].second;
    if (total > 10000 * kUnits[0].second) return std::nullopt;
    next_unit = u + 1;
    i = k;
  }
  return Duration(total);
}

std::string format_duration(Duration d) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(d).count();
  if (ms % 3600000 == 0 && ms) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0 && ms) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0 && ms) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string summarize(const Config& c) {
  std::vector<std::size_t> per(c.levels.size(), 0);
  std::size_t devices = 0, snmp = 0;
  for (const auto& s : c.sites) {
    per[s.level_index]++;
    devices += s.devices.size();
    for (const auto& d : s.devices) snmp += d.snmp ? 1 : 0;
  }
  std::ostringstream o;
  o << c.sites.size() << " sites (";
  for (std::size_t i = 0; i < c.levels.size(); ++i) o << (i ? ", " : "") << per[i] << " " << c.levels[i];
  std::size_t sip = 0, tcp = 0;
  std::map<std::string, std::size_t> blocks;
  for (const auto& s : c.sites)
    for (const auto& d : s.devices) {
      sip += d.sip.enabled, tcp += d.tcp.size();
      for (const auto& b : d.blocks) ++blocks[b.first];
    }
  std::size_t probes = devices + snmp + sip + tcp;
  std::string per_block;
  for (const auto& [name, n] : blocks) probes += n, per_block += ", " + std::to_string(n) + " " + name;
  o << "), " << devices << " devices, " << probes << " probes (" << devices << " icmp, " << snmp << " snmp, "
    << sip << " sip" << per_block << ", " << tcp << " tcp)";
  return o.str();
}

LoadResult parse_config(const std::string& text, const std::vector<BlockSchema>& blocks,
                        const std::string& name, const std::string& base_dir) {
  if (text.size() > static_cast<std::size_t>(kMaxInventoryBytes))
    return {nullptr,
            {name + ": an inventory may have at most " + std::to_string(kMaxInventoryBytes) + " bytes"},
            {}};
  return Parser(name, base_dir, blocks).run(text);
}

LoadResult load_config(const std::string& path, const std::vector<BlockSchema>& blocks) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return {
        nullptr, {path + ": is a directory; give the inventory file (e.g. " + path + "/inventory.yml)"}, {}};
  if (stat(path.c_str(), &st) == 0 && st.st_size > kMaxInventoryBytes)
    return {nullptr,
            {path + ": " + std::to_string(st.st_size) + " bytes; an inventory may have at most " +
             std::to_string(kMaxInventoryBytes) + " (about 100,000 devices written out)"},
            {}};
  std::ifstream in(path, std::ios::binary);
  if (!in) return {nullptr, {path + ": cannot open inventory (" + std::strerror(errno) + ")"}, {}};
  std::ostringstream text;
  text << in.rdbuf();
  const auto slash = path.rfind('/');
  return parse_config(text.str(), blocks, path, slash == std::string::npos ? "." : path.substr(0, slash));
}

}  // namespace siteprobe
