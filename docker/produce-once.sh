#!/bin/sh
# produce-once STATS PRODUCER ARGS...: the compose producer service's entry
# (docker-compose.yml). Runs the producer with --stats-json STATS unless
# STATS already holds a finished run: STATS is named after the run's first
# id and count, so `docker compose up` after `down` (the databases and the
# topic kept) does not send the same events again, while a new range
# (FIRST_ID, COUNT) runs as usual. Delete the file to send a range again.
set -eu
stats=$1
shift
if [ -s "$stats" ]; then
    echo "produce-once: this range was already sent and acknowledged ($stats); not sending it again"
    cat "$stats"
    echo
    exit 0
fi
exec "$@" --stats-json "$stats"
