#include "daemon/status_i18n.h"

#include <algorithm>
#include <cstdlib>

#include "daemon/status_json.h"

namespace siteprobe::i18n {

const std::vector<Entry>& table() {
  static const std::vector<Entry> t = {
      {"title", "siteprobe status", "Trạng thái siteprobe"},
      {"state.up", "up", "hoạt động"},
      {"state.degraded", "degraded", "suy giảm"},
      {"state.down", "down", "mất kết nối"},
      {"state.unreachable", "unreachable", "không tới được"},
      {"state.unknown", "unknown", "chưa rõ"},
      {"level.province", "province", "tỉnh"},
      {"level.district", "district", "huyện"},
      {"level.commune", "commune", "xã"},
      {"head.map", "Map", "Bản đồ"},
      {"head.tree", "Sites", "Điểm cầu"},
      {"head.changes", "Last changes", "Thay đổi gần đây"},
      {"head.readiness", "Call readiness", "Sẵn sàng họp"},
      {"head.devices", "Devices", "Thiết bị"},
      {"head.counts", "Sites by state", "Số điểm theo trạng thái"},
      {"col.time", "Time", "Thời gian"},
      {"col.site", "Site", "Điểm"},
      {"col.device", "Device", "Thiết bị"},
      {"col.role", "Role", "Vai trò"},
      {"col.state", "State", "Trạng thái"},
      {"col.from", "From", "Từ"},
      {"col.to", "To", "Sang"},
      {"col.reason", "Reason", "Lý do"},
      {"col.detail", "Detail", "Chi tiết"},
      {"col.loss", "Loss", "Mất gói"},
      {"col.rtt", "RTT", "Độ trễ"},
      {"col.jitter", "Jitter", "Độ rung"},
      {"col.history", "Last hour", "Một giờ qua"},
      {"col.ready", "Readiness", "Sẵn sàng"},
      {"col.district", "District", "Huyện"},
      {"col.uplink", "Uplink (SNMP)", "Đường lên (SNMP)"},
      {"why.parent_down", "parent down", "cấp trên mất kết nối"},
      {"why.no_reply", "no reply", "không phản hồi"},
      {"why.loss", "loss", "mất gói"},
      {"why.rtt", "RTT", "độ trễ"},
      {"why.recovered", "recovered", "đã phục hồi"},
      {"why.started", "first verdict", "kết quả đầu tiên"},
      {"why.service_down", "service down", "dịch vụ lỗi"},
      {"why.service_up", "service up", "dịch vụ hoạt động"},
      {"why.uplink_down", "uplink down", "đường lên mất kết nối"},
      {"why.uplink_up", "uplink up", "đường lên hoạt động"},
      {"why.backup_path", "on backup path (primary uplink down)", "chạy đường dự phòng (đường chính mất)"},
      {"why.primary_path", "back on primary path", "trở lại đường chính"},
      {"snmp.no_answer", "SNMP no answer", "SNMP không trả lời"},
      {"snmp.answers", "SNMP answers", "SNMP trả lời"},
      {"reason.ready", "ready", "sẵn sàng"},
      {"reason.unknown", "unknown", "chưa rõ"},
      {"reason.site_down", "site down", "điểm mất kết nối"},
      {"reason.device_down", "device down", "thiết bị mất kết nối"},
      {"reason.call_service_down", "call service down", "dịch vụ gọi lỗi"},
      {"reason.low_mos", "low MOS", "MOS thấp"},
      {"reason.on_backup_path", "on backup path", "đang chạy đường dự phòng"},
      {"dev.up", "up", "hoạt động"},
      {"dev.down", "down", "mất kết nối"},
      {"dev.unknown", "unknown", "chưa rõ"},
      {"ui.lost", "connection lost since", "mất kết nối từ"},
      {"ui.updated", "updated", "cập nhật"},
      {"ui.wall", "Wall mode", "Chế độ màn hình lớn"},
      {"ui.exit_wall", "Exit wall mode", "Thoát màn hình lớn"},
      {"ui.back", "Back to province", "Về toàn tỉnh"},
      {"ui.lang", "Tiếng Việt", "English"},
      {"ui.no_changes", "No state changes yet", "Chưa có thay đổi"},
      {"ui.all_ready", "All endpoints ready", "Mọi thiết bị đầu cuối sẵn sàng"},
      {"ui.all_ok", "No district has a problem", "Không huyện nào có sự cố"},
      {"ui.problems", "Districts with problems", "Huyện có sự cố"},
      {"ui.keys", "Keys: w wall mode, l language, Esc back",
       "Phím: w màn hình lớn, l ngôn ngữ, Esc quay lại"},
      {"ui.no_coords", "sites without coordinates", "điểm không có tọa độ"},
      {"rd.header_all", "all %1 endpoints READY (min MOS %2)",
       "tất cả %1 thiết bị đầu cuối SẴN SÀNG (MOS tối thiểu %2)"},
      {"rd.header_some", "%1 of %2 endpoints NOT READY (min MOS %3)",
       "%1 trên %2 thiết bị đầu cuối CHƯA SẴN SÀNG (MOS tối thiểu %3)"},
      {"rd.at", "siteprobe readiness at", "siteprobe: mức sẵn sàng lúc"},
      {"rd.not_ready", "not ready", "chưa sẵn sàng"},
      {"rd.starting", "siteprobe readiness: starting", "siteprobe: đang khởi động"},
  };
  return t;
}

std::optional<Lang> parse_lang(std::string_view s) {
  auto lower2 = [&](const char* p) {
    return s.size() >= 2 && (s[0] | 0x20) == p[0] && (s[1] | 0x20) == p[1] && (s.size() == 2 || s[2] == '-');
  };
  if (lower2("vi")) return Lang::Vi;
  if (lower2("en")) return Lang::En;
  return std::nullopt;
}

const char* code(Lang l) {
  return l == Lang::Vi ? "vi" : "en";
}

Lang pick_lang(std::string_view h) {
  std::optional<Lang> best;
  double best_q = -1;
  while (!h.empty()) {
    const auto comma = h.find(',');
    std::string_view item = h.substr(0, comma);
    h = comma == std::string_view::npos ? std::string_view{} : h.substr(comma + 1);
    double q = 1;
    if (const auto semi = item.find(';'); semi != std::string_view::npos) {
      const auto qp = item.find("q=", semi);
      if (qp != std::string_view::npos) q = std::atof(std::string(item.substr(qp + 2)).c_str());
      item = item.substr(0, semi);
    }
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (auto l = parse_lang(item); l && q > best_q) best = l, best_q = q;
  }
  return best.value_or(Lang::En);
}

const char* tr(Lang l, std::string_view key) {
  for (const auto& e : table())
    if (key == e.key) return l == Lang::Vi ? e.vi : e.en;
  return "";
}

std::string table_json() {
  std::string out = "{";
  for (Lang l : {Lang::En, Lang::Vi}) {
    out += std::string(l == Lang::En ? "" : ",") + "\"" + code(l) + "\":{";
    bool first = true;
    for (const auto& e : table()) {
      if (!first) out += ',';
      first = false;
      json::str(out, e.key);
      out += ':';
      json::str(out, l == Lang::Vi ? e.vi : e.en);
    }
    out += '}';
  }
  return out + "}";
}

}  // namespace siteprobe::i18n
