#!/bin/sh
# produce-once STATS PRODUCER ARGS...: the compose producer service's entry
# (docker-compose.yml). Runs the producer with --stats-json STATS unless
# STATS already holds a run of this range: STATS is named after the run's
# first id and count, so `docker compose up` after `down` (the databases and
# the topic kept) does not send the same events again, while a new range
# (FIRST_ID, COUNT) runs as usual.
#
# A run that ended early (stopped, or events that failed delivery) is not
# taken for a finished one: produce-once refuses with exit status 3 and says
# what was acknowledged and what to do, instead of reporting the range done.
set -eu
stats=$1
shift
if [ ! -s "$stats" ]; then
    exec "$@" --stats-json "$stats"
fi
field() { sed -n "s/^ *\"$1\": *\"\{0,1\}\([0-9]*\)\"\{0,1\},\{0,1\}$/\1/p" "$stats"; }
requested=$(field events_requested)
acknowledged=$(field events_acknowledged)
failed=$(field events_failed)
first=$(field first_event_id)
last=$(field last_event_id)
if [ -n "$requested" ] && [ "$acknowledged" = "$requested" ] && [ "$failed" = 0 ]; then
    echo "produce-once: this range was already sent and acknowledged ($stats); not sending it again"
    cat "$stats"
    echo
    exit 0
fi
cat >&2 <<EOF
produce-once: error: $stats does not show a finished run of this range: ${acknowledged:-?} of ${requested:-?} events acknowledged, ${failed:-?} failed delivery, ids ${first:-?}..${last:-?} sent.
Not sending anything: sending the range again is safe for the balances (the consumers refuse an id they hold, as a dead letter) but leaves those dead letters; sending only the rest needs a new range.
Either send a new range past it (FIRST_ID=$(( ${last:-0} + 1 )) COUNT=... docker compose run --rm producer),
or move $stats away (it is on the producer-data volume) to send this range again.
EOF
exit 3
