// The rows of the pretrain and samples topics in memory: a sequence (transforms/trajectory.ts)
// with its person, chunk and split, and a sample's label beside its window. Built once by their
// constructors (a load's close, continuous mode, the codec's reader), read as they are by the
// codec and the sink.
import { Sequence } from '../../transforms/trajectory';
import { Id } from '../../schemas/ids';

/** A pretraining chunk or a sample's window: the sequence with its person, chunk and split. */
export interface SequenceRow extends Sequence {
  p: Id; chunk: number; split: string;
}

export const sequenceRow = (p: Id, chunk: number, seq: Sequence, split: string): SequenceRow => ({ p, chunk, split, ...seq });

/** What a sample row adds to its window: the task, prediction time, index visit and label(s). */
export interface SampleLabel {
  task: string;
  pt: number;
  iv: Id | null;
  label: number | null;
  labels: number[] | null;
  /** A correction of a label an earlier load emitted (absent: a sample). */
  kind?: 'correction';
  version?: number;
  retracted?: boolean;
}

/** A labelled sample: its window as a sequence row (chunk 0) and its label. */
export interface SampleRow extends SequenceRow, SampleLabel {}

export const sampleRow = (window: SequenceRow, label: SampleLabel): SampleRow => ({ ...window, ...label });

