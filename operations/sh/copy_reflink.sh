# shellcheck shell=sh
# Makes folder $dest (absent) a copy-on-write clone of folder $src (copy_mode reflink); where
# the file system can't clone, prints $mark, removes the partial clone and copies instead.
# Variables (set by shell.script): src, dest, mark.
# shellcheck disable=SC2154 # the variables above are set before this text
cp -a --reflink=always "$src" "$dest" 2>/dev/null || {
  echo "$mark"
  rm -rf "$dest" && cp -a "$src" "$dest"
}
