#include "daemon/hardening.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace siteprobe {

bool make_undumpable() {
  return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
}

std::string drop_net_raw() {
  // Raw syscalls: libcap is not a dependency for two calls. The kernel clears an ambient
  // capability that is no longer both permitted and inheritable, so capset() covers all four sets.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return std::string("capget: ") + std::strerror(errno);
  auto& d = data[CAP_TO_INDEX(CAP_NET_RAW)];
  const auto bit = CAP_TO_MASK(CAP_NET_RAW);
  if (!((d.effective | d.permitted | d.inheritable) & bit)) return "";
  d.effective &= ~bit;
  d.permitted &= ~bit;
  d.inheritable &= ~bit;
  if (syscall(SYS_capset, &hdr, data) != 0) return std::string("capset: ") + std::strerror(errno);
  return "";
}

std::string inline_secret_warning(const Config& config) {
  std::string profiles;
  for (const auto& [name, p] : config.auth)
    if (p.inline_secret) profiles += (profiles.empty() ? "" : ", ") + name;
  struct stat st {};
  if (profiles.empty() || stat(config.file.c_str(), &st) != 0 || !(st.st_mode & S_IROTH)) return "";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return config.file + ": warning: SNMP secrets written inline (auth " + profiles +
         ") in a file every local user can read (mode " + mode + "); fix: chgrp siteprobe " + config.file +
         " && chmod 640 " + config.file + ", or move them to community_file/auth_passphrase_file/" +
         "priv_passphrase_file";
}

}  // namespace siteprobe
