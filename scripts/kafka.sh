#!/usr/bin/env bash
# Starts, stops and reports a single-node Apache Kafka (KRaft, no ZooKeeper, no Docker) on
# 127.0.0.1 for development, tests and CI. The broker's jars come from Maven Central (fetched
# once with Maven into .cache/kafka/lib); the JDK on the machine runs them.
#
#   scripts/kafka.sh start|stop|status|restart
#
# Environment:
#   KAFKA_PORT             client port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default KAFKA_PORT + 1, i.e. 9093)
#   KAFKA_VERSION          Apache Kafka version fetched from Maven Central (default 4.1.1)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx1g)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 120)
#   KAFKA_CLUSTER_ID       cluster id used when formatting a new data dir (default: random)
#
# State lives in .cache/kafka/ at the repository root: lib/ (jars), and one folder per client
# port, node-<port>/, holding server.properties, data/, kafka.log and kafka.pid.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO_ROOT/.cache/kafka"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
VERSION="${KAFKA_VERSION:-4.1.1}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
LIB="$CACHE/lib/$VERSION"
NODE="$CACHE/node-$PORT"
PID_FILE="$NODE/kafka.pid"
LOG_FILE="$NODE/kafka.log"
CONFIG="$NODE/server.properties"

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: error: $*" >&2; exit 1; }

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME/bin/java"; return; fi
  command -v java >/dev/null 2>&1 || die "java not found: Apache Kafka $VERSION needs a JDK 17 or newer on PATH (or JAVA_HOME)"
  command -v java
}

check_java() {
  local v
  v="$("$(java_bin)" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
  [[ -n "$v" ]] || die "could not read the Java version of $(java_bin)"
  (( ${v%%.*} >= 17 )) || die "Apache Kafka $VERSION needs Java 17 or newer; $(java_bin) is Java $v"
}

# Downloads the broker and tool jars once; the marker file makes a half-finished download retry.
fetch_jars() {
  [[ -f "$LIB/.complete" ]] && return
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven is needed once to fetch Apache Kafka $VERSION from Maven Central"
  say "fetching Apache Kafka $VERSION jars from Maven Central into ${LIB#"$REPO_ROOT"/}"
  rm -rf "$LIB"
  mkdir -p "$LIB"
  local mvn_log="$CACHE/maven-$VERSION.log"
  if ! mvn -B -q -Dstyle.color=never -f "$REPO_ROOT/scripts/kafka-pom.xml" -Dkafka.version="$VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB" </dev/null >"$mvn_log" 2>&1; then
    tail -n 40 "$mvn_log" >&2
    die "Maven could not fetch org.apache.kafka:kafka_2.13:$VERSION (Maven's output above, all of it in $mvn_log)"
  fi
  ls "$LIB"/kafka_2.13-"$VERSION".jar >/dev/null 2>&1 || die "Maven finished but kafka_2.13-$VERSION.jar is missing in $LIB"
  touch "$LIB/.complete"
}

# Short-lived tool JVMs (formatter, readiness probe): small heap, quick start-up.
run_tool() {
  "$(java_bin)" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$LIB/*" \
    -Dlog4j2.configurationFile="$NODE/log4j2.properties" "$@"
}

write_config() {
  mkdir -p "$NODE/data"
  cat >"$CONFIG" <<EOF
# Written by scripts/kafka.sh: one process is both the KRaft controller and the broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$NODE/data
# One node: every internal topic has one replica and needs one in-sync replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
num.partitions=1
# Groups start at once (tests, CI); topics are created by medrep with their configs, never implicitly.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=4
log.retention.check.interval.ms=300000
EOF
  cat >"$NODE/log4j2.properties" <<'EOF'
# The broker logs INFO and above to stdout, which kafka.sh sends to kafka.log.
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
logger.controller.name = kafka.controller
logger.controller.level = info
EOF
}

# The pid in the pid file, if that process is alive and is this node's broker.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "kafka.Kafka $CONFIG" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True once the broker answers an ApiVersions request (not just an open socket).
answers() {
  run_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$PORT" >/dev/null 2>&1
}

start() {
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on 127.0.0.1:$PORT"
    return 0
  fi
  rm -f "$PID_FILE"
  for p in "$PORT" "$CONTROLLER_PORT"; do
    port_open "$p" && die "port 127.0.0.1:$p is already in use by another process; set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
  done
  check_java
  fetch_jars
  write_config
  if [[ ! -f "$NODE/data/meta.properties" ]]; then
    local cluster_id="${KAFKA_CLUSTER_ID:-}"
    [[ -n "$cluster_id" ]] || cluster_id="$(run_tool kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    say "formatting ${NODE#"$REPO_ROOT"/}/data (cluster id $cluster_id)"
    run_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG" --ignore-formatted >>"$LOG_FILE" 2>&1 \
      || die "formatting the storage failed; see $LOG_FILE"
  fi
  local started=$SECONDS
  say "starting Apache Kafka $VERSION on 127.0.0.1:$PORT (controller $CONTROLLER_PORT), log ${LOG_FILE#"$REPO_ROOT"/}"
  # setsid: the broker outlives the shell that started it and gets no terminal signals.
  # shellcheck disable=SC2086  # HEAP_OPTS holds several flags on purpose
  setsid nohup "$(java_bin)" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -cp "$LIB/*" -Dlog4j2.configurationFile="$NODE/log4j2.properties" \
    kafka.Kafka "$CONFIG" >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  pid=$!
  while (( SECONDS - started < START_TIMEOUT )); do
    if [[ ! -d "/proc/$pid" ]]; then
      echo "--- last lines of $LOG_FILE ---" >&2
      tail -n 30 "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      die "the broker exited during start-up (see above)"
    fi
    if port_open "$PORT" && answers; then
      say "ready on 127.0.0.1:$PORT (pid $pid) after $((SECONDS - started)) s"
      return 0
    fi
    sleep 0.5
  done
  echo "--- last lines of $LOG_FILE ---" >&2
  tail -n 30 "$LOG_FILE" >&2
  die "the broker did not answer on 127.0.0.1:$PORT within $START_TIMEOUT s (KAFKA_START_TIMEOUT); it is still running as pid $pid, stop it with: $0 stop"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    say "not running on 127.0.0.1:$PORT"
    return 0
  fi
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while [[ -d "/proc/$pid" ]] && (( waited < 600 )); do sleep 0.1; waited=$((waited + 1)); done
  if [[ -d "/proc/$pid" ]]; then
    say "pid $pid did not stop within 60 s of SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while [[ -d "/proc/$pid" ]]; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    if answers; then
      say "running (pid $pid) on 127.0.0.1:$PORT, answering"
    else
      say "running (pid $pid) on 127.0.0.1:$PORT, not answering yet"
    fi
    return 0
  fi
  say "not running on 127.0.0.1:$PORT"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  *) echo "usage: $0 start|stop|status|restart   (KAFKA_PORT=$PORT)" >&2; exit 2 ;;
esac
