#!/bin/sh
# build-cell inner helper: see the header of src/cell/helper-script.ts (generated from this file by scripts/embed-helper.mjs).
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
global_rule=
flatten_dir=
# "--inner": this helper was re-run by the outer one inside the cell's user namespace (see
# enter-userns): it applies the remaining operations, then execs the command (no PID-1 duty).
inner=
if [ "${1-}" = --inner ]; then inner=1; shift; fi
userns=

fail() {
  printf 'error %s\n' "$*" >&4 2>/dev/null || printf 'build-cell: %s\n' "$*" >&2
  unregister_global
  exit 125
}
unregister_global() {
  if [ -n "$global_rule" ] && [ -e "$global_rule" ]; then printf -- '-1' > "$global_rule" 2>/dev/null || :; fi
  global_rule=
}
# Run a setup command; on failure report it with its output.
run() {
  out=$("$@" 2>&1) || fail "$* failed: $out"
}
need() { [ "$#" -ge "$1" ] || fail "internal: operation $op needs $(( $1 - 1 )) arguments"; }

while [ "$#" -gt 0 ]; do
  op=$1
  case $op in
    ns-check)
      need 2 "$@"
      # fd $2 is the engine's own mount namespace (/proc/self/ns/mnt, opened by the engine):
      # test -ef compares the namespaces' inodes without a readlink process.
      [ -e "/proc/self/fd/$2" ] || fail "the engine's mount namespace (fd $2) is missing"
      if [ /proc/self/ns/mnt -ef "/proc/self/fd/$2" ] || [ /proc/self/ns/mnt -ef /proc/1/ns/mnt ]; then fail "refusing to run in the host mount namespace"; fi
      case $2 in *[!0-9]*) fail "internal: bad fd $2" ;; esac
      eval "exec $2<&-"
      shift 2 ;;
    root-check)
      need 3 "$@"
      case "$3/" in "$2"/*) ;; *) fail "refusing to run outside the runtime prefix: $3 is not under $2" ;; esac
      [ -d "$3" ] && [ ! -L "$3" ] || fail "container root $3 is not a directory"
      [ -f "$3/.build-cell-root" ] && [ ! -L "$3/.build-cell-root" ] || fail "missing runtime root sentinel $3/.build-cell-root"
      sentinel=; IFS= read -r sentinel < "$3/.build-cell-root" || :
      [ "$sentinel" = "$2" ] || fail "runtime root sentinel $3/.build-cell-root does not match the runtime prefix $2"
      shift 3 ;;
    wait-go)
      IFS= read -r go <&3 || go=
      [ "$go" = go ] || fail "the engine did not start the cell"
      shift ;;
    # $6: redirect_dir=off,metacopy=off as root (every change whole in the upper layer, where
    # the engine reads it back), userxattr without root (see overlayOptions in plan.ts).
    overlay)
      need 6 "$@"
      run mount -t overlay overlay -o "lowerdir=$2,upperdir=$3,workdir=$4,$6" "$5"
      shift 6 ;;
    overlay-ro)
      need 4 "$@"
      run mount -t overlay overlay -o "lowerdir=$2,$4" "$3"
      shift 4 ;;
    image)
      need 4 "$@"
      run mount -t erofs -o "$4" "$2" "$3"
      shift 4 ;;
    flatten-owners) need 3 "$@"; flatten_dir=$2 flatten_list=$3; shift 3 ;;
    bind) need 3 "$@"; run mount --bind "$2" "$3"; shift 3 ;;
    mounts) need 2 "$@"; run mount --all --fstab "$2"; shift 2 ;;
    tmpfs) need 3 "$@"; run mount -t tmpfs -o "$3" tmpfs "$2"; shift 3 ;;
    bind-ro)
      need 3 "$@"
      run mount --bind "$2" "$3"
      run mount -o remount,bind,ro "$3"
      shift 3 ;;
    proc)
      need 2 "$@"
      # Where the kernel refuses a fresh proc (a user namespace under a partly masked /proc),
      # bind the host's /proc instead: the cell then sees the host's processes, read-only.
      if ! mount -t proc -o nosuid,nodev,noexec proc "$2" 2>/dev/null; then
        run mount --rbind /proc "$2"
        run mount -o remount,bind,ro "$2"
      fi
      shift 2 ;;
    # Best effort: a private devpts instance for programs that want a pty.
    devpts) need 2 "$@"; mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$2" 2>/dev/null || :; shift 2 ;;
    binfmt-mount) need 2 "$@"; run mount -t binfmt_misc binfmt_misc "$2"; shift 2 ;;
    binfmt-register)
      need 5 "$@"
      [ ! -e "$2/$3" ] || fail "binfmt_misc rule $3 already exists"
      printf '%s' "$4" > "$2/register" 2>/dev/null || fail "cannot register the binfmt_misc rule $3 in $2"
      [ "$5" = global ] && global_rule="$2/$3"
      # Some registrars fail silently: read the rule back.
      grep -qx enabled "$2/$3" 2>/dev/null || fail "binfmt_misc rule $3 did not register"
      shift 5 ;;
    cgroup) need 2 "$@"; echo "$$" > "$2/cgroup.procs" 2>/dev/null || fail "cannot join cgroup $2"; shift 2 ;;
    loopback) if command -v ip >/dev/null; then run ip link set dev lo up; fi; shift ;;
    hostname)
      need 2 "$@"
      # The sysctl acts on this process's (new) UTS namespace; hostname(1) where it is not writable.
      { printf '%s' "$2" > /proc/sys/kernel/hostname; } 2>/dev/null || { ! command -v hostname >/dev/null || run hostname "$2"; }
      shift 2 ;;
    # Root cells run their command in a user namespace mapping every uid to itself: the cell's
    # root keeps file ownership semantics but has no capability over the host. The mounts above
    # were made by real root (privileged overlayfs semantics, e.g. directory renames) and are
    # locked in the new namespace; what follows runs inside it.
    enter-userns) need 4 "$@"; userns_proc=$2; unshare_bin=$3; shell_bin=$4; shift 4; userns=1; break ;;
    wait-map)
      # The outer helper writes the identity map from outside; wait for it (no fork per try).
      tries=0
      until IFS= read -r map < /proc/self/uid_map && [ -n "$map" ]; do
        tries=$((tries + 1)); [ "$tries" -lt 2000000 ] || fail "the user namespace was never mapped"
      done
      shift ;;
    exec) break ;;
    *) fail "internal: unknown operation $op" ;;
  esac
done
if [ -n "$userns" ]; then
  set -- "$unshare_bin" --user --mount -- "$shell_bin" "$0" --inner "$@"
else
[ "$1" = exec ] && [ "$#" -ge 10 ] || fail "internal: no exec operation"
# Host tools come by absolute path (no lookup, and after "env -i" the command's own PATH applies).
cwd=$2 cpu=$3 as=$4 nproc=$5 root=$6 env_bin=$7 prlimit_bin=$8 unshare_bin=$9
shift 9
ncmd=$#

# The command's environment, exactly as given: appended after the command, then rotated in front.
# Each entry is "N NAME=VALUE" followed by N more lines of the value (its newlines): builtins only.
set -- "$@" "$env_bin" -i --
while IFS= read -r entry <&3 && [ -n "$entry" ]; do
  more=${entry%% *} entry=${entry#* }
  case $more in ''|*[!0-9]*) fail "internal: bad environment entry" ;; esac
  while [ "$more" -gt 0 ]; do
    IFS= read -r line <&3 || fail "internal: truncated environment entry"
    entry="$entry
$line"
    more=$((more - 1))
  done
  set -- "$@" "$entry"
done
# prlimit only when a limit is set: one process less on the way to the command.
if [ "$cpu$as$nproc" != --- ]; then
  set -- "$@" "$prlimit_bin"
  [ "$cpu" = - ] || set -- "$@" "--cpu=$cpu:$cpu"
  [ "$as" = - ] || set -- "$@" "--as=$as:$as"
  [ "$nproc" = - ] || set -- "$@" "--nproc=$nproc:$nproc"
  set -- "$@" --
fi
set -- "$@" "$unshare_bin" "--root=$root" "--wd=$cwd" --
while [ "$ncmd" -gt 0 ]; do set -- "$@" "$1"; shift; ncmd=$((ncmd - 1)); done
# The inner helper has done its part: become the command.
[ -z "$inner" ] || exec "$@" 3<&- 4>&-
fi

# Stay PID 1 of the cell so the command is an ordinary process: it can signal itself and
# gets the usual signal semantics. Background jobs get /dev/null as stdin unless told otherwise.
exec 5<&0
if [ -n "$userns" ]; then
  # The inner helper still needs the control (3) and status (4) channels; it closes them itself.
  "$@" <&5 5<&- &
else
  "$@" <&5 5<&- 3<&- 4>&- &
fi
child=$!
exec 5<&-
if [ -n "$userns" ]; then
  # Map every uid and gid to itself once the child has its user namespace: only a process
  # outside it (real root, here) may write such a map.
  # $child is a PID of the cell's PID namespace: look it up in the cell's own proc.
  tries=0
  while [ "$userns_proc/$child/ns/user" -ef "$userns_proc/self/ns/user" ]; do
    kill -0 "$child" 2>/dev/null || break
    tries=$((tries + 1)); [ "$tries" -lt 100000 ] || break
  done
  printf '0 0 4294967295\n' > "$userns_proc/$child/uid_map" 2>/dev/null && printf '0 0 4294967295\n' > "$userns_proc/$child/gid_map" 2>/dev/null \
    || { kill -KILL "$child" 2>/dev/null; fail "cannot map the cell's user namespace"; }
fi
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
while :; do
  wait "$child" 2>/dev/null
  rc=$?
  kill -0 "$child" 2>/dev/null || break
done
unregister_global
# Nothing of the cell may run on while the engine copies exports out of it.
kill -KILL -1 2>/dev/null
if [ -n "$flatten_dir" ]; then
  # Files of other uids and gids (subordinate ids on the host) become the cell root's, i.e. the
  # user's, after their owners and modes are recorded; -xdev keeps out of the cell's mounts.
  find "$flatten_dir" -xdev \( ! -uid 0 -o ! -gid 0 \) -printf '%U %G %m %p\0' -exec chown -h 0:0 {} + > "$flatten_list" 2>/dev/null \
    || fail "cannot give the cell's files back to the user (find/chown in $flatten_dir failed)"
fi
# dash's job table tells an exit ("Done(N)") from a signal ("Killed", ...): the engine reads it.
{ printf 'exit %s\n' "$rc"; jobs; printf 'ready\n'; } >&4 2>/dev/null
# Keep the mount namespace alive until the engine has read the exports (it closes fd 3).
while IFS= read -r _ <&3; do :; done
exit "$rc"
