#!/usr/bin/env bash
# `npm test` (after the build): the test suite, or the test files given as arguments, against a
# real Apache Kafka broker. When a broker answers at KAFKA_BROKERS (default 127.0.0.1:9092), the
# tests use it. Otherwise this script starts one with scripts/kafka.sh for the run, on the port
# KAFKA_BROKERS names if that port is free on this machine, else on the first free port pair
# among 19092, 29092, 39092, 49092, and stops it at the end, also when the tests fail or the run
# is interrupted (Ctrl-C, SIGTERM).
#
# `--suite unit|integration` runs that suite's files (scripts/test-suites.mjs); the unit suite
# needs no broker and starts none.
#
#   npm test                                   # the whole suite
#   npm run test:unit                          # scripts/test.sh --suite unit
#   npm test -- dist/test/runners/kafka/kafkaOps.test.js     # some files
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

suite=all
if [[ "${1:-}" == --suite ]]; then suite="${2:-}"; shift 2 || shift; fi
if [[ $# -eq 0 ]]; then
  # Fails, naming the file, when a test file is in no suite.
  list="$(node scripts/test-suites.mjs "$suite")"
  mapfile -t files <<<"$list"
  set -- "${files[@]}"
fi

brokers="${KAFKA_BROKERS:-127.0.0.1:9092}"

# True when a Kafka broker answers a metadata request at the given broker list (not just an open port).
answers() {
  node -e '
    const { Kafka, logLevel } = require("kafkajs");
    const kafka = new Kafka({ brokers: process.argv[1].split(","), logLevel: logLevel.NOTHING, connectionTimeout: 2000, requestTimeout: 4000, retry: { retries: 1 } });
    const admin = kafka.admin();
    setTimeout(() => process.exit(1), 10000).unref();
    admin.connect().then(() => admin.describeCluster()).then(() => process.exit(0), () => process.exit(1));
  ' "$1"
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

started_port=""
stop_broker() {
  if [[ -n "$started_port" ]]; then
    echo "test.sh: stopping the broker this run started on 127.0.0.1:$started_port" >&2
    KAFKA_PORT="$started_port" scripts/kafka.sh stop >&2 || true
    started_port=""
  fi
}
trap stop_broker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "$suite" == unit ]]; then
  echo "test.sh: unit suite, no Kafka broker" >&2
elif answers "$brokers"; then
  echo "test.sh: using the Kafka broker at $brokers" >&2
else
  port=""
  # The port the user named, when it is a free local one; else the first free pair.
  if [[ "$brokers" =~ ^(127\.0\.0\.1|localhost):([0-9]+)$ ]] && port_free "${BASH_REMATCH[2]}" && port_free "$((BASH_REMATCH[2] + 1))"; then
    port="${BASH_REMATCH[2]}"
  else
    for p in 19092 29092 39092 49092; do
      if port_free "$p" && port_free "$((p + 1))"; then port=$p; break; fi
    done
  fi
  [[ -n "$port" ]] || { echo "test.sh: no Kafka broker answers at $brokers and no free port pair among 19092, 29092, 39092, 49092 to start one" >&2; exit 1; }
  echo "test.sh: no Kafka broker answers at $brokers; starting one on 127.0.0.1:$port for this run" >&2
  started_port="$port"
  KAFKA_PORT="$port" scripts/kafka.sh start </dev/null >&2
  export KAFKA_BROKERS="127.0.0.1:$port"
fi
export KAFKA_BROKERS="${KAFKA_BROKERS:-$brokers}"

# The Python of the ecosystem checks (meds, meds_reader), unless the caller names one.
if [[ "$suite" != unit && -z "${MEDREP_PYTHON:-}" ]]; then MEDREP_PYTHON="$(scripts/python-venv.sh)"; export MEDREP_PYTHON; fi

# In the background, so that a signal to this script is handled at once (bash runs traps only
# between foreground commands): it is passed on to mocha, then the EXIT trap stops the broker.
node_modules/.bin/mocha "$@" &
mocha_pid=$!
trap 'kill -TERM "$mocha_pid" 2>/dev/null; wait "$mocha_pid"; exit 130' INT
trap 'kill -TERM "$mocha_pid" 2>/dev/null; wait "$mocha_pid"; exit 143' TERM
set +e
wait "$mocha_pid"
status=$?
set -e
exit "$status"
