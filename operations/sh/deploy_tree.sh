# shellcheck shell=sh
# The deploy root's state in one round trip (facts.DeployTree; parsed by parse_deploy_tree).
# Variables (set by shell.script): r (root, empty = $HOME), sha, docroot, meta, marker,
# manifest, logfile, loglines, lockdir, cache_dir, releases_dir, shared_dir, current_link,
# tmplink_suffix, listing (the manifest listing command, see manifest.py).
# "$@": the shared paths, "d:path" / "f:path", then the writable dirs, "w:path". They are reported by their index in "$@", so
# odd characters in them can't confuse parsing.
# shellcheck disable=SC2154 # the variables above are set before this text
[ -n "$r" ] || r=$HOME
printf 'root %s\n' "$r"
if command -v rsync >/dev/null 2>&1; then echo 'rsync yes'; else echo 'rsync no'; fi
if command -v setfacl >/dev/null 2>&1; then echo 'acl yes'; else echo 'acl no'; fi
if [ ! -e "$r" ] && [ ! -L "$r" ]; then echo 'rootstate missing'; exit 0; fi
if [ ! -d "$r" ]; then echo 'rootstate notdir'; exit 0; fi
cd "$r" 2>/dev/null || { echo 'rootstate unreadable'; exit 0; }
if [ -w . ]; then echo 'rootstate ok'; else echo 'rootstate readonly'; fi
kind() {
  if [ -L "$1" ]; then printf 'link %s\n' "$(readlink "$1")"
  elif [ -d "$1" ]; then
    if [ -z "$(ls -A "$1" 2>/dev/null)" ]; then echo emptydir; else echo dir; fi
  elif [ -f "$1" ]; then if [ -s "$1" ]; then echo file; else echo emptyfile; fi
  elif [ -e "$1" ]; then echo other
  else echo missing
  fi
}
listing() { eval "$listing"; }
for d in "$cache_dir" "$releases_dir" "$shared_dir" "$meta"; do
  [ -d "$d" ] && [ ! -L "$d" ] && printf 'dir %s\n' "$d"
done
printf 'top current %s\n' "$(kind "$current_link")"
printf 'top docroot %s\n' "$(kind "$docroot")"
for t in .*"$tmplink_suffix"; do [ -L "$t" ] && printf 'tmplink %s\n' "$t"; done
if [ -d "$lockdir" ]; then
  echo 'lockdir yes'
  [ -f "$lockdir/owner" ] && head -c 2000 "$lockdir/owner" | sed 's/^/lock /'
fi
nl=$(printf '\nx'); nl=${nl%x}
for e in "$releases_dir"/* "$releases_dir"/.[!.]*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  n=${e#"$releases_dir"/}
  case $n in *"$nl"*) n=$(printf '%s' "$n" | tr '\n' '?');; esac
  if [ -L "$e" ]; then t='link'; elif [ -d "$e" ]; then t='dir'; else t='other'; fi
  m=-
  if [ "$t" = dir ] && [ -f "$e/$marker" ]; then m=$(head -n 1 "$e/$marker" | tr -dc 0-9a-f-); fi
  printf 'entry %s %s %s\n' "$t" "${m:--}" "$n"
done
rel="$releases_dir/$sha"
if [ -d "$rel" ] && [ ! -L "$rel" ] && [ -f "$rel/$marker" ]; then
  printf 'digest %s\n' "$(sed -n 2p "$rel/$marker" | tr -dc 0-9a-f)"
  if [ ! -f "$rel/$manifest" ]; then echo 'manifest missing'
  elif (cd "$rel" && listing) | cmp -s - "$rel/$manifest"; then echo 'manifest ok'
  else
    echo 'manifest changed'
    (cd "$rel" && listing) | diff "$rel/$manifest" - | grep '^[<>]' | head -n 50 | sed 's/^/diff /'
  fi
fi
i=0
w=0
for p in "$@"; do
  path=${p#?:}
  case $p in w:*)
    # A folder is "dir", empty or not: the site fills it, and that is no change.
    k=$(kind "$rel/$path"); [ "$k" = emptydir ] && k=dir
    [ -d "$rel" ] && [ ! -L "$rel" ] && printf 'wr %s %s\n' "$w" "$k"
    w=$((w + 1)); continue;;
  esac
  shared=$shared_dir/$path
  printf 'shared %s %s\n' "$i" "$(kind "$shared")"
  [ -d "$shared" ] && printf 'sharedmeta %s %s\n' "$i" "$(stat -c '%a %G' "$shared")"
  # A shared file's sha256 (never its content): shared_sources compares it with the local file.
  case $p in f:*)
    if [ -f "$shared" ] && [ ! -L "$shared" ] && s=$(sha256sum < "$shared"); then
      printf 'sharedsum %s %s\n' "$i" "${s%% *}"
    fi;;
  esac
  if [ -d "$rel" ] && [ ! -L "$rel" ]; then
    k=$(kind "$rel/$path")
    printf 'rel %s %s\n' "$i" "$k"
    # Would moving the release's content into shared/ overwrite anything there?
    case $k in
      dir) (cd "$rel/$path" && find . ! -type d -exec sh -c \
             'for f; do [ -e "$0/$f" ] || [ -L "$0/$f" ] && exit 1; done; exit 0' \
             "$r/$shared" {} +) && m=yes || m=no
           printf 'relmerge %s %s\n' "$i" "$m";;
      file) case $(kind "$shared") in missing|emptyfile) m=yes;; *) m=no;; esac
           printf 'relmerge %s %s\n' "$i" "$m";;
    esac
  fi
  i=$((i + 1))
done
[ -f "$logfile" ] && tail -n "$loglines" "$logfile" | sed 's/^/log /'
exit 0
