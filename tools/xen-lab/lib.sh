# Shared by the dom0 and domU /init of the Xen lab and by the scenarios (busybox ash).
# Every line the host reads starts with "XENLAB ": "XENLAB check ok|FAIL <what>", and once, in dom0,
# "XENLAB result ok|FAIL <scenario>[: <first failure>]".
say() { echo "XENLAB $*"; }
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}";; esac; done; }
first_failure=""
pass() { say "check ok $*"; }
fail() { say "check FAIL $*"; [ -n "$first_failure" ] || first_failure="$*"; }
check() {  # check WHAT CMD...: one check line from a command's exit status
  what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# wait_until SECONDS CMD...: polls CMD every ${POLL_S:-0.5} s; status 0 once it succeeds, 1 after SECONDS (of
# uptime: the polling itself is slow under TCG). The clock is read with the shell's own `read`: in a PV guest
# under TCG every fork costs (its page tables go through Xen), and three domUs polling add up.
wait_until() {
  read -r now _ </proc/uptime
  end=$(( ${now%.*} + $1 )); shift
  while ! "$@" >/dev/null 2>&1; do
    read -r now _ </proc/uptime
    [ "${now%.*}" -ge "$end" ] && return 1
    sleep "${POLL_S:-0.5}"
  done
  return 0
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
