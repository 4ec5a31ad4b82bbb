# shellcheck shell=sh
# Takes the deploy lock when the deploy can go on without creating anything first (run
# before deploy_tree.sh when the read also takes the lock: lock.py, facts.LockFold): the
# root and $meta exist, the host passes the preflight checks (rsync, `current` and the docroot
# not real folders or files, releases/<sha> absent or complete). Otherwise it does nothing and
# the lock is taken by its own command after preflight. mkdir is atomic: of two concurrent
# deploys only one gets it; the read that follows reports the lock's owner either way.
# Variables: r (root, empty = $HOME), meta, lockdir, docroot, sha, marker, current_link,
# releases_dir, owner (the owner file's text).
# shellcheck disable=SC2154 # the variables above are set before this text
( [ -n "$r" ] || r=$HOME
  cd "$r" 2>/dev/null && [ -w . ] && [ -d "$meta" ] && [ ! -L "$meta" ] || exit 0
  command -v rsync >/dev/null 2>&1 || exit 0
  for x in "$current_link" "$docroot"; do [ -L "$x" ] || [ ! -e "$x" ] || exit 0; done
  rel=$releases_dir/$sha
  if [ -e "$rel" ] || [ -L "$rel" ]; then
    [ -d "$rel" ] && [ ! -L "$rel" ] && [ -f "$rel/$marker" ] || exit 0
  fi
  mkdir "$lockdir" 2>/dev/null || exit 0
  (umask 077 && printf %s "$owner" > "$lockdir/owner") || rm -rf "$lockdir"
)
