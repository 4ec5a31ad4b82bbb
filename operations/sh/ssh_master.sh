# shellcheck shell=sh
# Local, not on a host: runs "$@" (an OpenSSH master connection: ssh -M -N ...) until this
# script's standard input ends, i.e. until the process that started it closes its end of the
# pipe or dies, however it dies (even SIGKILL): no master outlives the run.
# The master's own standard input is /dev/null (an asynchronous command's, without job control).
"$@" &
master=$!
while read -r _; do :; done
kill "$master" 2>/dev/null
wait "$master" 2>/dev/null
exit 0
