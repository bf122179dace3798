// How medrep reaches a Kafka cluster: brokers, client id, SASL and TLS, from the command's
// settings with environment variables as fallback, and turned into a kafkajs client. Secrets are
// never logged; `describeKafkaOptions` prints what is safe to print.
import * as fs from 'fs';
import { Kafka, KafkaConfig, logLevel, SASLOptions } from 'kafkajs';
import { UserError } from '../../common/errors';
import { consoleLogger, Logger } from '../../common/progress';
import { clientLogCreator } from './clientLog';
import { registerKafkaCodecs } from './kafkaCodecs';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
  tls?: { enabled: boolean; caFile?: string };
  /** Prefix of every topic and group name, e.g. to run several pipelines on one cluster. */
  topicPrefix: string;
}

export const DEFAULT_BROKERS = '127.0.0.1:9092';

/** The connection settings as the command line gives them (cli/kafka.ts); each absent one falls back to its environment variable. */
export interface KafkaFlags {
  brokers?: string;
  clientId?: string;
  saslMechanism?: string;
  saslUsername?: string;
  saslPassword?: string;
  tls?: boolean;
  tlsCa?: string;
  topicPrefix?: string;
}

/** The environment variable each connection setting falls back to. */
export const KAFKA_ENV: Record<keyof KafkaFlags, string> = {
  brokers: 'KAFKA_BROKERS',
  clientId: 'KAFKA_CLIENT_ID',
  saslMechanism: 'KAFKA_SASL_MECHANISM',
  saslUsername: 'KAFKA_SASL_USERNAME',
  saslPassword: 'KAFKA_SASL_PASSWORD',
  tls: 'KAFKA_TLS',
  tlsCa: 'KAFKA_TLS_CA',
  topicPrefix: 'MEDREP_TOPIC_PREFIX',
};

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v);
}

/**
 * The connection options of the settings given (`brokers: 'a:9092,b:9092', tls: true, ...`),
 * falling back to the environment (KAFKA_BROKERS, KAFKA_SASL_PASSWORD, ...). Passing the SASL
 * password in the environment keeps it out of the process list.
 */
export function kafkaOptions(flags: KafkaFlags, env: NodeJS.ProcessEnv = process.env): KafkaOptions {
  const get = (key: Exclude<keyof KafkaFlags, 'tls'>): string | undefined => flags[key] ?? env[KAFKA_ENV[key]];
  const brokers = (get('brokers') ?? DEFAULT_BROKERS)
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (brokers.length === 0) throw new UserError('--brokers: give at least one HOST:PORT');
  for (const b of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(b)) throw new UserError(`--brokers: "${b}" is not HOST:PORT`);
  }
  const opts: KafkaOptions = {
    brokers,
    clientId: get('clientId') ?? 'medrep',
    topicPrefix: get('topicPrefix') ?? '',
  };
  const mechanism = get('saslMechanism');
  if (mechanism !== undefined) {
    const m = mechanism.toLowerCase();
    if (m !== 'plain' && m !== 'scram-sha-256' && m !== 'scram-sha-512') {
      throw new UserError(`--sasl-mechanism: "${mechanism}" is not one of plain, scram-sha-256, scram-sha-512`);
    }
    const username = get('saslUsername');
    const password = get('saslPassword');
    if (!username || password === undefined) {
      throw new UserError('--sasl-mechanism needs --sasl-username and --sasl-password (or KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD)');
    }
    opts.sasl = { mechanism: m, username, password };
  }
  const caFile = get('tlsCa');
  if (flags.tls || truthy(env[KAFKA_ENV.tls]) || caFile !== undefined) opts.tls = { enabled: true, caFile };
  return opts;
}

/**
 * Broker restarts are survivable: retries go on for about 75 s (a restart of a loaded broker took
 * 40-60 s), and attempts are at most 2 s apart, so a client reconnects within about 2 s of the
 * broker being back (at 10 s apart the stages waited up to 10 s more; bench/kafkaRestart.ts).
 */
export const CLIENT_RETRY = { initialRetryTime: 300, retries: 40, maxRetryTime: 2_000 };

/**
 * The stages' consumer group timeouts. A consumer that kafkajs restarted while the broker was
 * away joins as a new member, and the group's rebalance waits until the old member's session
 * expires: with a 30 s session the sink resumed 27-30 s after the broker (bench/kafkaRestart.ts),
 * with 10 s within about 10 s. kafkajs heartbeats between a stage's transactions, not during one:
 * a transaction longer than the session gets the member expelled and is redone after the
 * rebalance (exactly once still holds); --transaction-size bounds its length.
 */
export const CONSUMER_TIMEOUTS = { sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 60_000, heartbeatIntervalMs: 1_000 };

/** The kafkajs client configuration of the options (TLS CA read from its file here); kafkajs logs through `log`. */
export function kafkaJsConfig(opts: KafkaOptions, log: Logger = consoleLogger): KafkaConfig {
  // Every client of ours reads (and may write) LZ4 record batches.
  registerKafkaCodecs();
  const config: KafkaConfig = {
    brokers: opts.brokers,
    clientId: opts.clientId,
    logLevel: logLevel.WARN,
    logCreator: clientLogCreator(log),
    retry: CLIENT_RETRY,
    connectionTimeout: 3_000,
  };
  if (opts.tls?.enabled) {
    if (opts.tls.caFile) {
      let ca: Buffer;
      try {
        ca = fs.readFileSync(opts.tls.caFile);
      } catch (e) {
        throw new UserError(`--tls-ca ${opts.tls.caFile}: cannot read the CA file (${(e as Error).message})`);
      }
      config.ssl = { ca: [ca] };
    } else {
      config.ssl = true;
    }
  }
  if (opts.sasl) {
    config.sasl = { ...opts.sasl } as SASLOptions;
  }
  return config;
}

export function createKafka(opts: KafkaOptions, log: Logger = consoleLogger): Kafka {
  return new Kafka(kafkaJsConfig(opts, log));
}

/** One line about the connection, without secrets. */
export function describeKafkaOptions(opts: KafkaOptions): string {
  const parts = [`brokers=${opts.brokers.join(',')}`, `client=${opts.clientId}`];
  if (opts.topicPrefix) parts.push(`prefix=${opts.topicPrefix}`);
  parts.push(opts.tls?.enabled ? `tls=on${opts.tls.caFile ? ` ca=${opts.tls.caFile}` : ''}` : 'tls=off');
  if (opts.sasl) parts.push(`sasl=${opts.sasl.mechanism} user=${opts.sasl.username}`);
  return parts.join(' ');
}
