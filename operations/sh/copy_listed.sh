# shellcheck shell=sh
# Makes folder $dest (absent) a copy of folder $src with `cp $flags` (-a, or -al for copy_mode
# hardlink) and, while it copies, writes the manifest listing of $src ($listing, manifest.py)
# to $dest/$manifest. cp -a and cp -al keep type, size, mtime (ns) and link targets, so that is
# the listing of the copy, and on 2+ cores it adds no wall time.
# It stays the listing of the release only if what release.py does to the copy next changes
# nothing the listing shows: it replaces the shared paths and writable dirs (left out of the
# listing) and makes their parent folders, "$@", which must already be real folders in $src.
# Where one is not, where $dest would be on another file system than $src (another mtime
# resolution) or where $src holds a file named $manifest, it only copies (and drops that file:
# the name is the release's own), and the release is listed once it is complete (release.py).
# While the copy runs, every $every seconds, a line says how many files and bytes are copied
# so far (on stdout, shown live per host by release.py).
# Variables (set by shell.script): src, dest, flags, manifest, listing, every.
# shellcheck disable=SC2154 # the variables above are set before this text
listing() { eval "$listing"; }
ahead=yes
if [ -e "$src/$manifest" ] || [ -L "$src/$manifest" ]; then ahead=no; fi
for p in "$@"; do
  if [ ! -d "$src/$p" ] || [ -L "$src/$p" ]; then ahead=no; fi
done
if [ "$(stat -c %d "$src")" != "$(stat -c %d "${dest%/*}")" ]; then ahead=no; fi
progress() {
  # sleep holds no output of the command: when the copy ends, nothing keeps the session open.
  while sleep "$every" >/dev/null 2>&1 && kill -0 "$$" 2>/dev/null; do
    find "$dest" -printf '%s\n' 2>/dev/null |
      awk '{ n++; b += $1 } END { printf "copy: %d files, %.1f MB so far\n", n, b / 1e6 }'
  done
}
progress &
ticker=$!
if [ "$ahead" = yes ]; then
  # The listing's exit status as well as the copy's: either failing fails the command. Its
  # file is inside $dest, so an interrupted build leaves nothing behind but the build itself.
  mkdir "$dest" && {
    (cd "$src" && listing) > "$dest/$manifest" &
    lister=$!
    cp "$flags" "$src/." "$dest"; copied=$?
    wait "$lister" && [ "$copied" -eq 0 ]
  }
else
  cp "$flags" "$src" "$dest" && rm -f "$dest/$manifest"
fi
status=$?
kill "$ticker" 2>/dev/null
[ "$status" -eq 0 ]
