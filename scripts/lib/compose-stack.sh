# shellcheck shell=bash disable=SC2154 # run_dir, project, bench_bin, summary: the caller's
# What scripts/compose-test.sh asks of the running stack: docker compose
# with a log, health, the databases in their volumes, the Prometheus
# endpoints, and bench verify. Sourced after log, note, pass, fail and
# secs_since; PROJECT is the compose project (its volumes: PROJECT_NAME).

# compose LOG ARGS...: docker compose ARGS, its output in LOG; on failure
# its tail and the error, then exit.
compose() {
    local out=$run_dir/$1
    shift
    docker compose "$@" >>"$out" 2>&1 && return
    tail -40 "$out" >&2 && docker compose logs --tail 30 >&2 || true
    log "error: docker compose $* failed (log: $out)" && exit 1
}
metric() { # metric PORT NAME: the value, or empty when the endpoint does not answer
    curl -s --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v n="$2" '$1 == n { printf "%.0f", $2; exit }'
}
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(docker compose ps -q "$1")" 2>/dev/null; }
wait_healthy() { # wait_healthy SERVICE TIMEOUT
    local i
    for ((i = 0; i < $2; i++)); do
        [[ "$(health "$1")" == healthy ]] && return 0
        sleep 1
    done
    log "error: $1 is not healthy after $2 s ($(health "$1"))"
    docker compose logs --tail 20 "$1" >&2
    return 1
}
consumers_healthy() { # consumers_healthy TIMEOUT [SINCE_MS]
    local s
    for s in consumer-pull consumer-push; do
        if ! wait_healthy "$s" "$1"; then
            failures=$((failures + 1))
        elif [[ -n "${2:-}" ]]; then
            note "$s healthy $(secs_since "$2") s after up (its healthcheck: --ready-file written, metrics answering)"
        fi
    done
}
volume_dir() { docker volume inspect -f '{{.Mountpoint}}' "${project}_$1"; }
db_path() { echo "$(volume_dir "$1-db")/$1.db"; }
# rows MODEL: the events in MODEL's database (0 before it exists). Reading
# as root leaves nothing the consumers (uid 10001) cannot open: SQLite gives
# a -wal or -shm file it creates the database file's owner.
rows() {
    local db
    db=$(db_path "$1")
    if [[ -f "$db" ]]; then sqlite3 -readonly "$db" 'SELECT count(*) FROM events' 2>/dev/null || echo "?"; else echo 0; fi
}
wait_rows() { # wait_rows EXPECTED TIMEOUT: both databases hold EXPECTED events
    local i pull="?" push="?"
    for ((i = 0; i < $2; i += 2)); do
        pull=$(rows pull) push=$(rows push)
        [[ "$pull" == "$1" && "$push" == "$1" ]] && return 0
        sleep 2
    done
    fail "consumers not done after $2 s: pull $pull, push $push events stored (want $1)"
}
wait_stored() { # wait_stored MODEL N: until MODEL's database holds N events (5 min at most)
    local i
    for ((i = 0; i < 600; i++)); do
        (($(rows "$1") >= $2)) && return
        sleep 0.5
    done
}
verify() { # verify PHASE PRODUCER_JSON: bench verify on both databases in place
    local dir=$run_dir/verify/$1 out=$run_dir/verify-$1.txt
    rm -rf "$run_dir/verify" && mkdir -p "$dir"
    cp "$2" "$dir/producer.json"
    ln -s "$(db_path pull)" "$dir/pull.db" && ln -s "$(db_path push)" "$dir/push.db"
    if "$bench_bin" verify "$run_dir/verify" >"$out" 2>&1; then
        pass "verification $1 (bench verify: $(tail -1 "$out"))"
    else
        fail "verification $1 (bench verify, $out)"
    fi
    sed 's/^/    /' "$out" >>"$summary" && cat "$out" >&2
}
producer_stats() { echo "$(volume_dir producer-data)/producer-$1-$2.json"; }
scrape() { # scrape NAME: the three endpoints into the run directory
    local port
    for port in 9101 9102 9103; do
        curl -s --max-time 2 "http://127.0.0.1:$port/metrics" >"$run_dir/metrics-$1-$port.txt" 2>/dev/null || true
    done
}
counter() { metric "$1" "banking_consumer_$2_total"; }
