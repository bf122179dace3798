// The local runner's per-person assembly: a person's token events are buffered while the sorted
// event stream is on that person; when it moves on, assemblePerson (transforms/personAssembly.ts,
// shared with the Kafka runner) builds the person's sample windows and pretraining chunks from the
// buffer, and they are batched into shards here.
import { Split } from '../../transforms/splits';
import { PersonEvents } from '../../transforms/trajectory';
import { PersonSample, assemblePerson } from '../../transforms/personAssembly';
import { LabelRecord } from '../../transforms/labels';
import { Id, compareIds } from '../../schemas/ids';
import { SequenceBatch } from '../../sinks/sequenceShards';
import { SampleBatch } from '../../sinks/sampleShards';
import { ShardSeries } from '../../sinks/shards';
import { Person } from '../../sources/persons';

/** Growable per-person buffer of token events. */
class PersonBuffer implements PersonEvents {
  times = new Float64Array(4096);
  /** A plain array: concept ids are small integers, but an unknown one may be a bigint. */
  conceptIds: Id[] = [];
  deciles = new Int8Array(4096);
  domains = new Int8Array(4096);
  length = 0;
  visitStarts: number[] = [];
  push(t: number, concept: Id, decile: number, domain: number): void {
    if (this.length === this.times.length) {
      const grow = <A extends Float64Array | Int8Array>(a: A, C: { new (n: number): A }): A => {
        const b = new C(a.length * 2);
        b.set(a);
        return b;
      };
      this.times = grow(this.times, Float64Array);
      this.deciles = grow(this.deciles, Int8Array);
      this.domains = grow(this.domains, Int8Array);
    }
    this.times[this.length] = t;
    this.conceptIds[this.length] = concept;
    this.deciles[this.length] = decile;
    this.domains[this.length] = domain;
    this.length++;
  }
  reset(): void {
    this.length = 0;
    this.visitStarts = [];
  }
}

/** One task's samples: its shard series, the batch being filled, and the MEDS label rows. */
export interface SampleSink {
  series: ShardSeries;
  batch: SampleBatch;
  multi: boolean;
  meds: { subjectId: Id; predictionMs: number; labels: number[] }[];
}

export interface AssemblyOptions {
  persons: Map<Id, Person>;
  splitOfPerson: (id: Id) => Split | null;
  maxEvents: number;
  sequencesPerShard: number;
  pretrainShards: ShardSeries;
  samples: Map<string, SampleSink>;
  /** Each labelled person's samples; a person's entry is removed once its samples are written. */
  samplesByPerson: Map<Id, LabelRecord[]>;
}

export class PersonAssembler {
  private readonly buffer = new PersonBuffer();
  private sequences = new SequenceBatch();
  /** The person whose events the buffer holds. */
  current: Id | null = null;
  pretrainSequences = 0;
  pretrainTokens = 0;

  constructor(private readonly o: AssemblyOptions) {}

  /** A token event of the current person. */
  push(t: number, concept: Id, decile: number, domain: number): void { this.buffer.push(t, concept, decile, domain); }

  visitStart(t: number): void { this.buffer.visitStarts.push(t); }

  /** Writes the current person's samples and pretraining chunks, and empties the buffer. */
  async finishPerson(): Promise<void> {
    const id = this.current;
    if (id === null) return;
    const { buffer } = this;
    const person = this.o.persons.get(id)!;
    const split = this.o.splitOfPerson(id)!;
    const info = { birthMs: person.birthMs, genderConceptId: person.genderConceptId, visitStarts: buffer.visitStarts };
    const { samples, chunks } = assemblePerson(buffer, info, this.takeLabels(id), this.o.maxEvents);
    await this.writeSamples(id, samples);
    chunks.forEach((seq, k) => {
      this.sequences.push(id, k, seq, split);
      this.pretrainSequences++;
      this.pretrainTokens += seq.conceptIds.length;
    });
    if (this.sequences.length >= this.o.sequencesPerShard) {
      const full = this.sequences;
      this.sequences = new SequenceBatch();
      await this.o.pretrainShards.write(full.toTable());
    }
    buffer.reset();
  }

  /**
   * After the stream: the last person, then the labelled persons without a readable event (an
   * empty window each, in id order), then each task's last sample batch.
   */
  async finishSamples(): Promise<void> {
    await this.finishPerson();
    this.buffer.reset();
    for (const personId of [...this.o.samplesByPerson.keys()].sort(compareIds)) {
      const person = this.o.persons.get(personId);
      if (!person) continue;
      const info = { birthMs: person.birthMs, genderConceptId: person.genderConceptId, visitStarts: [] };
      await this.writeSamples(personId, assemblePerson(this.buffer, info, this.takeLabels(personId), this.o.maxEvents, false).samples);
    }
    for (const sink of this.o.samples.values()) if (sink.batch.length) await sink.series.write(sink.batch.toTable());
  }

  /** The last pretraining batch. */
  async finishSequences(): Promise<void> {
    if (this.sequences.length) await this.o.pretrainShards.write(this.sequences.toTable());
  }

  /** A person's label records, once: the entry is removed so that each is written once. */
  private takeLabels(personId: Id): LabelRecord[] {
    const list = this.o.samplesByPerson.get(personId);
    if (!list) return [];
    this.o.samplesByPerson.delete(personId);
    return list;
  }

  private async writeSamples(personId: Id, samples: PersonSample[]): Promise<void> {
    if (samples.length === 0) return;
    const split = this.o.splitOfPerson(personId)!;
    for (const { record: r, sequence } of samples) {
      const sink = this.o.samples.get(r.task)!;
      sink.batch.push(personId, sequence, split, r.prediction_time!, r.index_visit_id, r.label, r.labels);
      sink.meds.push({ subjectId: personId, predictionMs: r.prediction_time!, labels: sink.multi ? r.labels ?? [] : [r.label ?? 0] });
      if (sink.batch.length >= this.o.sequencesPerShard) {
        const full = sink.batch;
        sink.batch = new SampleBatch(sink.multi);
        await sink.series.write(full.toTable());
      }
    }
  }
}
