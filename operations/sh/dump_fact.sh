# shellcheck shell=sh
# The dump folder in one round trip (dump.DumpFacts; parsed by database.parse_dump_folder):
# host clock, dumps (mtime, size), leftovers, tools.
# Variables (set by shell.script): r (root, empty = $HOME), dir (dump folder, relative to r),
# meta, cnf, df (defaults_file, may be empty).
# shellcheck disable=SC2154 # the variables above are set before this text
[ -n "$r" ] || r=$HOME
printf 'root %s\n' "$r"
printf 'now %s\n' "$(date +%s)"
for t in mariadb-dump mysqldump mariadb mysql gzip; do
  command -v "$t" >/dev/null 2>&1 && printf 'tool %s\n' "$t"
done
if [ -n "$df" ]; then
  # shellcheck disable=SC2088 # a literal "~/" from the client file, expanded here
  case $df in "~/"*) df=$HOME/${df#"~/"};; esac
  if [ -f "$df" ] && [ -r "$df" ]; then echo 'defaults ok'; else echo 'defaults missing'; fi
fi
cd "$r" 2>/dev/null || exit 0
[ -e "$meta/$cnf" ] && echo 'cnf stale'
if [ -d "$dir" ]; then
  printf 'folder ok %s\n' "$(stat -L -c %a "$dir")"
  for f in "$dir"/*.sql.gz "$dir"/.tmp-*; do
    [ -f "$f" ] || continue
    printf 'file %s %s\n' "$(stat -L -c '%Y %s' "$f")" "${f##*/}"
    # the size the dump had when it was verified: a differing size means damaged or cut short
    [ -f "$dir/.${f##*/}.size" ] && \
      printf 'recorded %s %s\n' "$(head -c 20 "$dir/.${f##*/}.size" | tr -dc 0-9)" "${f##*/}"
  done
elif [ -e "$dir" ] || [ -L "$dir" ]; then echo 'folder notdir'
else echo 'folder missing'
fi
exit 0
