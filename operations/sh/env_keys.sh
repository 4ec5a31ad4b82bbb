# shellcheck shell=sh
# The key names of two dotenv files, never a value (env_guard.EnvKeys; parsed by parse_env_keys).
# Variables (set by shell.script): env (the shared .env), example (the release's .env.example;
# empty: not read). Prints per file "<which> missing|empty|unreadable|file", then "<which>
# key <NAME>" for each KEY=value or `export KEY=value` line (comments and blank lines skipped,
# the lines of a quoted value spanning lines skipped too). Exits 0 whatever it finds.
# shellcheck disable=SC2154 # the variables above are set before this text
keys() {
  awk -v which="$1" '
    inq != "" { if (index($0, inq) > 0) inq = ""; next }
    {
      line = $0
      sub(/^[ \t]+/, "", line)
      if (line == "" || substr(line, 1, 1) == "#") next
      sub(/^export[ \t]+/, "", line)
      if (!match(line, /^[A-Za-z_][A-Za-z0-9_.]*[ \t]*=/)) next
      key = substr(line, 1, RLENGTH)
      sub(/[ \t]*=$/, "", key)
      print which " key " key
      value = substr(line, RLENGTH + 1)
      sub(/^[ \t]+/, "", value)
      q = substr(value, 1, 1)
      if ((q == "\"" || q == "\047") && index(substr(value, 2), q) == 0) inq = q
    }' "$2"
}
report() {
  if [ ! -e "$2" ]; then echo "$1 missing"
  elif [ ! -r "$2" ] || [ ! -f "$2" ]; then echo "$1 unreadable"
  elif [ ! -s "$2" ]; then echo "$1 empty"
  else echo "$1 file"; keys "$1" "$2"
  fi
}
report env "$env"
[ -z "$example" ] || report example "$example"
exit 0
