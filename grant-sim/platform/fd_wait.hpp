// Waiting on a file descriptor: the one blocking helper the stores and event channels (simulated and Xen) share.
#pragma once

namespace pvnet {

// Blocks until `fd` is readable or timeout_ms passes (-1: forever); EINTR restarts the wait.
void wait_readable(int fd, int timeout_ms);

}  // namespace pvnet
