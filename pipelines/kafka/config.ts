// How medrep reaches a Kafka cluster: brokers, client id, SASL and TLS, read from command-line
// flags with environment variables as fallback, and turned into a kafkajs client. Secrets are
// never logged; `describeKafkaOptions` prints what is safe to print.
import * as fs from 'fs';
import { Kafka, KafkaConfig, logLevel, SASLOptions } from 'kafkajs';
import type { FlagSpec } from '../../common/args';
import { UserError } from '../../common/errors';
import { consoleLogger, Logger } from '../../common/progress';
import { clientLogCreator } from './clientLog';

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

/** Flags understood by `kafkaOptionsFromArgs` (each also read from the environment variable). */
export const KAFKA_FLAGS: Record<string, string> = {
  '--brokers': 'KAFKA_BROKERS',
  '--client-id': 'KAFKA_CLIENT_ID',
  '--sasl-mechanism': 'KAFKA_SASL_MECHANISM',
  '--sasl-username': 'KAFKA_SASL_USERNAME',
  '--sasl-password': 'KAFKA_SASL_PASSWORD',
  '--tls': 'KAFKA_TLS',
  '--tls-ca': 'KAFKA_TLS_CA',
  '--topic-prefix': 'MEDREP_TOPIC_PREFIX',
};

/** The connection flags as a parser spec (commands add their own). */
export const KAFKA_SPEC: FlagSpec = {
  brokers: 'string', 'client-id': 'string', 'sasl-mechanism': 'string', 'sasl-username': 'string', 'sasl-password': 'string',
  tls: 'boolean', 'tls-ca': 'string', 'topic-prefix': 'string',
};

/** The value of `--flag VALUE` or `--flag=VALUE` in args (`--tls` alone reads as true). */
export function flagValue(args: string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === flag) {
      const next = args[i + 1];
      // `--tls` may stand alone as a switch.
      if (next === undefined || next.startsWith('--')) return flag === '--tls' ? 'true' : undefined;
      return next;
    }
    if (a.startsWith(flag + '=')) return a.slice(flag.length + 1);
  }
  return undefined;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v);
}

/**
 * Reads the connection options from flags (`--brokers a:9092,b:9092 --tls --tls-ca ca.pem ...`),
 * falling back to the environment (KAFKA_BROKERS, KAFKA_SASL_PASSWORD, ...). Passing the SASL
 * password in the environment keeps it out of the process list.
 */
export function kafkaOptionsFromArgs(args: string[], env: NodeJS.ProcessEnv = process.env): KafkaOptions {
  const get = (flag: string) => flagValue(args, flag) ?? env[KAFKA_FLAGS[flag]];
  const brokers = (get('--brokers') ?? DEFAULT_BROKERS)
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (brokers.length === 0) throw new UserError('--brokers: give at least one HOST:PORT');
  for (const b of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(b)) throw new UserError(`--brokers: "${b}" is not HOST:PORT`);
  }
  const opts: KafkaOptions = {
    brokers,
    clientId: get('--client-id') ?? 'medrep',
    topicPrefix: get('--topic-prefix') ?? '',
  };
  const mechanism = get('--sasl-mechanism');
  if (mechanism !== undefined) {
    const m = mechanism.toLowerCase();
    if (m !== 'plain' && m !== 'scram-sha-256' && m !== 'scram-sha-512') {
      throw new UserError(`--sasl-mechanism: "${mechanism}" is not one of plain, scram-sha-256, scram-sha-512`);
    }
    const username = get('--sasl-username');
    const password = get('--sasl-password');
    if (!username || password === undefined) {
      throw new UserError('--sasl-mechanism needs --sasl-username and --sasl-password (or KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD)');
    }
    opts.sasl = { mechanism: m, username, password };
  }
  const tls = get('--tls');
  const caFile = get('--tls-ca');
  if (truthy(tls) || caFile !== undefined) opts.tls = { enabled: true, caFile };
  return opts;
}

/** The kafkajs client configuration of the options (TLS CA read from its file here); kafkajs logs through `log`. */
export function kafkaJsConfig(opts: KafkaOptions, log: Logger = consoleLogger): KafkaConfig {
  const config: KafkaConfig = {
    brokers: opts.brokers,
    clientId: opts.clientId,
    logLevel: logLevel.WARN,
    logCreator: clientLogCreator(log),
    // Broker restarts are survivable: keep retrying for about a minute before giving up.
    retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 10_000 },
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
