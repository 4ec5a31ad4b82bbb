# shellcheck shell=sh
# Takes or gives back the deploy lock (lock.py): a directory, made by mkdir (atomic), with
# an owner file that names the run holding it.
# Variables (set by shell.script): meta (the tool's folder), lockdir (the lock), token (the
# run whose lock may be removed; empty: a lock without owner file), owner (the owner file's
# text, when taking). "$1": take (fails, printing the holder, if someone holds it),
# take-over (remove the lock first if it still carries $token, then take) or give-back
# (remove the lock only if it carries $token: never someone else's).
# shellcheck disable=SC2154 # the variables above are set before this text
owned() {
  if [ -z "$token" ]; then [ ! -e "$lockdir/owner" ]
  else grep -qxF "token=$token" "$lockdir/owner" 2>/dev/null
  fi
}
locked() { echo 'locked:'; cat "$lockdir/owner" 2>/dev/null; exit 1; }
case $1 in
  give-back) { owned && rm -rf "$lockdir"; } || true; exit 0;;
esac
if mkdir -p "$meta" && chmod 700 "$meta"; then
  [ "$1" != take-over ] || { owned && rm -rf "$lockdir"; }
elif [ "$1" != take-over ]; then
  locked
fi
mkdir "$lockdir" 2>/dev/null || locked
(umask 077 && printf %s "$owner" > "$lockdir/owner")
