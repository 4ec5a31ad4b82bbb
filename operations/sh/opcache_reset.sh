# shellcheck shell=sh
# Resets the web SAPI's OPcache through a one-time, token-protected PHP file (php_reload).
# Variables (set by shell.script): dir (the new release's docroot), url (base URL), to
# (connect-to address, may be empty), secs (timeout), php (the file's text, @TOKEN@ in it),
# prefix (the one-time file's name before its random part).
# shellcheck disable=SC2154 # the variables above are set before this text
fail() { printf 'php opcache-reset: %s\n' "$1" >&2; exit 1; }
rnd() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
command -v curl >/dev/null 2>&1 || fail 'curl is not installed on the host'
[ -d "$dir" ] || fail "$dir is not a folder"
rm -f "$dir/$prefix"*.php
tok=$(rnd 24); id=$(rnd 12)
{ [ ${#tok} -eq 48 ] && [ ${#id} -eq 24 ]; } || fail 'could not read /dev/urandom'
f="$dir/$prefix$id.php"
trap 'rm -f "$f"' EXIT
trap 'exit 1' HUP INT TERM
umask 077
{ printf '%s' "$php" | sed "s/@TOKEN@/$tok/" > "$f" && chmod 0644 "$f"; } || fail "cannot write $f"
out=$({
  printf 'url = "%s/%s"\n' "$url" "${f##*/}"
  printf 'header = "X-Atomic-Deploy-Token: %s"\n' "$tok"
  [ -z "$to" ] || printf 'connect-to = "::%s:"\n' "$to"
} | curl -K - -fsS --noproxy '*' --max-time "$secs" 2>&1)
case $out in
  *'opcache-reset: done'*) echo 'opcache-reset: done' ;;
  *'opcache-reset: off'*) echo 'opcache-reset: OPcache is off in the web SAPI: nothing to do' ;;
  *) fail "GET $url/<one-time file> failed: $(printf '%s' "$out" | head -c 300)" ;;
esac
