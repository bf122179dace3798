// The connection options every Kafka command takes, as one table fragment, and the connection
// they give (environment variables fill in what the flags leave out: runners/kafka/config.ts).
import { KafkaOptions, kafkaOptions } from '../runners/kafka/config';
import type { Options } from './options';

export const KAFKA_OPTIONS = {
  brokers: { type: 'string', value: 'HOST:PORT[,HOST:PORT]', help: 'Kafka bootstrap brokers (env KAFKA_BROKERS; default 127.0.0.1:9092)' },
  'client-id': { type: 'string', value: 'ID', help: 'Kafka client id (env KAFKA_CLIENT_ID; default medrep)' },
  'sasl-mechanism': { type: 'string', value: 'plain|scram-sha-256|scram-sha-512', help: 'SASL authentication (env KAFKA_SASL_MECHANISM)' },
  'sasl-username': { type: 'string', value: 'NAME', help: 'SASL user (env KAFKA_SASL_USERNAME)' },
  'sasl-password': { type: 'string', value: 'SECRET', help: 'SASL password (env KAFKA_SASL_PASSWORD keeps it out of the process list)' },
  tls: { type: 'bool', help: 'connect with TLS (env KAFKA_TLS=1)' },
  'tls-ca': { type: 'string', value: 'FILE', help: 'CA certificate of the brokers, PEM; implies --tls (env KAFKA_TLS_CA)' },
  'topic-prefix': { type: 'string', value: 'PREFIX', help: 'prefix of every topic and consumer group (env MEDREP_TOPIC_PREFIX)' },
} as const;

export function kafkaOf(o: Options<typeof KAFKA_OPTIONS>, env: NodeJS.ProcessEnv = process.env): KafkaOptions {
  return kafkaOptions(o, env);
}
