// The per-person assembly (DESIGN.md section 5), written once for both runners: from one person's
// time-ordered token events, birth, gender and visit starts, and the label records due for that
// person, the trajectory window of each record (the newest events before its prediction time) and
// the pretraining chunks of the whole trajectory. The local runner calls it when the sorted event
// stream leaves a person (runners/local/localAssembly.ts), the Kafka runner for every person a
// load's close touches (runners/kafka/loadClose.ts).
import { LabelRecord } from './labels';
import { PersonEvents, PersonInfo, Sequence, buildSequence, chunkRanges, segmentsAndRanks, windowBefore } from './trajectory';

/** A label record with its trajectory window. */
export interface PersonSample {
  record: LabelRecord;
  sequence: Sequence;
}

export interface AssembledPerson {
  /** One per label record, in the records' order. */
  samples: PersonSample[];
  /** Pretraining chunks, oldest first (chunk k is the k-th). */
  chunks: Sequence[];
}

/**
 * A person's samples (one window per label record) and, when `withChunks`, its pretraining
 * chunks of at most `maxEvents` events each. A person without events gets empty windows.
 */
export function assemblePerson(events: PersonEvents, info: PersonInfo, labels: readonly LabelRecord[], maxEvents: number, withChunks = true): AssembledPerson {
  const sr = segmentsAndRanks(events, info.visitStarts);
  // Tasks that predict at the same time share a window: built once, read by each (never changed).
  const windows = new Map<number, Sequence>();
  const samples = labels.map((record) => {
    const [from, to] = windowRange(events, record, maxEvents);
    const key = from * (events.length + 1) + to;
    let sequence = windows.get(key);
    if (!sequence) {
      sequence = buildSequence(events, info, from, to, sr);
      windows.set(key, sequence);
    }
    return { record, sequence };
  });
  const chunks = withChunks ? chunkRanges(events.length, maxEvents).map(([from, to]) => buildSequence(events, info, from, to, sr)) : [];
  return { samples, chunks };
}

/** A label record's window, as an event index range: the newest `maxEvents` events strictly before its prediction time (none without one). */
function windowRange(events: PersonEvents, record: LabelRecord, maxEvents: number): [number, number] {
  return record.prediction_time === null ? [0, 0] : windowBefore(events, record.prediction_time, maxEvents);
}
