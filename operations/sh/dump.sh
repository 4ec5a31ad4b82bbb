# shellcheck shell=sh
# Writes, verifies and renames one dump (dump.dump_command).
# Variables (set by shell.script): r (root), dir, db, final (file name), cnf (uploaded option
# file with the password, or empty), df (the host's own option file, or empty), dbu/dbh/dbp/dbs
# (user, host, port, socket: not secret, on argv only when there is no uploaded file),
# logfile, logline. "$@": "l:<name>" leftovers to remove first, "p:<name>" old dumps to prune
# after success. dash has no pipefail: each pipeline's first exit status comes back through fd 3.
# shellcheck disable=SC2154 # the variables above are set before this text
umask 077
cd "$r" || exit 1
tmp=$dir/.tmp-$final
err=$tmp.err
tailf=$tmp.tail
# shellcheck disable=SC2088 # a literal "~/" from the client file, expanded here
case $df in "~/"*) df=$HOME/${df#"~/"};; esac
cleanup() { rm -f -- "$tmp" "$err" "$tailf"; [ -z "$cnf" ] || rm -f -- "$cnf"; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
fail() { printf 'atomic-deploy: dump %s: %s\n' "$db" "$*" >&2; exit 1; }
tell() { printf '%s %s\n' "$1" "$2"; }
dumper=$(command -v mariadb-dump || command -v mysqldump) || fail 'mysqldump is not installed'
client=$(command -v mariadb || command -v mysql)
with_creds() {
  prog=$1; shift
  if [ -n "$cnf" ]; then "$prog" --defaults-file="$cnf" "$@"
  elif [ -n "$df" ]; then
    "$prog" --defaults-extra-file="$df" ${dbu:+"--user=$dbu"} ${dbh:+"--host=$dbh"} \
      ${dbp:+"--port=$dbp"} ${dbs:+"--socket=$dbs"} "$@"
  else
    "$prog" ${dbu:+"--user=$dbu"} ${dbh:+"--host=$dbh"} ${dbp:+"--port=$dbp"} \
      ${dbs:+"--socket=$dbs"} "$@"
  fi
}
{ mkdir -p -- "$dir" && chmod 700 -- "$dir"; } || fail "cannot create the dump folder $dir"
for a in "$@"; do case $a in l:*) rm -f -- "$dir/${a#l:}";; esac; done
sql="SELECT CONCAT(TABLE_NAME, ' (', ENGINE, ')') FROM information_schema.TABLES"
sql="$sql WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
sql="$sql AND ENGINE <> 'InnoDB' ORDER BY TABLE_NAME"
if [ -n "$client" ]; then
  others=$(with_creds "$client" --batch --skip-column-names -e "$sql" -- "$db" 2>"$err") \
    || fail "cannot connect to the database: $(cat "$err")"
  others=$(printf '%s' "$others" | tr '\n' ',' | sed 's/,/, /g')
  [ -z "$others" ] || tell warn "--single-transaction is consistent for InnoDB only: $others"
fi
events=--events routines=--routines tbs=
while :; do
  rc=$( { { with_creds "$dumper" --single-transaction --skip-lock-tables --triggers --comments \
      $routines $events $tbs -- "$db" 2>"$err"; echo $? >&3; } | gzip -c >"$tmp"; } 3>&1 ) \
    || fail "writing $tmp failed (disk full?)"
  [ "$rc" = 0 ] && break
  if [ -z "$tbs" ] && grep -q 'PROCESS privilege' "$err"; then
    tbs=--no-tablespaces
    tell note 'the user lacks the PROCESS privilege: dumping again with --no-tablespaces'
  elif [ -n "$events" ] && grep -qi 'denied' "$err" && grep -qi 'event' "$err"; then
    events=
    tell note 'the user may not dump events: dumping again without --events'
  elif [ -n "$routines" ] && grep -qi 'denied' "$err" \
      && grep -qiE 'procedure|function|routine|proc' "$err"; then
    routines=
    tell note 'the user may not dump routines: dumping again without --routines'
  else
    fail "mysqldump failed (exit $rc): $(cat "$err")"
  fi
done
[ -s "$err" ] && tell warn "mysqldump said: $(head -c 2000 "$err" | tr '\n' ' ')"
vrc=$( { { gzip -dc -- "$tmp"; echo $? >&3; } | tail -n 5 >"$tailf"; } 3>&1 )
[ "$vrc" = 0 ] || fail "the compressed dump is damaged (gzip -d exit $vrc); not kept"
grep -q '^-- Dump completed' "$tailf" \
  || fail "the dump lacks mysqldump's completion trailer ('-- Dump completed'); not kept"
{ chmod 600 -- "$tmp" && mv -f -- "$tmp" "$dir/$final"; } \
  || fail "cannot rename $tmp to $dir/$final"
stat -c %s -- "$dir/$final" >"$dir/.$final.size" || fail "cannot record the dump's size"
for a in "$@"; do case $a in p:*) rm -f -- "$dir/${a#p:}" "$dir/.${a#p:}.size";; esac; done
printf '%s\n' "$logline" >>"$logfile"
tell 'done' "$dir/$final $(stat -c %s -- "$dir/$final")"
