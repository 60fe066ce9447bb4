# Shared setup for scripts/run and scripts/test: numbered steps on the console, the installers' own
# output in .venv/install.log (its tail is printed when a step fails).
PYTHON_BIN="${PYTHON:-python3.11}"
SETUP_LOG=".venv/install.log"
SETUP_STEP=0
SETUP_STEPS="${SETUP_STEPS:-3}"

step() {
  # step MESSAGE: the next numbered setup step ("setup [2/3] installing Python packages ...").
  SETUP_STEP=$((SETUP_STEP + 1))
  echo "setup [$SETUP_STEP/$SETUP_STEPS] $*"
}

fail_with_log() {
  # fail_with_log MESSAGE: the installers' last lines, then stop.
  echo "setup failed: $*" >&2
  if [ -f "$SETUP_LOG" ]; then
    echo "---- last 40 lines of $SETUP_LOG ----" >&2
    tail -n 40 "$SETUP_LOG" >&2
    echo "----" >&2
  fi
  exit 1
}

_pip_progress() {
  # _pip_progress PID TOTAL LOG: while pip (PID) runs, report how many of the ~TOTAL pinned packages it
  # has handled so far (its "Collecting", "Processing" and "Requirement already satisfied" lines in LOG),
  # then that it is installing them. On a terminal one line is rewritten every second; otherwise (CI)
  # a line is printed every 15 s.
  local pid=$1 total=$2 log=$3 start=$SECONDS last=-1 tty=0 n line
  [ -t 1 ] && tty=1
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    n=$(grep -cE '^(Collecting|Processing|Requirement already satisfied)' "$log" 2>/dev/null || true)
    n=${n:-0}
    if [ "$n" -gt "$total" ]; then n=$total; fi
    if grep -q '^Installing collected packages' "$log" 2>/dev/null; then
      line="      $n of $total packages resolved (100 %), installing them ... $((SECONDS - start)) s"
    else
      line="      $n of $total packages resolved ($((n * 100 / total)) %) ... $((SECONDS - start)) s"
    fi
    if [ "$tty" = 1 ]; then
      printf '\r%-78s' "$line"
    elif [ $(((SECONDS - start) / 15)) -ne "$last" ]; then
      last=$(((SECONDS - start) / 15))
      echo "$line"
    fi
  done
  if [ "$tty" = 1 ]; then printf '\r%-78s\r' ""; fi
  return 0
}

_pip() {
  # _pip TOTAL ARGS...: pip with its own output (resolver notes, index warnings) in the log, progress
  # on the console. Returns pip's exit status.
  local total=$1 part=".venv/install.part.log" rc=0
  shift
  : >"$part"
  .venv/bin/python -m pip "$@" >"$part" 2>&1 &
  local pid=$!
  _pip_progress "$pid" "$total" "$part"
  wait "$pid" || rc=$?
  { echo "\$ pip $*"; cat "$part"; } >>"$SETUP_LOG"
  rm -f "$part"
  return "$rc"
}

setup_venv() {
  local started=$SECONDS
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv with $PYTHON_BIN ..."
    command -v "$PYTHON_BIN" >/dev/null 2>&1 \
      || fail_with_log "$PYTHON_BIN not found: install Python 3.11 or set PYTHON=/path/to/python3.11"
    "$PYTHON_BIN" -m venv .venv || fail_with_log "could not create .venv with $PYTHON_BIN"
  else
    step ".venv exists"
  fi
  local stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ]; then
    step "Python packages up to date (pyproject.toml + constraints.txt unchanged)"
    return 0
  fi
  : >"$SETUP_LOG"
  local total
  total=$(grep -cE '^[A-Za-z0-9]' constraints.txt || true)
  [ "${total:-0}" -gt 0 ] || total=100
  step "installing Python packages pinned by constraints.txt (first time: about 2 minutes; log: $SETUP_LOG) ..."
  { echo "\$ pip install --upgrade pip"; .venv/bin/python -m pip install --upgrade pip; } >>"$SETUP_LOG" 2>&1 \
    || fail_with_log "pip could not upgrade itself"
  _pip "$total" install -c constraints.txt -e '.[test]' || fail_with_log "pip install failed"
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "      installed in $((SECONDS - started)) s"
}

ensure_debian_packages() {
  # Installs the named Debian packages when their binaries are missing (PostgreSQL server, Chromium).
  local missing=()
  for pkg in "$@"; do
    case "$pkg" in
      postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql) ;;
      chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
      *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    step "Debian packages present: $*"
    return 0
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  step "installing Debian packages: ${missing[*]} (log: $SETUP_LOG) ..."
  echo "\$ apt-get install ${missing[*]}" >>"$SETUP_LOG"
  $sudo apt-get update -qq >>"$SETUP_LOG" 2>&1 || fail_with_log "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >>"$SETUP_LOG" 2>&1 \
    || fail_with_log "apt-get install ${missing[*]} failed"
}
