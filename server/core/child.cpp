#include "core/child.h"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace skirmish::core {

bool prepare_child(pid_t master_pid, int ipc_fd, const std::vector<int>& keep) {
  // If the master dies, so do we. PDEATHSIG alone races with fork (the
  // master may have died before prctl ran), hence the getppid check; the
  // IPC socket's EOF is the third, graceful signal.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != master_pid) return false;

  // The master's handlers (libuv's signal machinery) must not run here: the
  // child is told to stop or reload through its mailbox. SIGINT from a
  // terminal reaches the whole group; only the master acts on it.
  for (int sig : {SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2, SIGQUIT}) signal(sig, SIG_DFL);
  for (int sig : {SIGINT, SIGHUP, SIGPIPE}) signal(sig, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // Close what we inherited but do not own: listen sockets, the master's
  // loop, other children's IPC sockets.
  std::vector<int> fds;
  if (DIR* d = opendir("/proc/self/fd")) {
    int self = dirfd(d);
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      int fd = std::atoi(e->d_name);
      if (fd > 2 && fd != self && fd != ipc_fd && std::find(keep.begin(), keep.end(), fd) == keep.end())
        fds.push_back(fd);
    }
    closedir(d);
  }
  for (int fd : fds) close(fd);
  return true;
}

}  // namespace skirmish::core
