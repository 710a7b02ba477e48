// libFuzzer target: SNMP response handling (probes/snmp.h), after net-snmp has decoded the PDU:
// the varbinds a poll collected (any type, any value, any row index, for the OIDs siteprobe
// asks for and a few it does not) go through SnmpDeviceState::apply, poll after poll, with the
// clock moving on, and every poll is rendered. Checks on the rendered text:
//  - every line is `family{labels} value` with labels in valid UTF-8 and no control characters;
//  - an interface counter (traffic, errors, discards) never goes back while its interface stays,
//    through wraps, reboots and switches between HC and 32-bit columns;
//  - reboots_total and polls never go back;
//  - every label value is at most kMaxValueBytes, names and descriptions at most kMaxDisplayString,
//    whatever the agent sent (strings up to 48 KB) and whatever the patterns (mode bit 16: patterns
//    that backtrack on long names).
// The input: a settings byte, then polls of [seconds elapsed][varbind count][varbinds...], a
// varbind being [what][row][type][value bytes].
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "fuzz.h"
#include "inventory/config.h"
#include "probes/snmp.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

const Oid kIfTable = {1, 3, 6, 1, 2, 1, 2, 2, 1};
const Oid kIfXTable = {1, 3, 6, 1, 2, 1, 31, 1, 1, 1};
Oid with(Oid o, std::initializer_list<std::uint32_t> more) {
  o.insert(o.end(), more);
  return o;
}
// The scalars and columns a poll can carry: what siteprobe asks for, plus a custom walk, a custom
// scalar of each kind and an OID nobody asked for.
const SnmpObject kLoad{"load_percent", {1, 3, 6, 1, 4, 1, 9, 1}, "gauge", true, "cpu", ""};
const SnmpObject kBytes{"bytes_total", {1, 3, 6, 1, 4, 1, 9, 4, 0}, "counter", false, "", ""};
const SnmpObject kVersion{"firmware_info", {1, 3, 6, 1, 4, 1, 9, 2, 0}, "info", false, "", ""};
const Oid kScalars[] = {{1, 3, 6, 1, 2, 1, 1, 3, 0},
                        {1, 3, 6, 1, 2, 1, 1, 5, 0},
                        {1, 3, 6, 1, 2, 1, 1, 1, 0},
                        {1, 3, 6, 1, 2, 1, 1, 2, 0},
                        kBytes.oid,
                        kVersion.oid,
                        {1, 3, 6, 1, 2, 1, 1, 9, 0}};
const std::uint32_t kIfCols[] = {2, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20};
const std::uint32_t kIfXCols[] = {1, 6, 7, 10, 11, 15, 18};

SnmpVal value(Reader& in) {
  SnmpVal v;
  v.type = static_cast<SnmpVal::T>(in.u8() % 9);
  std::uint64_t x = 0;
  const int bytes = in.u8() % 9;
  for (int i = 0; i < bytes; ++i) x = x << 8 | in.u8();
  switch (v.type) {  // as to_val() fills them from net-snmp's variables
    case SnmpVal::T::Int:
      v.i = static_cast<std::int32_t>(x);
      break;
    case SnmpVal::T::Unsigned:
    case SnmpVal::T::Counter32:
    case SnmpVal::T::Ticks:
      v.u = static_cast<std::uint32_t>(x);
      break;
    case SnmpVal::T::Counter64:
      v.u = x;
      break;
    case SnmpVal::T::String:
    case SnmpVal::T::ObjectId:
      if (const int n = in.u8(); n >= 250)  // a hostile agent's 8-48 KB name (the std::regex overflow)
        v.s.assign(static_cast<std::size_t>(n - 249) * 8000, static_cast<char>(in.u8()));
      else
        for (int k = n % 40; k > 0; --k) v.s += static_cast<char>(in.u8());
      break;
    default:
      break;
  }
  return v;
}

bool valid_utf8_text(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\n') return false;
      ++i;
      continue;
    }
    const int n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : -1;
    if (n < 0 || c > 0xf4 || i + static_cast<std::size_t>(n) >= s.size() + 0) return false;
    for (int k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) & 0xc0) != 0x80) return false;
    i += static_cast<std::size_t>(n) + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in{data, size};
  using Strings = std::vector<std::string>;
  const std::uint8_t mode = in.u8();
  SnmpDeviceState::Settings settings(mode & 1    ? Strings{"(Gi|eth).*", "[0-9]+"}
                                     : mode & 16 ? Strings{"(a|b)*c", ".*x"}
                                                 : Strings{},
                                     mode & 2    ? Strings{"Null.*"}
                                     : mode & 16 ? Strings{"lo.*", "(.*)*y"}
                                                 : Strings{},
                                     mode & 4    ? "Gi0/0|eth0"
                                     : mode & 16 ? "(l|o|x)*"
                                                 : "");
  if (mode & 8) settings.custom = {&kLoad, &kBytes, &kVersion};

  SnmpDeviceState st;
  double now = 100;
  std::map<std::string, double> last;  // counter line (family{labels}) -> value, previous poll
  double last_reboots = 0, last_polls = 0;
  for (int poll = 0; poll < 16 && in.more(); ++poll) {
    now += 1 + in.u8() % 64;
    PollData d;
    for (int n = in.u8() % 48; n > 0; --n) {
      const std::uint8_t what = in.u8(), row = in.u8();
      const std::uint32_t idx = row % 6 + 1;
      if (what < 40) {
        d.scalars[kScalars[what % 7]] = value(in);
      } else if (what < 160) {
        d.columns[with(kIfTable, {kIfCols[what % 12]})][{idx}] = value(in);
      } else if (what < 240) {
        d.columns[with(kIfXTable, {kIfXCols[what % 7]})][{idx}] = value(in);
      } else {
        const Oid index = what & 1 ? Oid{idx} : Oid{idx, row};
        d.columns[what & 2 ? kLoad.oid : with(kIfTable, {row})][index] = value(in);
      }
    }
    st.apply(d, settings, now);
    st.poll_done(true, 0.1, 10);
    SnmpText out;
    st.render("site=\"s\",device=\"d\"", out);

    std::map<std::string, double> cur;
    std::map<std::string, double> bits;  // interface labels -> high_capacity
    double reboots = 0, polls = 0;
    for (const auto& [family, text] : out) {
      check(valid_utf8_text(text), "rendered text not UTF-8 or has control characters", text);
      std::size_t at = 0;
      while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        check(end != std::string::npos, "line without newline");
        const std::string line = text.substr(at, end - at);
        at = end + 1;
        const std::size_t sp = line.rfind(' ');
        check(line.rfind(family + "{", 0) == 0 && sp != std::string::npos && line[sp - 1] == '}',
              "malformed line", line);
        const std::string series = line.substr(0, sp);
        for (std::size_t q = line.find("=\""); q != std::string::npos; q = line.find("=\"", q + 1)) {
          const std::size_t name_at = line.find_last_of(",{", q) + 1;
          std::size_t e = q + 2, len = 0;  // len: the value's bytes, an escape counting as one
          for (; e < line.size() && line[e] != '"'; ++len) e += line[e] == '\\' ? 2 : 1;
          const std::string name = line.substr(name_at, q - name_at);
          const std::size_t max =
              name.rfind("if_", 0) == 0 || name.rfind("sys_", 0) == 0 ? kMaxDisplayString : kMaxValueBytes;
          check(len <= max, "label value too long", name);
          q = e;
        }
        const double v = std::strtod(line.c_str() + sp + 1, nullptr);
        if (family == "siteprobe_snmp_interface_high_capacity")
          bits[series.substr(family.size())] = v;
        else if (family == "siteprobe_snmp_device_reboots_total")
          reboots = v;
        else if (family == "siteprobe_snmp_polls_total")
          polls = v;
        if (family.rfind("siteprobe_snmp_interface_", 0) == 0 && family.size() > 6 &&
            family.compare(family.size() - 6, 6, "_total") == 0)
          cur[series] = v;
      }
    }
    check(reboots >= last_reboots && polls >= last_polls, "reboots or polls went back");
    for (const auto& [series, v] : cur) {
      auto prev = last.find(series);
      if (prev != last.end()) check(v >= prev->second, "an interface counter went back", series);
    }
    last = cur;
    for (const auto& [l, v] : bits) last["bits" + l] = v;
    last_reboots = reboots;
    last_polls = polls;
  }
  return 0;
}
