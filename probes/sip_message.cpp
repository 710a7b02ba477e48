// SIP messages: the OPTIONS request siteprobe sends and a strict parser of the responses (UDP
// datagrams, or a TCP byte stream).
#include <algorithm>
#include <cstring>

#include "probes/sip.h"

namespace siteprobe::probes {

// ---- Parsing and building ----------------------------------------------------------------------
namespace {}  // namespace

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// The branch parameter of one Via value ("SIP/2.0/UDP host:port;branch=z9hG4bK…;rport").
std::string via_branch(std::string_view via) {
  via = via.substr(0, via.find(','));  // the top Via of a combined header
  for (std::size_t p = via.find(';'); p != std::string_view::npos;) {
    const std::size_t next = via.find(';', p + 1);
    std::string_view param = trim(via.substr(p + 1, next == std::string_view::npos ? next : next - p - 1));
    const std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && ieq(trim(param.substr(0, eq)), "branch"))
      return std::string(trim(param.substr(eq + 1)));
    p = next;
  }
  return "";
}

std::string bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

SipParse parse_sip_response(std::string_view d, SipResponse& out, std::string* why) {
  out = {};
  const std::size_t end = d.find("\r\n\r\n");
  const bool complete = end != std::string_view::npos;
  // Only whole lines are looked at, so a stream cut mid-line is incomplete, not malformed.
  std::string_view head = complete ? d.substr(0, end + 2) : d.substr(0, d.rfind("\r\n") + 2);
  if (!complete && d.rfind("\r\n") == std::string_view::npos) head = {};
  const char* problem = nullptr;
  const auto fail = [&](const char* w) {
    if (!problem) problem = w;
  };
  std::string via, cseq, content_length;
  bool have_length = false, first = true, prev_is = false;
  std::string* prev = nullptr;  // the value a folded line continues
  for (std::size_t lines = 0; !head.empty(); ++lines) {
    if (lines == kSipMaxLines) {
      fail("too many header lines");
      break;
    }
    const std::size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    for (char c : line)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        fail("control character in the head");
    if (first) {
      first = false;
      // "SIP/2.0 200 OK": version, a three-digit code 100..699, then a space and a reason (may be empty).
      if (line.size() < 11 || line.substr(0, 8) != "SIP/2.0 " || !all_digits(line.substr(8, 3), 3) ||
          line[8] < '1' || line[8] > '6' || (line.size() > 11 && line[11] != ' '))
        fail("bad status line");
      else
        out.code = std::stoi(std::string(line.substr(8, 3)));
      continue;
    }
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {  // folded continuation (RFC 3261 7.3.1)
      if (prev && prev_is) *prev += " " + std::string(trim(line));
      if (!prev) fail("continuation line without a header");
      continue;
    }
    const std::size_t colon = line.find(':');
    std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : trim(line.substr(0, colon));
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-.!%*_+`'~", c);
        })) {
      fail("bad header line");
      prev = nullptr;
      continue;
    }
    const std::string value(trim(line.substr(colon + 1)));
    prev = nullptr;
    prev_is = false;
    if (ieq(name, "Call-ID") || ieq(name, "i")) {
      if (out.call_id.empty()) out.call_id = value, prev = &out.call_id;
    } else if (ieq(name, "Via") || ieq(name, "v")) {
      if (via.empty()) via = value, prev = &via;
    } else if (ieq(name, "CSeq")) {
      if (cseq.empty()) cseq = value, prev = &cseq;
    } else if (ieq(name, "Content-Length") || ieq(name, "l")) {
      content_length = value;
      have_length = true;
    }
    prev_is = prev != nullptr;
  }
  const auto done = [&](SipParse r, const char* w) {
    if (why && w) *why = w;
    return r;
  };
  if (problem) return done(SipParse::Malformed, problem);
  if (!complete)
    return d.size() > kSipMaxHead ? done(SipParse::Malformed, "head too large")
                                  : done(SipParse::Incomplete, "no end of head");
  if (end + 4 > kSipMaxHead) return done(SipParse::Malformed, "head too large");
  if (first) return done(SipParse::Malformed, "empty message");
  if (out.call_id.empty()) return done(SipParse::Malformed, "no Call-ID");
  const std::size_t sp = cseq.find(' ');
  if (sp == std::string::npos || !all_digits(cseq.substr(0, sp), 10) || trim(cseq.substr(sp + 1)).empty())
    return done(SipParse::Malformed, "bad or missing CSeq");
  const unsigned long n = std::stoul(cseq.substr(0, sp));
  if (n > 0x7fffffffUL) return done(SipParse::Malformed, "bad or missing CSeq");
  out.cseq = static_cast<std::uint32_t>(n);
  out.cseq_method = std::string(trim(std::string_view(cseq).substr(sp + 1)));
  if (via.empty()) return done(SipParse::Malformed, "no Via");
  out.branch = via_branch(via);
  std::size_t body = 0;
  if (have_length) {
    if (!all_digits(content_length, 9)) return done(SipParse::Malformed, "bad Content-Length");
    body = std::stoul(content_length);
    if (body > kSipMaxBody) return done(SipParse::Malformed, "body too large");
  }
  out.length = end + 4 + body;
  if (d.size() < out.length) return done(SipParse::Incomplete, "body incomplete");
  return SipParse::Ok;
}

void SipStream::append(std::string_view bytes) {
  // Head lines end at CRLF; a bare LF ends none, so a drip of LFs costs no re-parse.
  if (bytes.find("\r\n") != std::string_view::npos ||
      (!bytes.empty() && bytes.front() == '\n' && !in_.empty() && in_.back() == '\r'))
    line_ended_ = true;
  in_.append(bytes);
}

SipParse SipStream::next(SipResponse& r, std::string* why) {
  // Until then the parse could only say Incomplete again: it looks at whole lines of the head,
  // and a complete head tells the message's length.
  if (need_ ? in_.size() < need_ : !line_ended_ && in_.size() <= kSipMaxHead) return SipParse::Incomplete;
  line_ended_ = false;
  const SipParse res = parse_sip_response(in_, r, why);
  need_ = res == SipParse::Incomplete ? r.length : 0;
  if (res == SipParse::Ok) {
    in_.erase(0, r.length);
    line_ended_ = true;  // the rest may hold another whole message
  }
  return res;
}

std::string build_sip_options(const SipRequest& r) {
  const std::string host = bracketed(r.host) + ":" + std::to_string(r.port);
  const std::string local = bracketed(r.local_host) + ":" + std::to_string(r.local_port);
  const char* t = r.tcp ? "TCP" : "UDP";
  return "OPTIONS sip:" + host + " SIP/2.0\r\n" + "Via: SIP/2.0/" + t + " " + local + ";branch=" + r.branch +
         ";rport\r\n" + "Max-Forwards: 70\r\n" + "From: <sip:siteprobe@" + bracketed(r.local_host) +
         ">;tag=" + r.tag + "\r\n" + "To: <sip:" + host + ">\r\n" + "Call-ID: " + r.call_id + "\r\n" +
         "CSeq: 1 OPTIONS\r\n" + "Contact: <sip:siteprobe@" + local +
         ";transport=" + (r.tcp ? "tcp" : "udp") + ">\r\n" + "Accept: application/sdp\r\n" +
         "User-Agent: siteprobe\r\n" + "Content-Length: 0\r\n\r\n";
}

}  // namespace siteprobe::probes
