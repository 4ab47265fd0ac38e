#!/usr/bin/env bash
# End-to-end test of the Docker Compose lab (compose/reqresp.yml), without a
# terminal and without pulling any image:
#
#   1. build the image offline (scripts/docker-base.sh + docker/Dockerfile.offline)
#   2. run the tutorial's commands: up -d; the original lab's `python
#      server.py` and `python client.py`, verbatim, with two clients and a
#      3,000-byte message; tcpdump on br-reqresp and the capture profile; the
#      server; the client (scripted and from stdin); the same two clients and
#      long message with reqresp; the tickets race; stop the captures; down
#      the "Break it" faults (pause, kill, network disconnect, packet loss
#      through nsenter and iptables), the failing commands asserted by their
#      error text; `reqresp check` against python server.py (fails) and
#      reqresp server (passes)
#   3. check each capture with `reqresp analyze --format json`: handshake,
#      every request and response, teardown, between the two containers'
#      addresses; and with tshark and the Lua dissector
#   4. run the auto profile (the no-typing demo) and `reqresp lab` (the
#      no-Docker path)
#   5. bring up `reqresp lab --keep` and the Docker lab in both orders and
#      take each down: neither takes br-reqresp from the other
#   6. leave nothing behind, also on failure: `down -v --remove-orphans` in a
#      trap, then check that no container, network or volume of this run and
#      no br-reqresp bridge remains.
#
# The tutorial's commands (docs/tutorial.md, docs/tutorial.id.md) are run
# through `doc '<command as printed>'`: tests/e2e/compose.rs checks that every
# command in the docs appears here in that form, so the docs cannot drift.
# `doc` runs it in a scratch folder laid out like the repository, with only
# the changes a script needs (see translate below).
#
# Needs: root (tcpdump on the bridge), a Docker engine, Compose v2 or
# docker-compose 1.29, tcpdump, tshark, python3, debootstrap (first run only).
#
# Environment:
#   REQRESP_BIN          reqresp binary to package (default: cargo build --release)
#   REQRESP_E2E_KEEP=1   keep the scratch folder (captures, logs) on success too
#   REQRESP_E2E_TIMEOUT  limit in seconds for each step (default 180)
#
# The bridge name br-reqresp is fixed (that is the point of the lab), so only
# one lab can be up at a time on a machine: runs take a lock and wait (bounded)
# for a br-reqresp left by someone else (e.g. `reqresp lab`) to go away.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
step_timeout=${REQRESP_E2E_TIMEOUT:-180}
started=$SECONDS

say() { echo "compose-e2e: $*" >&2; }
step() { echo "== compose-e2e [$((SECONDS - started)) s]: $*" >&2; }
die() {
    echo "compose-e2e: FAILED: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "run as root: tcpdump on br-reqresp and debootstrap need it (sudo $0)"
for tool in docker tcpdump tshark python3 timeout flock; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
timeout 20 docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    die "neither 'docker compose' (v2) nor 'docker-compose' is installed"
fi
say "using $("${compose[@]}" version 2>/dev/null | head -n1)"

if [[ -n ${REQRESP_BIN:-} ]]; then
    bin=$(realpath "$REQRESP_BIN")
else
    step "cargo build --release"
    (cd "$repo" && cargo build --release --quiet)
    bin=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/reqresp
fi
[[ -x $bin ]] || die "no reqresp binary at $bin"

# One lab at a time: the bridge name is fixed.
exec 9>/run/lock/reqresp-br-reqresp.lock
flock -w 600 9 || die "another run held /run/lock/reqresp-br-reqresp.lock for 10 minutes"

# Waits (at most 120 s) until no br-reqresp exists. Docker would silently
# attach the containers to someone else's bridge of that name (`reqresp lab`
# makes one too, and picks br-reqresp-1 when Docker's exists).
wait_bridge_free() {
    for _ in $(seq 600); do
        ip link show br-reqresp >/dev/null 2>&1 || return 0
        sleep 0.2
    done
    die "a br-reqresp bridge exists and did not go away in 120 s (another lab up? 'docker compose -f compose/reqresp.yml down' or 'ip link del br-reqresp')"
}

# ---------------------------------------------------------------- scratch
tmp=$(mktemp -d /tmp/reqresp-e2e.XXXXXX)
work=$tmp/work # plays the repository root for the tutorial's commands
mkdir -p "$work/captures" "$work/target/release" "$work/contrib" "$tmp/bin" "$tmp/home"
ln -s "$repo/compose" "$work/compose"
ln -s "$repo/contrib/wireshark" "$work/contrib/wireshark"
# Copied, not linked: the image build reads it, and a build context may not
# reach outside itself through a link.
cp -r "$repo/contrib/lab-python" "$work/contrib/lab-python"
ln -s "$repo/scripts" "$work/scripts"
ln -s "$bin" "$tmp/bin/reqresp"

project=reqresp-e2e-$$
image=reqresp-e2e:$$
export COMPOSE_PROJECT_NAME=$project # instead of -p, so the commands stay as printed
export REQRESP_IMAGE=$image
export REQRESP_CAPTURES=$work/captures
export PATH=$tmp/bin:$PATH # `reqresp` on the host is the binary under test
export HOME=$tmp/home      # the dissector install step writes under ~
bg_pids=()
image_id=
status=fail

# Every container, network and volume of this run, by compose's project label.
leftovers() {
    local filter=label=com.docker.compose.project=$project
    docker ps -aq --filter "$filter"
    docker network ls -q --filter "$filter"
    docker volume ls -q --filter "$filter"
    docker ps -aq --filter "name=$project"
    docker network ls -q --filter "name=$project"
    if [[ -n $image_id ]] && docker image inspect "$image_id" >/dev/null 2>&1; then
        echo "image $image_id"
    fi
    # A Docker network still owning br-reqresp (a br-reqresp bridge alone may
    # belong to `reqresp lab` running at the same time).
    local net
    for net in $(docker network ls -q); do
        docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$net" 2>/dev/null |
            grep -qx br-reqresp && echo "network $net (br-reqresp)"
    done
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    for pid in "${bg_pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    say "cleaning up: down -v --remove-orphans"
    (cd "$work" && timeout 120 "${compose[@]}" -f compose/reqresp.yml --profile capture --profile auto \
        down -v --remove-orphans --timeout 5) >"$tmp/down.log" 2>&1 ||
        { cat "$tmp/down.log" >&2; rc=1; }
    # By id too: when something still held the image as the tag went, the
    # tag alone leaves it behind, dangling.
    docker image rm "$image" ${image_id:+"$image_id"} >/dev/null 2>&1
    local left
    left=$(leftovers)
    if [[ -n $left ]]; then
        say "FAILED: left behind after down: $(echo "$left" | tr '\n' ' ')"
        rc=1
    fi
    if [[ $rc == 0 && $status == ok && ${REQRESP_E2E_KEEP:-0} != 1 ]]; then
        rm -rf "$tmp"
    else
        say "captures and logs kept in $tmp"
    fi
    if [[ $rc == 0 ]]; then
        step "PASSED in $((SECONDS - started)) s; nothing left behind"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tutorial commands
# A tutorial command becomes a script command with only these changes:
#   - `docker compose` becomes docker-compose when Compose v2 is missing;
#   - `exec` gets -T: there is no terminal;
#   - `sudo` is dropped: this runs as root;
#   - `compose_lab`, the lab network's name when Compose names the project
#     after the compose file's folder, becomes this run's `<project>_lab`;
#   - `docker compose` inside `$(...)` is translated too;
#   - `reqresp:latest` (the image) becomes this run's image;
#   - `cargo build --release` builds in the repository (the scratch folder
#     has no sources) and is skipped when REQRESP_BIN names the binary.
translate() {
    local -a words out
    # For `$(docker compose ...)` inside the command, run by the eval below
    # (translate runs in a subshell: the function goes with it).
    docker() {
        if [[ ${1:-} == compose ]]; then
            shift
            command "${compose[@]}" "$@"
        else
            command docker "$@"
        fi
    }
    eval "words=($1)"
    if [[ ${words[0]} == sudo ]]; then
        words=("${words[@]:1}")
    fi
    if [[ ${words[*]} == "cargo build --release" ]]; then
        if [[ -n ${REQRESP_BIN:-} ]]; then
            printf '%s\0' true
        else
            printf '%s\0' cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
        fi
        return
    fi
    if [[ ${words[0]} == docker && ${words[1]} == compose ]]; then
        out=("${compose[@]}")
        words=("${words[@]:2}")
    fi
    local w
    for w in "${words[@]}"; do
        case $w in
        exec) out+=(exec -T) ;;
        reqresp:latest) out+=("$image") ;;
        compose_lab) out+=("${project}_lab") ;;
        *) out+=("$w") ;;
        esac
    done
    printf '%s\0' "${out[@]}"
}

# doc 'COMMAND': runs a tutorial command in the foreground, stdout to stdout.
doc() {
    local -a argv
    mapfile -d '' argv < <(cd "$work" && translate "$1")
    say "\$ $1"
    (cd "$work" && timeout "$step_timeout" "${argv[@]}")
}

# doc_fails 'COMMAND' TEXT...: runs a tutorial command that must fail (a fault
# is on) and checks that its output holds each TEXT; the output is in $out.
doc_fails() {
    local command=$1 text
    shift
    if out=$(doc "$command" 2>&1); then
        die "\`$command\` should fail, but it succeeded and printed:
$out"
    fi
    for text in "$@"; do
        expect_in "\`$command\` (failing as it should)" "$text" "$out"
    done
}

# doc_bg LOG 'COMMAND': starts a tutorial command in the background (the
# tutorial runs it in its own terminal), output to $tmp/LOG; PID in bg_pid.
doc_bg() {
    local -a argv
    mapfile -d '' argv < <(cd "$work" && translate "$2")
    say "\$ $2 &    (output in $tmp/$1)"
    (cd "$work" && exec "${argv[@]}") </dev/null >"$tmp/$1" 2>&1 &
    bg_pid=$!
    bg_pids+=("$bg_pid")
}

# wait_for LOG PATTERN SECONDS WHAT: waits for a line in a background log;
# fails with the log when the process ends first or time runs out.
wait_for() {
    local log=$tmp/$1 pattern=$2 limit=$3 what=$4 pid=$bg_pid
    local deadline=$((SECONDS + limit))
    until grep -q -- "$pattern" "$log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            sed 's/^/    /' "$log" >&2
            die "$what ended before printing '$pattern' (its output is above)"
        fi
        ((SECONDS < deadline)) || {
            sed 's/^/    /' "$log" >&2
            die "$what did not print '$pattern' within $limit s"
        }
        sleep 0.2
    done
}

# doc_held LOG 'COMMAND': like doc_bg, but its stdin stays open (a student
# who has not typed anything yet) until release_held closes it (Ctrl-D).
doc_held() {
    local -a argv
    mapfile -d '' argv < <(cd "$work" && translate "$2")
    say "\$ $2 &    (stdin held open; output in $tmp/$1)"
    rm -f "$tmp/hold"
    mkfifo "$tmp/hold"
    sleep "$step_timeout" >"$tmp/hold" &
    hold_pid=$!
    bg_pids+=("$hold_pid")
    (cd "$work" && exec "${argv[@]}") <"$tmp/hold" >"$tmp/$1" 2>&1 &
    bg_pid=$!
    bg_pids+=("$bg_pid")
}

# release_held: ends the held stdin (the client reads EOF and leaves).
release_held() {
    kill "$hold_pid" 2>/dev/null || true
    wait "$hold_pid" 2>/dev/null || true
}

# wait_exit PID WHAT SECONDS: waits for a background command to end by itself.
wait_exit() {
    local pid=$1 what=$2 limit=$3
    local deadline=$((SECONDS + limit))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "$what did not end within $limit s"
        sleep 0.2
    done
    wait "$pid" 2>/dev/null || true
}

# expect_in WHAT PATTERN TEXT: TEXT has a line containing PATTERN.
expect_in() {
    grep -qF -- "$2" <<<"$3" || die "$1 did not print '$2'; it printed:
$3"
    say "ok: $1"
}

# stop_bg PID WHAT: SIGINT (Ctrl-C, as in the tutorial), then waits at most 10 s.
stop_bg() {
    local pid=$1 what=$2
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || {
            wait "$pid" 2>/dev/null || true
            return 0
        }
        sleep 0.2
    done
    die "$what did not stop within 10 s of SIGINT"
}

# container_ip SERVICE: the service's address on the lab network.
container_ip() {
    local id
    id=$(cd "$work" && "${compose[@]}" -f compose/reqresp.yml ps -q "$1")
    [[ -n $id ]] || die "no container for $1"
    docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id"
}

# expect_output WHAT EXPECTED ACTUAL
expect_output() {
    [[ $3 == "$2" ]] || die "$1 printed:
$3
expected:
$2"
    say "ok: $1"
}

# check_analysis PCAP.json: asserts what `reqresp analyze --format json` found
# against the exchanges in $expected (JSON) between $client_ip and $server_ip.
check_analysis() {
    python3 - "$1" "$client_ip" "$server_ip" "$expected" <<'PY'
import json, sys

path, client_ip, server_ip, expected = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
analysis = json.load(open(path))
def fail(msg):
    sys.exit(f"{path}: {msg}\n{json.dumps(analysis, indent=2)[:4000]}")

if analysis["warnings"]:
    fail(f"warnings: {analysis['warnings']}")
conns = [c for c in analysis["connections"] if c["server"] == f"{server_ip}:2222"]
if len(conns) != len(expected):
    fail(f"expected {len(expected)} connections to {server_ip}:2222, found {len(conns)}")
for n, (conn, pairs) in enumerate(zip(conns, expected), 1):
    where = f"connection {n} ({conn['client']} -> {conn['server']})"
    if conn["client"].rsplit(":", 1)[0] != client_ip:
        fail(f"{where}: client is not the client container {client_ip}")
    hs = conn["handshake"]
    if not hs or hs.get("syn_ack") is None or hs.get("ack") is None:
        fail(f"{where}: no complete three-way handshake: {hs}")
    if conn["gaps"]:
        fail(f"{where}: bytes missing from the capture: {conn['gaps']}")
    got = [(x["request_preview"], x["response_preview"]) for x in conn["exchanges"]]
    if got != [tuple(p) for p in pairs]:
        fail(f"{where}: exchanges {got}, expected {pairs}")
    for x in conn["exchanges"]:
        if x["latency_us"] is None or x["latency_us"] < 0:
            fail(f"{where}: exchange without latency: {x}")
    sent = sum(len(q.encode()) + 1 for q, _ in pairs)
    if conn["bytes_client_to_server"] != sent:
        fail(f"{where}: {conn['bytes_client_to_server']} bytes client to server, expected {sent} (lines)")
    close = conn["close"]
    if not close or close["kind"] != "fin" or close["initiator"] != "client":
        fail(f"{where}: expected an orderly close (FIN) started by the client, got {close}")
    if {e["from"] for e in close["events"] if e["kind"] == "fin"} != {"client", "server"}:
        fail(f"{where}: expected a FIN from each side, got {close['events']}")
print(f"ok: {path}: {len(conns)} connections {client_ip} -> {server_ip}:2222 with handshake, "
      f"{sum(len(p) for p in expected)} exchanges and FIN teardown")
PY
}

# check_dissector FILE: asserts tshark's rows "src dst role text" from the
# Lua dissector against $expected.
check_dissector() {
    python3 - "$1" "$client_ip" "$server_ip" "$expected" <<'PY'
import json, sys

path, client_ip, server_ip, expected = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
# tshark joins the values of a frame with several messages with ",".
rows = []
for line in open(path).read().splitlines():
    src, dst, roles, texts = line.split("\t")
    roles, texts = roles.split(","), texts.split(",")
    if len(roles) != len(texts):
        sys.exit(f"tshark row with {len(roles)} roles but {len(texts)} texts: {line!r}")
    rows += [[src, dst, role, text] for role, text in zip(roles, texts)]
want = []
for pairs in expected:
    for request, response in pairs:
        want.append([client_ip, server_ip, "request", request])
        want.append([server_ip, client_ip, "response", response])
if rows != want:
    sys.exit(f"tshark with the dissector showed\n{rows}\nexpected\n{want}")
print(f"ok: the dissector shows {len(want)} messages with role and text")
PY
}

# ---------------------------------------------------------------- image
step "image: base (cached) and the offline image, as the tutorial builds them"
# $work gets what the build reads: the Dockerfiles, .dockerignore and the
# binary where `cargo build --release` leaves it (a stripped copy).
cp -r "$repo/docker" "$work/docker"
cp "$repo/.dockerignore" "$work/.dockerignore"
cp "$bin" "$work/target/release/reqresp"
strip "$work/target/release/reqresp" 2>/dev/null || true
doc 'sudo apt-get install -y debootstrap' >/dev/null || die "apt-get install debootstrap failed"
doc 'sudo scripts/docker-base.sh'
doc 'cargo build --release'
doc 'docker build --pull=false -f docker/Dockerfile.offline -t reqresp:latest .' >/dev/null ||
    die "docker build of docker/Dockerfile.offline failed"
image_id=$(docker image inspect -f '{{.Id}}' "$image")
docker run --rm "$image" reqresp --version >/dev/null ||
    die "the image's reqresp does not run (is the host's glibc newer than bookworm's?)"
say "image size: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}')"

# ---------------------------------------------------------------- the five steps
step "1. up"
# If another lab made br-reqresp between the wait and `up` (a small window),
# Docker used that bridge: more than our two containers' veths are on it.
# Take the lab down (Docker leaves a bridge it did not make) and try again.
for attempt in 1 2 3; do
    wait_bridge_free
    doc 'docker compose -f compose/reqresp.yml up -d'
    members=$(ip -o link show master br-reqresp | wc -l)
    [[ $members == 2 ]] && break
    say "br-reqresp has $members ports instead of 2: another lab made it at the same time; retrying"
    (cd "$work" && timeout 120 "${compose[@]}" -f compose/reqresp.yml down) >/dev/null 2>&1
    ((attempt < 3)) || die "br-reqresp was taken by another lab three times"
done
server_ip=$(container_ip reqresp-server)
client_ip=$(container_ip reqresp-client)
say "reqresp-server is $server_ip, reqresp-client is $client_ip"

# A message of 3,091 bytes: the numbers 1 to 800, joined by +. The host's shell makes it,
# as a student's does.
long=$(seq -s + 800)

step "the original lab's steps 3 and 4, verbatim: python server.py, python client.py"
doc_bg pyserver.log 'docker compose -f compose/reqresp.yml exec reqresp-server python server.py'
pyserver_pid=$bg_pid
wait_for pyserver.log 'Server listening on 0.0.0.0:2222' 30 'python server.py'
out=$(printf 'Hello, server!\nbye\n' |
    doc 'docker compose -f compose/reqresp.yml exec reqresp-client python client.py') ||
    die "python client.py failed: $out"
expect_in "python client.py" 'Received: Echo: Hello, server!' "$out"
wait_exit "$pyserver_pid" "python server.py (it serves one client)" 20
expect_in "python server.py" 'Client left, server stops' "$(cat "$tmp/pyserver.log")"

step "the original server with two clients: the second gets no answer"
doc_bg pyserver2.log 'docker compose -f compose/reqresp.yml exec reqresp-server python server.py'
pyserver_pid=$bg_pid
wait_for pyserver2.log 'Server listening on' 30 'python server.py'
doc_held pyclient1.log 'docker compose -f compose/reqresp.yml exec reqresp-client python client.py'
wait_for pyclient1.log 'Connected to reqresp-server:2222' 30 'the first python client.py'
if out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client --framing raw --timeout 3 reqresp-server:2222 "second client"' 2>&1); then
    die "the second client got an answer from the one-client server: $out"
fi
expect_in "the second client of python server.py" 'within 3 s' "$out"
expect_in "the second client of python server.py" 'no response from ' "$out"
release_held
wait_exit "$pyserver_pid" "python server.py" 20

step "the original programs with a 3,091-byte message: cut into recv(1024) pieces"
doc_bg pyserver3.log 'docker compose -f compose/reqresp.yml exec reqresp-server python server.py'
pyserver_pid=$bg_pid
wait_for pyserver3.log 'Server listening on' 30 'python server.py'
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client python client.py "$(seq -s + 800)"' </dev/null) ||
    die "python client.py with the long message failed: $out"
got=$(grep '^Received: ' <<<"$out")
[[ $got == "Received: Echo: 1+2+3+"* && ${#got} -le $((10 + 1024)) ]] ||
    die "python client.py should print only the first recv(1024) of the answer, got ${#got} characters: ${got:0:80}..."
say "ok: python client.py printed ${#got} characters of a 3,097-byte answer"
wait_exit "$pyserver_pid" "python server.py" 20
reads=$(grep -c '^Received: ' "$tmp/pyserver3.log" || true)
((reads >= 2)) || die "python server.py read the 3,091-byte message in $reads recv calls, expected at least 2"
say "ok: python server.py took one message as $reads messages (recv(1024) pieces)"

step "2. capture on br-reqresp with tcpdump, and with the capture profile"
doc_bg tcpdump.log 'sudo tcpdump -nvi br-reqresp -w reqresp.pcap'
tcpdump_pid=$bg_pid
wait_for tcpdump.log 'listening on br-reqresp' 20 tcpdump
doc 'docker compose -f compose/reqresp.yml --profile capture up -d'
# `reqresp capture` says "capturing on eth0 ..." once libpcap is capturing.
capture_id=$(cd "$work" && "${compose[@]}" -f compose/reqresp.yml ps -q reqresp-capture)
deadline=$((SECONDS + 30))
until docker logs "$capture_id" 2>&1 | grep -q 'capturing on eth0'; do
    running=$(docker inspect -f '{{.State.Running}}' "$capture_id" 2>/dev/null || echo false)
    if [[ $running != true ]] || ((SECONDS > deadline)); then
        docker logs "$capture_id" 2>&1 | sed 's/^/    /' >&2 || true
        die "the capture profile did not start capturing (running: $running; its output is above)"
    fi
    sleep 0.2
done
docker logs "$capture_id" 2>&1 | grep -q 'stop it with: docker compose -f compose/reqresp.yml stop reqresp-capture' ||
    die "the capture container's log does not say how to stop it: $(docker logs "$capture_id" 2>&1 | head -3)"
say "ok: the capture container says how to stop it"

step "the live view: the watch profile"
# Not a terminal here, so watch writes JSON lines (a terminal gets the ladder).
doc_bg watch.log 'docker compose -f compose/reqresp.yml run --rm reqresp-watch'
watch_pid=$bg_pid
wait_for watch.log 'reqresp watch: capturing on eth0' 60 'reqresp watch in the watch profile'

step "3. server"
doc_bg server.log 'docker compose -f compose/reqresp.yml exec reqresp-server reqresp server'
server_pid=$bg_pid
wait_for server.log 'listening on ' 30 'reqresp server in reqresp-server'

step "4. client: scripted, then reading stdin"
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222 hello world') ||
    die "the scripted client failed (its error is above)"
expect_output "the scripted client" $'Echo: hello\nEcho: world' "$out"
out=$(printf 'apa kabar?\nbye\n' |
    doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222') ||
    die "the client reading stdin failed (its error is above)"
expect_output "the client reading stdin" $'Echo: apa kabar?\nEcho: bye' "$out"
expected='[[["hello", "Echo: hello"], ["world", "Echo: world"]],
           [["apa kabar?", "Echo: apa kabar?"], ["bye", "Echo: bye"]]]'

step "stop the captures"
# libpcap hands packets over in blocks (up to 1 s late); let the last ones in.
sleep 2
for line in '"response_preview":"Echo: hello"' '"response_preview":"Echo: bye"' '"event":"connection_closed"'; do
    grep -q -- "$line" "$tmp/watch.log" || {
        sed 's/^/    /' "$tmp/watch.log" >&2
        die "the watch profile did not show $line (its output is above)"
    }
done
# Ctrl-C in a terminal reaches watch through the TTY; here there is none, and
# Compose 1.29's `run` does not pass a SIGINT on: send it to the container,
# whose init hands it to watch, which prints its summary and exits.
watch_ctr=$(docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=reqresp-watch")
[[ -n $watch_ctr ]] || die "no container for reqresp-watch"
docker kill --signal INT $watch_ctr >/dev/null
for _ in $(seq 50); do
    kill -0 "$watch_pid" 2>/dev/null || break
    sleep 0.2
done
stop_bg "$watch_pid" "reqresp watch"
grep -q 'exchanges    4' "$tmp/watch.log" || die "reqresp watch's summary does not count 4 exchanges: $(tail -12 "$tmp/watch.log")"
say "ok: the watch profile showed both clients' exchanges live"
stop_bg "$tcpdump_pid" tcpdump
doc 'docker compose -f compose/reqresp.yml stop reqresp-capture'

step "the same two clients and long message with reqresp server"
doc_held rclient1.log 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222'
# The held client is connected once the server logs its connection.
sleep 1
kill -0 "$bg_pid" 2>/dev/null || die "the first reqresp client ended early: $(cat "$tmp/rclient1.log")"
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222 "second client"') ||
    die "the second client got no answer from reqresp server: $out"
expect_output "the second client of reqresp server" 'Echo: second client' "$out"
release_held
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222 "$(seq -s + 800)"') ||
    die "the long message failed: $out"
expect_output "reqresp client with the 3,091-byte message" "Echo: $long" "$out"

step "the tickets race: 8 clients, 5 tickets"
doc_bg tickets.log 'docker compose -f compose/reqresp.yml exec reqresp-server reqresp server --service tickets --tickets 5 --listen 0.0.0.0:2223'
wait_for tickets.log 'listening on ' 30 'the tickets server'
if out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp bench reqresp-server:2223 --connections 8 --requests 40 --message "book ticket" --expect Booked' 2>&1); then
    die "bench should report the 35 answers that were not bookings: $out"
fi
expect_in "bench against the tickets server" '35 mismatches' "$out"
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2223 "book ticket"') ||
    die "the tickets client failed: $out"
expect_output "a client after the race" 'Sorry, no tickets left' "$out"

# ---------------------------------------------------------------- break it
# The tutorials' "Break it" section, with the server of step 3 running. The
# captures are stopped: their checks above count the exchanges of steps 3-4.
step "break it: a frozen server (pause)"
doc 'docker compose -f compose/reqresp.yml pause reqresp-server'
doc_fails 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222 "are you there?"' \
    'no response from 10.222.22.' ':2222 within 5 s'
doc 'docker compose -f compose/reqresp.yml unpause reqresp-server'
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222 hello world') ||
    die "the client after unpause failed (its error is above)"
expect_output "the client after unpause" $'Echo: hello\nEcho: world' "$out"

step "break it: a crashed host (kill, start)"
doc 'docker compose -f compose/reqresp.yml kill reqresp-server'
wait_exit "$server_pid" "the step 3 server's docker compose exec, after kill" 30
# Docker's DNS forgets a stopped container's name: the lookup fails first.
doc_fails 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client --timeout 3 reqresp-server:2222 "hello?"' \
    'cannot resolve reqresp-server:2222'
doc 'docker compose -f compose/reqresp.yml start reqresp-server'

step "is your server correct? reqresp check against the original python server.py"
# The restarted container runs no server yet: the original one first.
doc_bg pycheck.log 'docker compose -f compose/reqresp.yml exec reqresp-server python server.py'
pyserver_pid=$bg_pid
wait_for pycheck.log 'Server listening on' 30 'python server.py'
doc_fails 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp check reqresp-server:2222' \
    'reqresp check reqresp-server:2222' 'sequential  FAIL' 'large       FAIL' \
    'does it exit after one client?'
printf '%s\n' "$out" | sed -n '1,/^15 cases/p' >&2
wait_exit "$pyserver_pid" "python server.py (it serves one client)" 20

step "is your server correct? reqresp check against reqresp server (step 3 again)"
doc_bg server2.log 'docker compose -f compose/reqresp.yml exec reqresp-server reqresp server'
wait_for server2.log 'listening on ' 30 'reqresp server in the restarted reqresp-server'
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp check reqresp-server:2222' 2>&1) ||
    die "reqresp check against reqresp server failed:
$out"
expect_in "reqresp check against reqresp server" ' 0 FAIL' "$out"
printf '%s\n' "$out" | sed -n '1,/^15 cases/p' >&2

step "break it: a cut cable (network disconnect, connect)"
doc 'docker network disconnect compose_lab $(docker compose -f compose/reqresp.yml ps -q reqresp-client)'
# Docker's DNS is reached through the lab network too: no answer at all.
doc_fails 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client --timeout 3 reqresp-server:2222 "anyone?"' \
    'cannot resolve reqresp-server:2222: no answer from the resolver within 3 s'
doc 'docker network connect compose_lab $(docker compose -f compose/reqresp.yml ps -q reqresp-client)'
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client reqresp-server:2222 hello world') ||
    die "the client after network connect failed (its error is above)"
expect_output "the client after network connect" $'Echo: hello\nEcho: world' "$out"

step "break it: lost packets (iptables in the server's namespace through nsenter)"
doc 'sudo nsenter -n -t $(docker inspect --format {{.State.Pid}} $(docker compose -f compose/reqresp.yml ps -q reqresp-server)) iptables -A INPUT -p tcp --dport 2222 -m statistic --mode random --probability 0.2 -j DROP'
out=$(doc 'docker compose -f compose/reqresp.yml exec reqresp-client reqresp client --timeout 10 reqresp-server:2222 one two three four five six seven eight') ||
    die "the client under 20% loss failed: $out"
expect_output "the client under 20% loss" $'Echo: one\nEcho: two\nEcho: three\nEcho: four\nEcho: five\nEcho: six\nEcho: seven\nEcho: eight' "$out"
doc 'sudo nsenter -n -t $(docker inspect --format {{.State.Pid}} $(docker compose -f compose/reqresp.yml ps -q reqresp-server)) iptables -D INPUT -p tcp --dport 2222 -m statistic --mode random --probability 0.2 -j DROP'

step "5. down"
doc 'docker compose -f compose/reqresp.yml down'

# ---------------------------------------------------------------- analysis
step "analyze the tcpdump capture"
doc 'reqresp analyze reqresp.pcap' || die "reqresp analyze failed (its error is above)"
doc 'reqresp analyze reqresp.pcap --format json' >"$tmp/tcpdump.json" || die "reqresp analyze failed"
check_analysis "$tmp/tcpdump.json"

step "analyze the capture profile's capture"
doc 'reqresp analyze captures/reqresp.pcap --format json' >"$tmp/profile.json" || die "reqresp analyze failed"
check_analysis "$tmp/profile.json"
doc 'docker run --rm -v "$PWD/captures:/captures" reqresp:latest reqresp analyze /captures/reqresp.pcap' \
    >"$tmp/in-container.txt" || die "reqresp analyze in the image failed"
grep -q 'Echo: apa kabar?' "$tmp/in-container.txt" ||
    die "reqresp analyze in the image did not show the exchanges: $(cat "$tmp/in-container.txt")"

step "Wireshark dissector on both captures"
doc 'tshark -X lua_script:contrib/wireshark/reqresp.lua -r reqresp.pcap -Y reqresp -T fields -e ip.src -e ip.dst -e reqresp.role -e reqresp.text' \
    >"$tmp/tshark.txt" || die "tshark failed (its error is above)"
check_dissector "$tmp/tshark.txt"
doc 'mkdir -p ~/.local/lib/wireshark/plugins'
doc 'cp contrib/wireshark/reqresp.lua ~/.local/lib/wireshark/plugins/'
doc 'tshark -r captures/reqresp.pcap -Y reqresp -T fields -e ip.src -e ip.dst -e reqresp.role -e reqresp.text' \
    >"$tmp/tshark-installed.txt" || die "tshark failed (its error is above)"
check_dissector "$tmp/tshark-installed.txt"

# ---------------------------------------------------------------- auto profile
step "the auto profile (no typing)"
wait_bridge_free
out=$(doc 'docker compose -f compose/reqresp.yml --profile auto up --exit-code-from reqresp-auto-client') ||
    die "the auto profile failed: $out"
for line in 'Echo: hello' 'Echo: apa kabar?' 'Echo: bye'; do
    grep -q -- "$line" <<<"$out" || die "the auto profile's client did not print '$line':
$out"
done
say "ok: the auto profile's client got its three responses"
doc 'docker compose -f compose/reqresp.yml --profile auto down'

# ---------------------------------------------------------------- the lab without Docker
step "reqresp lab, the no-Docker path"
out=$(doc 'sudo reqresp lab') || die "reqresp lab failed: $out"
expect_in "reqresp lab" 'Echo: Hello, server!' "$out"
out=$(doc 'sudo reqresp lab --service tickets') || die "reqresp lab --service tickets failed: $out"
expect_in "reqresp lab --service tickets" 'Sorry, no tickets left' "$out"
out=$(doc 'sudo reqresp lab -m "book ticket" -m "$(seq -s + 800)"') ||
    die "reqresp lab with a long message failed: $out"
out=$(doc 'reqresp analyze reqresp-lab/latest/reqresp.pcap') || die "analyze of the lab's capture failed"
expect_in "the lab's latest capture" 'Echo: book ticket' "$out"
[[ $(find "$work/reqresp-lab" -mindepth 1 -maxdepth 1 -not -name '.*' | wc -l) == 4 ]] ||
    die "reqresp-lab/ should hold three runs and latest: $(ls -la "$work/reqresp-lab")"

# ---------------------------------------------------------------- both labs, both orders
# Needs br-reqresp for `reqresp lab` in the second order, so this run's lock
# on the name is let go and taken back after.
lab_down() {
    timeout "$step_timeout" reqresp lab --down 2>&1 || die "reqresp lab --down failed"
}
checks=0
docker_lab_answers() { # the containers still reach each other
    local out
    checks=$((checks + 1))
    doc_bg "check-server-$checks.log" 'docker compose -f compose/reqresp.yml exec reqresp-server python server.py'
    wait_for "check-server-$checks.log" 'Server listening on' 30 "python server.py ($1)"
    out=$(timeout 30 "${compose[@]}" -f "$work/compose/reqresp.yml" exec -T reqresp-client \
        reqresp client --framing raw reqresp-server:2222 ping 2>&1) ||
        die "$1: the Docker lab's client cannot reach its server: $out"
    [[ $out == 'Echo: ping' ]] || die "$1: unexpected answer $out"
    say "ok: the Docker lab works $1"
}

step "both labs, Docker first: reqresp lab takes another bridge"
(cd "$work" && timeout 120 "${compose[@]}" -f compose/reqresp.yml up -d) >/dev/null 2>&1 || die "up failed"
out=$(timeout "$step_timeout" reqresp lab --keep --out "$tmp/lab-keep" 2>&1) || die "reqresp lab --keep failed: $out"
bridge=$(sed -n 's/^  bridge *\(br-reqresp[-0-9]*\) .*/\1/p' <<<"$out")
[[ -n $bridge && $bridge != br-reqresp ]] || die "reqresp lab used '$bridge' while the Docker lab holds br-reqresp:
$out"
say "ok: reqresp lab took $bridge beside the Docker lab's br-reqresp"
out=$(lab_down)
expect_in "reqresp lab --down (Docker first)" "removed $bridge" "$out"
docker_lab_answers "after reqresp lab --down"
(cd "$work" && timeout 120 "${compose[@]}" -f compose/reqresp.yml down) >/dev/null 2>&1 || die "down failed"

step "both labs, reqresp lab first: --down leaves the bridge Docker attached to"
flock -u 9
for attempt in 1 2 3; do
    wait_bridge_free
    out=$(timeout "$step_timeout" reqresp lab --keep --out "$tmp/lab-keep" 2>&1) || die "reqresp lab --keep failed: $out"
    grep -q '^  bridge *br-reqresp ' <<<"$out" && break
    # Someone else (a test) had br-reqresp: give this one back and retry.
    lab_down >/dev/null
    ((attempt < 3)) || die "reqresp lab could not get br-reqresp three times"
done
(cd "$work" && timeout 120 "${compose[@]}" -f compose/reqresp.yml up -d) >/dev/null 2>&1 || die "up failed"
docker_lab_answers "on the bridge reqresp lab made"
out=$(lab_down)
expect_in "reqresp lab --down (lab first)" "left the bridge br-reqresp in place" "$out"
ip link show br-reqresp >/dev/null 2>&1 || die "reqresp lab --down deleted br-reqresp from under the Docker lab"
docker_lab_answers "after reqresp lab --down"
(cd "$work" && timeout 120 "${compose[@]}" -f compose/reqresp.yml down) >/dev/null 2>&1 || die "down failed"
out=$(lab_down)
expect_in "reqresp lab --down after the Docker lab is down" "removed br-reqresp" "$out"
! ip link show br-reqresp >/dev/null 2>&1 || die "br-reqresp is still there after both labs are down"
flock -w 600 9 || die "could not take the lock on br-reqresp back"

status=ok
