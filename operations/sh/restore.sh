# shellcheck shell=sh
# Loads one dump into the database (restore.dump_restored).
# Variables (set by shell.script): r (root), file (dump, relative to r), db, cnf (uploaded
# option file or empty), df (the host's option file or empty), dbu/dbh/dbp/dbs, logfile,
# logline. dash has no pipefail: the first exit status of the pipeline comes back through fd 3.
# shellcheck disable=SC2154 # the variables above are set before this text
umask 077
cd "$r" || exit 1
# shellcheck disable=SC2088 # a literal "~/" from the client file, expanded here
case $df in "~/"*) df=$HOME/${df#"~/"};; esac
[ -z "$cnf" ] || trap 'rm -f -- "$cnf"' EXIT
client=$(command -v mariadb || command -v mysql) || { echo 'mysql is not installed' >&2; exit 1; }
set --
if [ -n "$cnf" ]; then set -- --defaults-file="$cnf"
elif [ -n "$df" ]; then set -- --defaults-extra-file="$df"
fi
if [ -z "$cnf" ]; then
  set -- "$@" ${dbu:+"--user=$dbu"} ${dbh:+"--host=$dbh"} ${dbp:+"--port=$dbp"} \
    ${dbs:+"--socket=$dbs"}
fi
rc=$( { { gzip -dc -- "$file"; echo $? >&3; } | "$client" "$@" -- "$db"; } 3>&1 ) || {
  echo "loading $file into $db failed" >&2; exit 1; }
[ "$rc" = 0 ] || { echo "$file is damaged (gzip exit $rc); the load stopped early" >&2; exit 1; }
printf '%s\n' "$logline" >>"$logfile"
