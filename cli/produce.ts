// `medrep produce`: load an OMOP folder into the omop.<table> topics.
import { consoleLogger } from '../common/progress';
import { produceOmop } from '../runners/kafka/omopLoad';
import { INPUT_COMPRESSIONS, OMOP_MESSAGE_FORMATS } from '../runners/kafka/omopProducer';
import { defineCommand } from './command';
import { INPUT_VOCAB_OPTION } from './pipelineOptions';
import { KAFKA_OPTIONS, kafkaOf } from './kafka';

export const produceCommand = defineCommand({
  name: 'produce',
  synopsis: '--omop DIR|FILE.duckdb [--vocab DIR] --brokers HOST:PORT [--partitions N] [--rows-per-message N] [--message-format json|arrow] [--compression lz4|gzip|none] [--markers end-of-load|none]',
  summary: 'load an OMOP folder into the omop.<table> topics',
  options: {
    ...KAFKA_OPTIONS,
    omop: { type: 'string', value: 'DIR|FILE.duckdb', required: true, help: 'OMOP CDM input' },
    ...INPUT_VOCAB_OPTION,
    partitions: { type: 'number', help: 'partitions of topics this command creates' },
    'batch-rows': { type: 'number', help: 'rows read from the input per batch' },
    'rows-per-message': { type: 'number', help: 'rows per Kafka message' },
    'message-format': { type: 'enum', values: OMOP_MESSAGE_FORMATS, default: 'json', help: 'json: rows as JSON text; arrow: an Arrow record batch per message (runners/kafka/README.md)' },
    compression: { type: 'enum', values: INPUT_COMPRESSIONS, default: 'lz4', help: 'record-batch compression of the input topics (gzip: for consumers that read only gzip)' },
    // end a load with medrep's end-of-load markers, or send rows only (as a foreign producer)
    markers: { type: 'enum', values: ['end-of-load', 'none'], default: 'end-of-load', help: "end-of-load: end the load with medrep's markers; none: rows only, as a foreign producer" },
  },
  async run(o) {
    const r = await produceOmop({
      omop: o.omop,
      vocab: o.vocab,
      kafka: kafkaOf(o),
      partitions: o.partitions,
      batchRows: o.batchRows,
      rowsPerMessage: o.rowsPerMessage,
      messageFormat: o.messageFormat,
      compression: o.compression,
      endOfLoad: o.markers === 'end-of-load',
      log: consoleLogger,
    });
    process.stdout.write(`${JSON.stringify({ rows: r.rows, dead_lettered: r.deadLettered, by_table: r.byTable, dead_lettered_by_kind: r.deadLetteredByKind, rows_per_second: Math.round(r.rowsPerSecond), markers: r.markers })}\n`);
  },
});
