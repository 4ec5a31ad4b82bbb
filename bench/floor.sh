#!/usr/bin/env bash
# The floor: the same deploy done with the least possible means, for bench/run.py to beat.
#
#   floor.sh SSH_COMMAND USER@HOST ROOT SOURCE SHA cp|cp-al|reflink [KEEP]
#
# One `rsync -a --delete` over ssh into ROOT/deploy-cache/, then ONE ssh command that copies it
# to releases/.tmp-SHA, links the shared dirs, renames it to releases/SHA, switches `current`
# and `htdocs` by rename and prunes to KEEP releases. A release that already exists is not
# copied again (the floor's "nothing to do"). No lock, no checks, no manifest, no log.
set -euo pipefail
ssh_command=$1 target=$2 root=$3 source=$4 sha=$5 mode=$6 keep=${7:-5}

case $mode in
    cp) copy='cp -a' ;;
    cp-al) copy='cp -al' ;;
    reflink) copy='cp -a --reflink=auto' ;;
    *) echo "floor: unknown mode $mode" >&2; exit 2 ;;
esac

rsync -a --delete --exclude=.git -e "$ssh_command" -- "$source/" "$target:$root/deploy-cache/"

# shellcheck disable=SC2086  # $ssh_command is a word list on purpose
exec $ssh_command "$target" "set -e; cd '$root'; sha='$sha'
mkdir -p releases shared/cache shared/content shared/storage
if [ ! -d releases/\$sha ]; then
  t=releases/.tmp-\$sha; rm -rf \$t; $copy deploy-cache \$t
  for d in cache content storage; do
    if [ -d \$t/\$d ] && [ -z \"\$(ls -A shared/\$d)\" ]; then cp -a \$t/\$d/. shared/\$d/; fi
    rm -rf \$t/\$d; ln -s ../../shared/\$d \$t/\$d
  done
  mv -T \$t releases/\$sha
fi
if [ \"\$(readlink current 2>/dev/null)\" != releases/\$sha ]; then
  ln -sfn releases/\$sha .current.tmp && mv -Tf .current.tmp current
fi
if [ ! -L htdocs ]; then ln -sfn current/htdocs .htdocs.tmp && mv -Tf .htdocs.tmp htdocs; fi
ls -1t releases | grep -vx \"\$sha\" | tail -n +$keep | sed 's|^|releases/|' | xargs -r rm -rf"
