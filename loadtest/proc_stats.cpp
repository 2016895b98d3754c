#include "loadtest/proc_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

namespace skirmish::loadtest {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Stat {
  int ppid = 0;
  uint64_t ticks = 0;
  bool ok = false;
};

Stat read_stat(int pid) {
  Stat st;
  const std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
  const auto rp = s.rfind(')');
  if (rp == std::string::npos) return st;
  std::istringstream in(s.substr(rp + 2));
  std::string field;
  std::vector<std::string> f;  // from field 3 (state)
  while (in >> field && f.size() < 13) f.push_back(field);
  if (f.size() < 13 || f[0] == "Z") return st;
  st.ppid = std::atoi(f[1].c_str());
  st.ticks = std::strtoull(f[11].c_str(), nullptr, 10) + std::strtoull(f[12].c_str(), nullptr, 10);  // utime, stime
  st.ok = true;
  return st;
}

uint64_t status_kib(const std::string& text, const char* key) {
  const auto at = text.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoull(text.c_str() + at + std::char_traits<char>::length(key), nullptr, 10);
}

}  // namespace

TreeSample sample_tree(int root) {
  TreeSample out;
  if (root <= 0) return out;
  std::map<int, Stat> all;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const int pid = std::atoi(e->d_name);
      if (pid > 0) {
        Stat st = read_stat(pid);
        if (st.ok) all[pid] = st;
      }
    }
    closedir(d);
  }
  if (!all.count(root)) return out;
  std::vector<int> tree{root};
  for (size_t i = 0; i < tree.size() && i < 4096; ++i)
    for (auto& [pid, st] : all)
      if (st.ppid == tree[i]) tree.push_back(pid);
  const double hz = double(sysconf(_SC_CLK_TCK));
  for (int pid : tree) {
    out.cpu_s += double(all[pid].ticks) / hz;
    const std::string p = "/proc/" + std::to_string(pid);
    out.pss_kib += status_kib(slurp(p + "/smaps_rollup"), "Pss:");
    out.rss_kib += status_kib(slurp(p + "/status"), "VmRSS:");
    ++out.processes;
  }
  return out;
}

double self_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

Machine describe_machine() {
  Machine m;
  utsname u{};
  if (uname(&u) == 0) {
    m.hostname = u.nodename;
    m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  }
  m.cpus = std::thread::hardware_concurrency();
  const std::string cpu = slurp("/proc/cpuinfo");
  if (auto at = cpu.find("model name"); at != std::string::npos) {
    auto colon = cpu.find(':', at);
    auto nl = cpu.find('\n', colon);
    if (colon != std::string::npos) m.cpu_model = cpu.substr(colon + 2, nl - colon - 2);
  }
  m.mem_total_kib = status_kib(slurp("/proc/meminfo"), "MemTotal:");
  return m;
}

}  // namespace skirmish::loadtest
