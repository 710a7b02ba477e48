#!/usr/bin/env python3
"""Generate config/thai-nguyen.yml, the post-reform reference inventory.

Usage:
    python3 scripts/gen-thai-nguyen.py > config/thai-nguyen.yml

Under NQ 202/2025/QH15 Bắc Kạn province merged into Thái Nguyên, and under NQ 1683/NQ-UBTVQH15
(effective 1 July 2025) the new province has 92 commune-level units (77 xã, 15 phường) directly
under the province, with no districts. Two levels: [province, commune].

Names: the 92 units of the new province. Sources (both third-party compilations of the
resolution, which agree on all 92 names): a published list of the new province's units, and a
table "new unit <- old units" for 90 of them (the two others, Xã Sảng Mộc and Xã Thượng Quan, kept
their old boundaries). The Bắc Kạn part of the table agrees with the province's own draft plan
("Dự kiến sắp xếp đơn vị hành chính cấp xã của tỉnh Bắc Kạn năm 2025", dbdc.backan.gov.vn,
18/04/2025) for Pác Nặm (3 units), Ba Bể (5) and Thượng Quan: those 9 merge maps are checked
against two sources, the other 28 against one. The resolution's text itself was not available.

Ids reuse config/bac-kan.yml's scheme: a commune is "<parent id>.<slug of its name without
Xã/Phường>", so here "thai-nguyen.<slug>". The one slug collision (Xã Văn Lang, from Na Rì, and
Xã Văn Lăng, from Đồng Hỷ) is resolved by hand: "van-lang" and "van-lang-dong-hy".

formerly: the 37 units formed from Bắc Kạn's 108 communes list the config/bac-kan.yml ids they
were formed from (the script checks that every one of the 108 is used exactly once); the province
lists "bac-kan" (merged into it). Units formed from old Thái Nguyên communes have no formerly:
there is no pre-reform Thái Nguyên inventory to carry ids from; the old units' names are in a
comment above each site.

Addresses are loopback stand-ins that do not collide with bac-kan.yml (127.10-127.18), so both
inventories can run at once:
    province          127.30.0.1 router, .2 core-switch, .3 mcu, .4 vc
    commune j (1..92) 127.31.j.1 router, 127.31.j.2 vc (every third commune, and every unit
                      formed from a Bắc Kạn district seat)

Coordinates are approximate (for the map only): a Bắc Kạn-derived unit sits at the mean of its
former communes' points in config/bac-kan.yml; the others are scattered deterministically around
their former district's centre.

Stdlib only; output is deterministic.
"""

import hashlib
import ipaddress
import math
import os
import re
import sys
import unicodedata

PROVINCE = {
    "id": "thai-nguyen",
    "name": "Tỉnh Thái Nguyên",
    "lat": 21.5942,
    "lon": 105.8482,
    "formerly": ["bac-kan"],
}

# Former Thái Nguyên districts: name -> approximate centre (lat, lon) and scatter radius.
TN_DISTRICTS = {
    "Thành phố Thái Nguyên": (21.5928, 105.8442, 0.050),
    "Thành phố Sông Công": (21.4880, 105.8380, 0.040),
    "Thành phố Phổ Yên": (21.4150, 105.8750, 0.050),
    "Huyện Định Hóa": (21.9050, 105.6380, 0.090),
    "Huyện Võ Nhai": (21.7560, 106.0680, 0.100),
    "Huyện Phú Lương": (21.7580, 105.7280, 0.070),
    "Huyện Đồng Hỷ": (21.6650, 105.9200, 0.080),
    "Huyện Đại Từ": (21.6330, 105.6420, 0.090),
    "Huyện Phú Bình": (21.4900, 105.9700, 0.060),
}

# The 55 units formed from old Thái Nguyên communes: (former district, new name, old units).
# Some old units were split between two new ones; the table names them in both.
TN_UNITS = [
    ("Thành phố Thái Nguyên", "Phường Phan Đình Phùng", [
        "Phường Trưng Vương", "Phường Túc Duyên", "Phường Đồng Quang", "Phường Quang Trung",
        "Phường Hoàng Văn Thụ", "Phường Tân Thịnh", "Phường Phan Đình Phùng", "Phường Gia Sàng"]),
    ("Thành phố Thái Nguyên", "Phường Linh Sơn", [
        "Phường Chùa Hang", "Phường Đồng Bẩm", "Xã Cao Ngạn", "Xã Huống Thượng", "Xã Linh Sơn"]),
    ("Thành phố Thái Nguyên", "Phường Tích Lương", [
        "Phường Trung Thành", "Phường Phú Xá", "Phường Tân Thành", "Phường Tân Lập",
        "Phường Tích Lương", "Phường Cam Giá"]),
    ("Thành phố Thái Nguyên", "Phường Gia Sàng", [
        "Phường Hương Sơn", "Xã Đồng Liên", "Phường Gia Sàng", "Phường Cam Giá"]),
    ("Thành phố Thái Nguyên", "Phường Quyết Thắng", [
        "Phường Thịnh Đán", "Xã Phúc Hà", "Xã Quyết Thắng"]),
    ("Thành phố Thái Nguyên", "Phường Quan Triều", [
        "Phường Tân Long", "Phường Quang Vinh", "Phường Quan Triều", "Xã Sơn Cẩm"]),
    ("Thành phố Thái Nguyên", "Xã Tân Cương", ["Xã Thịnh Đức", "Xã Bình Sơn", "Xã Tân Cương"]),
    ("Thành phố Thái Nguyên", "Xã Đại Phúc", [
        "Thị trấn Hùng Sơn", "Xã Phúc Xuân", "Xã Phúc Trìu", "Xã Tân Thái", "Xã Phúc Tân"]),
    ("Thành phố Thái Nguyên", "Xã Thành Công", ["Xã Vạn Phái", "Xã Thành Công"]),
    ("Thành phố Sông Công", "Phường Sông Công", ["Phường Thắng Lợi", "Phường Phố Cò", "Phường Cải Đan"]),
    ("Thành phố Sông Công", "Phường Bá Xuyên", ["Phường Mỏ Chè", "Phường Châu Sơn", "Xã Bá Xuyên"]),
    ("Thành phố Sông Công", "Phường Bách Quang", [
        "Phường Lương Sơn", "Phường Bách Quang", "Xã Tân Quang"]),
    ("Thành phố Phổ Yên", "Phường Phổ Yên", [
        "Phường Ba Hàng", "Phường Hồng Tiến", "Phường Bãi Bông", "Phường Đắc Sơn"]),
    ("Thành phố Phổ Yên", "Phường Vạn Xuân", [
        "Phường Nam Tiến", "Phường Đồng Tiến", "Phường Tân Hương", "Phường Tiên Phong"]),
    ("Thành phố Phổ Yên", "Phường Trung Thành", [
        "Phường Trung Thành", "Phường Đông Cao", "Phường Tân Phú", "Phường Thuận Thành"]),
    ("Thành phố Phổ Yên", "Phường Phúc Thuận", ["Phường Bắc Sơn", "Xã Minh Đức", "Xã Phúc Thuận"]),
    ("Huyện Định Hóa", "Xã Định Hóa", [
        "Thị trấn Chợ Chu", "Xã Phúc Chu", "Xã Bảo Linh", "Xã Đồng Thịnh"]),
    ("Huyện Định Hóa", "Xã Bình Yên", ["Xã Trung Lương", "Xã Định Biên", "Xã Thanh Định", "Xã Bình Yên"]),
    ("Huyện Định Hóa", "Xã Trung Hội", ["Xã Phú Tiến", "Xã Bộc Nhiêu", "Xã Trung Hội"]),
    ("Huyện Định Hóa", "Xã Phượng Tiến", ["Xã Tân Dương", "Xã Tân Thịnh", "Xã Phượng Tiến"]),
    ("Huyện Định Hóa", "Xã Phú Đình", ["Xã Điềm Mặc", "Xã Phú Đình"]),
    ("Huyện Định Hóa", "Xã Bình Thành", ["Xã Sơn Phú", "Xã Bình Thành"]),
    ("Huyện Định Hóa", "Xã Kim Phượng", ["Xã Quy Kỳ", "Xã Kim Phượng"]),
    ("Huyện Định Hóa", "Xã Lam Vỹ", ["Xã Linh Thông", "Xã Lam Vỹ"]),
    ("Huyện Võ Nhai", "Xã Võ Nhai", ["Thị trấn Đình Cả", "Xã Phú Thượng", "Xã Lâu Thượng"]),
    ("Huyện Võ Nhai", "Xã Dân Tiến", ["Xã Bình Long", "Xã Phương Giao", "Xã Dân Tiến"]),
    ("Huyện Võ Nhai", "Xã Nghinh Tường", ["Xã Vũ Chấn", "Xã Nghinh Tường"]),
    ("Huyện Võ Nhai", "Xã Thần Sa", ["Xã Thượng Nung", "Xã Thần Xa"]),
    ("Huyện Võ Nhai", "Xã La Hiên", ["Xã Cúc Đường", "Xã La Hiên"]),
    ("Huyện Võ Nhai", "Xã Tràng Xá", ["Xã Liên Minh", "Xã Tràng Xá"]),
    ("Huyện Võ Nhai", "Xã Sảng Mộc", ["Xã Sảng Mộc"]),  # kept as it was
    ("Huyện Phú Lương", "Xã Phú Lương", [
        "Thị trấn Đu", "Thị trấn Giang Tiên", "Xã Yên Lạc", "Xã Động Đạt"]),
    ("Huyện Phú Lương", "Xã Vô Tranh", ["Xã Tức Tranh", "Xã Cổ Lũng", "Xã Phú Đô", "Xã Vô Tranh"]),
    ("Huyện Phú Lương", "Xã Yên Trạch", ["Xã Yên Ninh", "Xã Yên Đổ", "Xã Yên Trạch"]),
    ("Huyện Phú Lương", "Xã Hợp Thành", ["Xã Ôn Lương", "Xã Phủ Lý", "Xã Hợp Thành"]),
    ("Huyện Đồng Hỷ", "Xã Đồng Hỷ", [
        "Thị trấn Hóa Thượng", "Thị trấn Sông Cầu", "Xã Minh Lập", "Xã Hóa Trung"]),
    ("Huyện Đồng Hỷ", "Xã Quang Sơn", ["Xã Tân Long", "Xã Quang Sơn"]),
    ("Huyện Đồng Hỷ", "Xã Trại Cau", ["Thị trấn Trại Cau", "Xã Hợp Tiến"]),
    ("Huyện Đồng Hỷ", "Xã Nam Hòa", ["Xã Cây Thị", "Xã Nam Hòa"]),
    ("Huyện Đồng Hỷ", "Xã Văn Hán", ["Xã Khe Mo", "Xã Văn Hán"]),
    ("Huyện Đồng Hỷ", "Xã Văn Lăng", ["Xã Hòa Bình", "Xã Văn Lăng"]),
    ("Huyện Đại Từ", "Xã Đại Từ", ["Xã Bình Thuận", "Xã Khôi Kỳ", "Xã Mỹ Yên", "Xã Lục Ba"]),
    ("Huyện Đại Từ", "Xã Đức Lương", ["Xã Minh Tiến", "Xã Phúc Lương", "Xã Đức Lương"]),
    ("Huyện Đại Từ", "Xã Phú Thịnh", ["Xã Bản Ngoại", "Xã Phú Cường", "Xã Phú Thịnh"]),
    ("Huyện Đại Từ", "Xã La Bằng", ["Xã Hoàng Nông", "Xã Tiên Hội", "Xã La Bằng"]),
    ("Huyện Đại Từ", "Xã Phú Lạc", ["Xã Phục Linh", "Xã Tân Linh", "Xã Phú Lạc"]),
    ("Huyện Đại Từ", "Xã An Khánh", ["Xã Cù Vân", "Xã Hà Thượng", "Xã An Khánh"]),
    ("Huyện Đại Từ", "Xã Quân Chu", ["Thị trấn Quân Chu", "Xã Cát Nê"]),
    ("Huyện Đại Từ", "Xã Vạn Phú", ["Xã Văn Yên", "Xã Vạn Phú"]),
    ("Huyện Đại Từ", "Xã Phú Xuyên", ["Xã Yên Lãng", "Xã Phú Xuyên"]),
    ("Huyện Phú Bình", "Xã Phú Bình", [
        "Thị trấn Hương Sơn", "Xã Xuân Phương", "Xã Úc Kỳ", "Xã Nhã Lộng", "Xã Bảo Lý",
        "Xã Thượng Đình"]),
    ("Huyện Phú Bình", "Xã Tân Thành", ["Xã Tân Hòa", "Xã Tân Kim", "Xã Tân Thành"]),
    ("Huyện Phú Bình", "Xã Điềm Thụy", ["Xã Hà Châu", "Xã Nga My", "Xã Điềm Thụy", "Xã Thượng Đình"]),
    ("Huyện Phú Bình", "Xã Kha Sơn", [
        "Xã Lương Phú", "Xã Tân Đức", "Xã Thanh Ninh", "Xã Dương Thành", "Xã Kha Sơn"]),
    ("Huyện Phú Bình", "Xã Tân Khánh", ["Xã Bàn Đạt", "Xã Đào Xá", "Xã Tân Khánh"]),
]

# The 37 units formed from Bắc Kạn's 108 communes: (new name, config/bac-kan.yml ids).
# "*": the merge map is confirmed by the Bắc Kạn draft plan as well (see the docstring).
BK_UNITS = [
    ("Phường Đức Xuân", ["tp-bac-kan.nguyen-thi-minh-khai", "tp-bac-kan.huyen-tung",
                         "tp-bac-kan.duc-xuan"]),
    ("Phường Bắc Kạn", ["tp-bac-kan.song-cau", "tp-bac-kan.phung-chi-kien", "tp-bac-kan.xuat-hoa",
                        "tp-bac-kan.nong-thuong"]),
    ("Xã Phong Quang", ["tp-bac-kan.duong-quang", "bach-thong.don-phong"]),
    ("Xã Bằng Thành", ["pac-nam.bang-thanh", "pac-nam.boc-bo", "pac-nam.nhan-mon",
                       "pac-nam.giao-hieu"]),  # *
    ("Xã Nghiên Loan", ["pac-nam.nghien-loan", "pac-nam.xuan-la", "pac-nam.an-thang"]),  # *
    ("Xã Cao Minh", ["pac-nam.cong-bang", "pac-nam.co-linh", "pac-nam.cao-tan"]),  # *
    ("Xã Ba Bể", ["ba-be.cao-thuong", "ba-be.nam-mau", "ba-be.khang-ninh"]),  # *
    ("Xã Chợ Rã", ["ba-be.cho-ra", "ba-be.thuong-giao", "ba-be.dia-linh"]),  # *
    ("Xã Phúc Lộc", ["ba-be.phuc-loc", "ba-be.banh-trach", "ba-be.ha-hieu"]),  # *
    ("Xã Thượng Minh", ["ba-be.yen-duong", "ba-be.chu-huong", "ba-be.my-phuong"]),  # *
    ("Xã Đồng Phúc", ["ba-be.dong-phuc", "ba-be.quang-khe", "ba-be.hoang-tri",
                      "cho-don.bang-phuc"]),  # *
    ("Xã Thượng Quan", ["ngan-son.thuong-quan"]),  # * kept as it was
    ("Xã Bằng Vân", ["ngan-son.bang-van", "ngan-son.thuong-an"]),
    ("Xã Ngân Sơn", ["ngan-son.van-tung", "ngan-son.coc-dan", "ngan-son.duc-van"]),
    ("Xã Nà Phặc", ["ngan-son.na-phac", "ngan-son.trung-hoa"]),
    ("Xã Hiệp Lực", ["ngan-son.hiep-luc", "ngan-son.thuan-mang"]),
    ("Xã Phủ Thông", ["bach-thong.phu-thong", "bach-thong.vi-huong", "bach-thong.tan-tu",
                      "bach-thong.luc-binh"]),
    ("Xã Vĩnh Thông", ["bach-thong.si-binh", "bach-thong.vu-muon", "bach-thong.cao-son"]),
    ("Xã Cẩm Giàng", ["bach-thong.cam-giang", "bach-thong.quan-ha", "bach-thong.nguyen-phuc",
                      "bach-thong.my-thanh"]),
    ("Xã Bạch Thông", ["bach-thong.duong-phong", "bach-thong.quang-thuan", "cho-don.dong-thang"]),
    ("Xã Chợ Đồn", ["cho-don.bang-lung", "cho-don.ngoc-phai", "cho-don.phuong-vien",
                    "cho-don.bang-lang"]),
    ("Xã Nam Cường", ["cho-don.nam-cuong", "cho-don.xuan-lac", "cho-don.dong-lac"]),
    ("Xã Quảng Bạch", ["cho-don.quang-bach", "cho-don.tan-lap"]),
    ("Xã Yên Thịnh", ["cho-don.yen-thinh", "cho-don.ban-thi", "cho-don.yen-thuong"]),
    ("Xã Nghĩa Tá", ["cho-don.nghia-ta", "cho-don.luong-bang", "cho-don.binh-trung"]),
    ("Xã Yên Phong", ["cho-don.yen-phong", "cho-don.dai-sao", "cho-don.yen-my"]),
    ("Xã Chợ Mới", ["cho-moi.dong-tam", "cho-moi.quang-chu", "cho-moi.nhu-co"]),
    ("Xã Thanh Mai", ["cho-moi.thanh-mai", "cho-moi.thanh-van", "cho-moi.mai-lap"]),
    ("Xã Tân Kỳ", ["cho-moi.tan-son", "cho-moi.cao-ky", "cho-moi.hoa-muc"]),
    ("Xã Thanh Thịnh", ["cho-moi.thanh-thinh", "cho-moi.nong-ha"]),
    ("Xã Yên Bình", ["cho-moi.yen-cu", "cho-moi.binh-van", "cho-moi.yen-han"]),
    ("Xã Văn Lang", ["na-ri.van-lang", "na-ri.kim-hy", "na-ri.luong-thuong"]),
    ("Xã Cường Lợi", ["na-ri.cuong-loi", "na-ri.van-vu"]),
    ("Xã Na Rì", ["na-ri.yen-lac", "na-ri.son-thanh", "na-ri.kim-lu"]),
    ("Xã Trần Phú", ["na-ri.tran-phu", "na-ri.van-minh", "na-ri.cu-le"]),
    ("Xã Côn Minh", ["na-ri.con-minh", "na-ri.quang-phong", "na-ri.duong-son"]),
    ("Xã Xuân Dương", ["na-ri.xuan-duong", "na-ri.dong-xa", "na-ri.liem-thuy"]),
]

# Units formed from a Bắc Kạn district seat (thị trấn / the city) get a vc_endpoint as well.
SEATS = {"Phường Đức Xuân", "Phường Bắc Kạn", "Xã Chợ Rã", "Xã Ngân Sơn", "Xã Nà Phặc",
         "Xã Phủ Thông", "Xã Chợ Đồn", "Xã Chợ Mới", "Xã Na Rì"}

SLUG_OVERRIDES = {"Xã Văn Lăng": "van-lang-dong-hy"}

EXPECTED = (55, 37, 108)

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

HEADER = """\
# siteprobe reference inventory after the 2025 reform: Thái Nguyên province (Bắc Kạn merged in).
#
# GENERATED by scripts/gen-thai-nguyen.py -- edit the script and regenerate:
#   python3 scripts/gen-thai-nguyen.py > config/thai-nguyen.yml
#
# Hierarchy: 1 province site and its 92 commune-level sites (xã / phường, NQ 1683/NQ-UBTVQH15,
# in force since 1 July 2025); no districts. Coordinates are approximate, for the map only.
# Names and merge maps: see the script's docstring for the sources and how sure they are.
#
# formerly: the config/bac-kan.yml ids a site was formed from, exported as
# siteprobe_site_alias_info so dashboards join old and new series (docs/inventory.md#renames-and-merges).
# `siteprobe check --diff config/bac-kan.yml config/thai-nguyen.yml` lists the changes.
# The units formed from old Thái Nguyên communes have no formerly (no old inventory to carry
# ids from): their old units are named in the comment above each.
#
# ALL ADDRESSES ARE LOOPBACK STAND-INS (127.0.0.0/8), in ranges that do not collide with
# bac-kan.yml (127.10-127.18), so both can run at once:
#   province            127.30.0.1 router, .2 core-switch, .3 mcu, .4 vc
#   commune j (1..92)   127.31.j.1 router, 127.31.j.2 vc (some communes)
#
# contact and circuit labels are SAMPLES ("(ví dụ)", phone numbers 0000 ... that reach no one,
# circuit ids EX-...): replace them with the real ones.
"""

BODY_TOP = """\
levels: [province, commune]

defaults:
  icmp:
    interval: 10s
    timeout: 2s
    packets: 5
    spacing: 200ms

readiness:
  min_mos: 3.6

auth:
  demo-ro:
    version: 2c
    community: siteprobe-demo   # in production: community_file: secrets/community

roles:
  router:
    snmp: {auth: demo-ro, modules: [system, interfaces], interval: 30s, uplink: lo}
  vc_endpoint:
    icmp:
      packets: 10
      spacing: 100ms
    sip: {transport: udp, port: 5060, interval: 10s, timeout: 2s}
    h323: {port: 1720, interval: 10s, timeout: 2s}
  mcu:
    icmp:
      packets: 10
      spacing: 100ms
    sip: {transport: udp, port: 5060, interval: 10s, timeout: 2s}
    h323: {port: 1720, interval: 10s, timeout: 2s}
    tcp:
      - {name: https, port: 443}   # the MCU's web UI

sites:"""


def slugify(text):
    text = text.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def slug_of(name):
    if name in SLUG_OVERRIDES:
        return SLUG_OVERRIDES[name]
    for prefix in ("Phường ", "Xã "):
        if name.startswith(prefix):
            return slugify(name[len(prefix):])
    raise ValueError("unit name without Xã/Phường prefix: %r" % name)


def bac_kan_points():
    """id -> (name, lat, lon) of every site in config/bac-kan.yml."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config", "bac-kan.yml")
    sites, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^  - id: (\S+)$", line)
            if m:
                cur = m.group(1)
                sites[cur] = {}
            m = re.match(r"^    (name|lat|lon|level): (.+)$", line)
            if m and cur:
                sites[cur][m.group(1)] = m.group(2)
    return sites


def scatter(site_id, lat0, lon0, radius):
    h = hashlib.sha256(site_id.encode("utf-8")).digest()
    u = int.from_bytes(h[0:8], "big") / 2.0 ** 64
    v = int.from_bytes(h[8:16], "big") / 2.0 ** 64
    r = radius * (0.15 + 0.85 * math.sqrt(u))
    a = 2.0 * math.pi * v
    return lat0 + r * math.sin(a), lon0 + r * math.cos(a) / math.cos(math.radians(lat0))


def site_block(site_id, name, level, parent, lat, lon, formerly, devices, contact, circuit):
    lines = ["  - id: %s" % site_id, "    name: %s" % name, "    level: %s" % level]
    if parent:
        lines.append("    parent: %s" % parent)
    lines += ["    lat: %.4f" % lat, "    lon: %.4f" % lon]
    if formerly:
        lines.append("    formerly: [%s]" % ", ".join(formerly))
    lines += ['    labels: {contact: "%s", circuit: %s}' % (contact, circuit), "    devices:"]
    lines += ["      - {name: %s, address: %s, role: %s}" % d for d in devices]
    return lines


def build():
    bk = bac_kan_points()
    bk_communes = {i for i, s in bk.items() if s.get("level") == "commune"}
    used = [i for _, ids in BK_UNITS for i in ids]
    if (len(TN_UNITS), len(BK_UNITS), len(used)) != EXPECTED:
        raise ValueError("expected %s units/ids, got %s"
                         % (EXPECTED, (len(TN_UNITS), len(BK_UNITS), len(used))))
    if sorted(used) != sorted(bk_communes):
        raise ValueError("formerly must use each bac-kan.yml commune once: missing %s, extra %s"
                         % (sorted(bk_communes - set(used)), sorted(set(used) - bk_communes)))

    ids, addrs = set(), set()
    loopback = ipaddress.ip_network("127.0.0.0/8")

    def check(site_id, devices):
        if not ID_RE.match(site_id) or len(site_id) > 64 or site_id in ids or site_id in bk:
            raise ValueError("bad, duplicate or old (bac-kan.yml) site id %r" % site_id)
        ids.add(site_id)
        for _, addr, _ in devices:
            if ipaddress.ip_address(addr) not in loopback or addr in addrs:
                raise ValueError("non-loopback or duplicate address %s" % addr)
            addrs.add(addr)

    p = PROVINCE
    devs = [("router", "127.30.0.1", "router"), ("core-switch", "127.30.0.2", "switch"),
            ("mcu", "127.30.0.3", "mcu"), ("vc", "127.30.0.4", "vc_endpoint")]
    check(p["id"], devs)
    out = [HEADER, BODY_TOP]
    out += site_block(p["id"], p["name"], "province", None, p["lat"], p["lon"], p["formerly"], devs,
                      "Trung tâm CNTT tỉnh, trực 24/7 0000 100 000 (ví dụ)", "EX-TNG-CORE")

    units = [(name, None, district, old) for district, name, old in TN_UNITS]
    units += [(name, formerly, None, None) for name, formerly in BK_UNITS]
    last_group = None
    for j, (name, formerly, district, old_names) in enumerate(units, 1):
        sid = "%s.%s" % (p["id"], slug_of(name))
        if formerly:
            pts = [(float(bk[i]["lat"]), float(bk[i]["lon"])) for i in formerly]
            lat = sum(a for a, _ in pts) / len(pts)
            lon = sum(b for _, b in pts) / len(pts)
        else:
            lat, lon = scatter(sid, *TN_DISTRICTS[district])
        devs = [("router", "127.31.%d.1" % j, "router")]
        if j % 3 == 1 or name in SEATS:
            devs.append(("vc", "127.31.%d.2" % j, "vc_endpoint"))
        check(sid, devs)
        group = district or "Bắc Kạn"
        if group != last_group:
            out += ["", "  # --- formed from communes of %s ---"
                    % (district if district else "the former Bắc Kạn province (formerly: bac-kan.yml ids)")]
            last_group = group
        out.append("")
        if old_names:
            out.append("  # from: %s" % ", ".join(old_names))
        out += site_block(sid, name, "commune", p["id"], lat, lon, formerly, devs,
                          "Văn phòng UBND %s 0000 100 %03d (ví dụ)" % (name, j), "EX-TNG-C%03d" % j)
    return "\n".join(out) + "\n"


def main():
    sys.stdout.buffer.write(build().encode("utf-8"))


if __name__ == "__main__":
    main()
