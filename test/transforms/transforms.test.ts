import { strict as assert } from 'node:assert';
import { DecileBinner, DecileFitter, bisectLeft, decileOf, quantileBoundaries } from '../../transforms/deciles';
import { buildVocabularyIndex, normalizeConcept, followMapsTo } from '../../transforms/normalize';
import { splitBucket, splitOf, splitmix64, SPLITS } from '../../transforms/splits';
import { ageInYears, sequentialAger, buildSequence, chunkRanges, segmentsAndRanks, windowBefore, PersonEvents } from '../../transforms/trajectory';
import { assemblePerson } from '../../transforms/personAssembly';
import { EventCanonicalizer, unitNamer } from '../../transforms/events';
import { ConceptNormalizer } from '../../transforms/normalize';
import { LabelRecord } from '../../transforms/labels';
import { emptyCanonicalEvent } from '../../schemas/canonicalEvent';
import { tableSpec } from '../../schemas/omop';
import { prng } from '../helpers/syntheticOmop';

const ms = (y: number, m: number, d: number, h = 0) => Date.UTC(y, m - 1, d, h);

describe('deciles', () => {
  it('boundaries are the 11 linear-interpolation quantiles (numpy default)', () => {
    // 1..11: h = (n-1)*k/10 = k, so boundaries are exactly the values.
    assert.deepEqual(quantileBoundaries([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // 0..9 (n=10): h = 0.9k -> k=1: 0.9, k=5: 4.5, k=10: 9
    const b = quantileBoundaries([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(b[0], 0);
    assert.ok(Math.abs(b[1] - 0.9) < 1e-12);
    assert.ok(Math.abs(b[5] - 4.5) < 1e-12);
    assert.equal(b[10], 9);
  });

  it('bin = max(0, bisect_left(b, v) - 1) clamped to 0..9: edges, ties, out of range', () => {
    const b = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    assert.equal(bisectLeft(b, 1), 0);
    assert.equal(decileOf(b, 1), 0); // the minimum
    assert.equal(decileOf(b, 1.5), 0);
    assert.equal(decileOf(b, 2), 0); // on a boundary: bisect_left lands on it, bin below
    assert.equal(decileOf(b, 2.0001), 1);
    assert.equal(decileOf(b, 10.5), 9);
    assert.equal(decileOf(b, 11), 9);
    assert.equal(decileOf(b, -100), 0); // below the fitted range
    assert.equal(decileOf(b, 1e9), 9); // above it
    // ties: many equal boundaries send a tied value to the lowest of them
    const tied = [0, 5, 5, 5, 5, 5, 5, 6, 7, 8, 9];
    assert.equal(decileOf(tied, 5), 0);
    assert.equal(decileOf(tied, 5.5), 6);
  });

  it('fits per (concept, unit) with at least 10 values; missing unit is its own group', () => {
    const f = new DecileFitter();
    for (let i = 0; i < 10; i++) f.add(100, 'mg/dL', i);
    for (let i = 0; i < 9; i++) f.add(200, 'mg/dL', i); // under 10: not binned
    for (let i = 0; i < 12; i++) f.add(100, null, i * 10);
    f.add(100, 'mg/dL', Number.NaN); // ignored
    const art = f.fit();
    assert.equal(art.groups.length, 2);
    const binner = new DecileBinner(art);
    assert.equal(binner.bin(200, 'mg/dL', 3), -1);
    assert.equal(binner.bin(100, 'mg/dL', null), -1);
    assert.equal(binner.bin(100, 'g/L', 3), -1);
    assert.equal(binner.bin(100, 'mg/dL', 4.6), 5); // b = 0,.9,...,4.5,5.4: bisect_left(4.6)=6 -> 5
    assert.equal(binner.bin(100, null, 4.6), 0); // other group: b = 0, 11, 22, ...
    assert.match(art.version, /^sha256:[0-9a-f]{64}$/);
    const again = new DecileFitter();
    for (let i = 0; i < 12; i++) again.add(100, null, i * 10);
    for (let i = 0; i < 10; i++) again.add(100, 'mg/dL', i);
    assert.equal(again.fit().version, art.version, 'version depends on content, not insertion order');
    again.add(100, null, 1000);
    assert.notEqual(again.fit().version, art.version);
  });
});

describe('concept normalization', () => {
  const vocab = buildVocabularyIndex(
    [
      { concept_id: 1, standard_concept: 'S' },
      { concept_id: 2, standard_concept: null },
      { concept_id: 3, standard_concept: null },
      { concept_id: 4, standard_concept: 'S' },
      { concept_id: 5, standard_concept: 'S' },
      { concept_id: 6, standard_concept: null },
      { concept_id: 7, standard_concept: 'S', invalid_reason: 'D' },
      { concept_id: 8, standard_concept: null },
      { concept_id: 9, standard_concept: null },
    ],
    [
      [2, 3], // 2 -> 3 (non-standard, e.g. upgraded) -> 4
      [3, 4],
      [6, 5], // two targets: lowest standard id wins
      [6, 4],
      [8, 9], // cycle without a standard end
      [9, 8],
    ],
  );
  it('keeps standard concepts, follows Maps to chains, picks the lowest target', () => {
    assert.deepEqual(normalizeConcept(vocab, 1, 0), { conceptId: 1, status: 'standard' });
    assert.deepEqual(normalizeConcept(vocab, 2, 0), { conceptId: 4, status: 'mapped' });
    assert.deepEqual(normalizeConcept(vocab, 6, 0), { conceptId: 4, status: 'mapped' });
    assert.deepEqual(normalizeConcept(vocab, 0, 2), { conceptId: 4, status: 'mapped' }, 'concept_id 0 maps from the source concept');
    assert.equal(followMapsTo(vocab, 8), null, 'cycles end');
  });
  it('keeps unmappable rows with their own id and flags ids the vocabulary lacks', () => {
    assert.deepEqual(normalizeConcept(vocab, 8, 0), { conceptId: 8, status: 'unmapped' });
    assert.deepEqual(normalizeConcept(vocab, 0, 9), { conceptId: 9, status: 'unmapped' });
    assert.deepEqual(normalizeConcept(vocab, 7, 0), { conceptId: 7, status: 'unmapped' }, 'an invalidated standard concept is not standard');
    assert.deepEqual(normalizeConcept(vocab, 12345, 0), { conceptId: 12345, status: 'not_in_vocabulary' }, 'kept with its own id');
    assert.deepEqual(normalizeConcept(vocab, 12345, 8), { conceptId: 12345, status: 'not_in_vocabulary' }, 'the row keeps its own concept, not the source');
    assert.deepEqual(normalizeConcept(vocab, 0, 12345), { conceptId: 12345, status: 'not_in_vocabulary' }, 'concept 0: the source id is kept');
    assert.deepEqual(normalizeConcept(vocab, 12345, 2), { conceptId: 4, status: 'mapped' });
    assert.deepEqual(normalizeConcept(vocab, 0, 0), { conceptId: 0, status: 'unmapped' });
  });
  it('canonicalizeRow: a measurement row becomes one canonical event (mapped concept, unit code, origin kept) and is counted', () => {
    const canon = new EventCanonicalizer(new ConceptNormalizer(vocab), unitNamer((id) => (id === 8840 ? 'mg/dL' : undefined)), null);
    const ev = tableSpec('measurement').events!;
    const row = { personId: 7n ** 30n, timeMs: ms(2020, 1, 2), conceptId: 2, sourceConceptId: 6, value: 5.5, unitConceptId: 8840, unitSource: 'mg per dl', visitId: null, rowId: 42, row: 3 };
    const out = emptyCanonicalEvent();
    canon.canonicalizeRow('measurement', ev, row, out);
    assert.deepEqual(out, {
      personId: 7n ** 30n, timeMs: ms(2020, 1, 2), table: 'measurement', omopTable: 'measurement', domain: 3, conceptId: 4, sourceConceptId: 6,
      decile: -1, value: 5.5, unit: 'mg/dL', visitId: null, rowId: 42, row: 3,
    });
    canon.canonicalizeRow('measurement', ev, { ...row, conceptId: 12345, sourceConceptId: 0, unitConceptId: 0 }, out);
    assert.equal(out.conceptId, 12345, 'a concept the vocabulary lacks stays as its own id');
    assert.equal(out.unit, 'mg per dl', 'without a unit concept code, the source text');
    assert.equal(canon.counts.get('measurement')!.mapped, 1);
    assert.equal(canon.counts.get('measurement')!.not_in_vocabulary, 1);
  });
});

describe('person splits', () => {
  it('SplitMix64 matches the reference generator (first output for seed 0)', () => {
    assert.equal(splitmix64(0n), 0xe220a8397b1dcdafn);
  });
  it('are stable and near 70/15/9/3/3 percent', () => {
    assert.equal(splitOf(42), splitOf(42n));
    assert.equal(splitBucket(123456789), splitBucket(123456789));
    const counts = Object.fromEntries(SPLITS.map((s) => [s, 0])) as Record<string, number>;
    const n = 100_000;
    for (let i = 1; i <= n; i++) counts[splitOf(i)]++;
    const expected = { pretrain_train: 0.7, pretrain_val: 0.15, finetune_train: 0.09, finetune_val: 0.03, finetune_test: 0.03 };
    for (const [s, p] of Object.entries(expected)) assert.ok(Math.abs(counts[s] / n - p) < 0.006, `${s}: ${counts[s] / n}`);
  });
});

describe('trajectory', () => {
  const events = (times: number[]): PersonEvents => ({
    times: Float64Array.from(times),
    conceptIds: Float64Array.from(times.map((_, i) => 1000 + i)),
    deciles: Int8Array.from(times.map((_, i) => (i % 2 ? -1 : i % 10))),
    domains: Int8Array.from(times.map((_, i) => 1 + (i % 4))),
    length: times.length,
  });

  it('age in whole years at the event, birthday edges', () => {
    const birth = ms(2000, 3, 15);
    assert.equal(ageInYears(birth, ms(2010, 3, 14)), 9);
    assert.equal(ageInYears(birth, ms(2010, 3, 15)), 10);
    assert.equal(ageInYears(birth, ms(1999, 1, 1)), 0, 'events before birth clamp to 0');
    assert.equal(ageInYears(ms(1850, 1, 1), ms(2100, 1, 1)), 119, 'clamped to the age table');
  });

  it('the sequential age (used on the hot path) equals ageInYears, leap-day births included', () => {
    for (const birth of [ms(2000, 2, 29), ms(1950, 12, 31), ms(1990, 6, 1)]) {
      const ager = sequentialAger(birth);
      let t = birth - 400 * 86_400_000;
      for (let k = 0; k < 3000; k++) {
        t += Math.floor(((k * 7919) % 97) * 0.37 * 86_400_000); // irregular ascending steps, ties included
        assert.equal(ager(t), ageInYears(birth, t), new Date(t).toISOString());
      }
    }
  });

  it('segment = dense rank of the latest visit start at or before the event; record rank within it', () => {
    const ev = events([ms(2020, 1, 1), ms(2020, 1, 5), ms(2020, 1, 5), ms(2020, 1, 6), ms(2020, 2, 1), ms(2020, 2, 1, 12)]);
    // visits start Jan 5 (twice: same start is one rank) and Feb 1
    const { segments, ranks } = segmentsAndRanks(ev, [ms(2020, 2, 1), ms(2020, 1, 5), ms(2020, 1, 5)]);
    assert.deepEqual([...segments], [0, 1, 1, 1, 2, 2]);
    assert.deepEqual([...ranks], [1, 1, 1, 2, 1, 2]);
  });

  it('a date-only event on the day a visit starts belongs to that visit; a timed one before the start does not', () => {
    // Visits start 2020-02-20 10:00 and 2020-03-01 08:00. On Mar 1: a date-only fact (00:00), a
    // timed fact at 06:00 (before the admission: still the earlier visit) and one at 09:00.
    const ev = events([ms(2020, 2, 20, 12), ms(2020, 3, 1), ms(2020, 3, 1, 6), ms(2020, 3, 1, 9), ms(2020, 3, 2)]);
    const { segments, ranks } = segmentsAndRanks(ev, [ms(2020, 3, 1, 8), ms(2020, 2, 20, 10)]);
    assert.deepEqual([...segments], [1, 2, 1, 2, 2]);
    assert.deepEqual([...ranks], [1, 1, 2, 2, 3], 'record ranks count times within each segment');
    // Before any visit, a date-only fact of the first admission day joins that visit.
    assert.deepEqual([...segmentsAndRanks(events([ms(2020, 2, 20)]), [ms(2020, 2, 20, 10)]).segments], [1]);
    assert.deepEqual([...segmentsAndRanks(events([ms(2020, 2, 19)]), [ms(2020, 2, 20, 10)]).segments], [0], 'the day before stays before');
  });

  it('segments equal counting the visit starts at or before each event, on random trajectories with date-only facts and unsorted, repeated starts', () => {
    const rand = prng(5);
    const DAY = 86_400_000;
    for (let person = 0; person < 300; person++) {
      const times: number[] = [];
      let t = ms(2015, 1, 1) + Math.floor(rand() * 400) * DAY;
      for (let k = Math.floor(rand() * 80); k > 0; k--) {
        t += rand() < 0.3 ? 0 : Math.floor(rand() * 5 * DAY);
        // A date-only fact (00:00) or a timed one, in time order.
        times.push(rand() < 0.4 ? Math.max(times.at(-1) ?? 0, Math.floor(t / DAY) * DAY) : Math.max(times.at(-1) ?? 0, t));
      }
      const starts = Array.from({ length: Math.floor(rand() * 12) }, () => ms(2015, 1, 1) + Math.floor(rand() * 800 * 24) * 3_600_000);
      if (starts.length > 2 && rand() < 0.5) starts.push(starts[0]);
      const { segments } = segmentsAndRanks(events(times), starts);
      const distinct = [...new Set(starts)];
      const expected = times.map((x) => distinct.filter((st) => st <= (x % DAY === 0 ? x + DAY - 1 : x)).length);
      assert.deepEqual([...segments], expected, `person ${person}`);
    }
  });

  it('sequence starts with [CLS] and the gender token, then events with age/segment/rank/domain', () => {
    const ev = events([ms(2020, 1, 1), ms(2020, 1, 2)]);
    const seq = buildSequence(ev, { birthMs: ms(1990, 6, 1), genderConceptId: 8532, visitStarts: [ms(2020, 1, 1)] }, 0, 2);
    assert.deepEqual(seq.conceptIds, [-3, 8532, 1000, 1001]);
    assert.deepEqual(seq.deciles, [null, null, 0, null]);
    assert.deepEqual(seq.ages, [29, 29, 29, 29]);
    assert.deepEqual(seq.segments, [0, 0, 1, 1]);
    assert.deepEqual(seq.recordRanks, [0, 0, 1, 2]);
    assert.deepEqual(seq.domains, [0, 0, 1, 2]);
  });

  it('window keeps events strictly before the prediction time, the newest N', () => {
    const ev = events([1, 2, 3, 4, 5, 6]);
    assert.deepEqual(windowBefore(ev, 5, 10), [0, 4]);
    assert.deepEqual(windowBefore(ev, 5, 2), [2, 4], 'truncation keeps the newest');
    assert.deepEqual(windowBefore(ev, 1, 2), [0, 0]);
    assert.deepEqual(chunkRanges(5, 2), [[0, 2], [2, 4], [4, 5]]);
    assert.deepEqual(chunkRanges(0, 2), []);
  });

  it('assemblePerson: one window per label record (the newest events before its time) and the pretraining chunks', () => {
    const ev = events([ms(2020, 1, 1), ms(2020, 1, 2), ms(2020, 1, 3), ms(2020, 1, 4), ms(2020, 1, 5)]);
    const info = { birthMs: ms(1990, 6, 1), genderConceptId: 8507, visitStarts: [ms(2020, 1, 3)] };
    const record = (prediction: number | null): LabelRecord => ({
      task: 'mortality', person_id: 1, version: 1, kind: 'sample', retracted: false, index_visit_id: 9, prediction_time: prediction, label: 1, labels: null, watermark: 0,
    });
    const { samples, chunks } = assemblePerson(ev, info, [record(ms(2020, 1, 4)), record(null)], 2);
    assert.deepEqual(samples.map((x) => x.sequence.conceptIds), [[-3, 8507, 1001, 1002], [-3, 8507]], 'newest 2 before Jan 4; no prediction time: an empty window');
    assert.deepEqual(samples[0].sequence.segments, [0, 0, 0, 1], 'segments of the whole trajectory, not of the window');
    assert.deepEqual(chunks.map((c) => c.conceptIds), [[-3, 8507, 1000, 1001], [-3, 8507, 1002, 1003], [-3, 8507, 1004]]);
    assert.deepEqual(assemblePerson(ev, info, [], 2, false).chunks, [], 'no chunks when not asked');
    assert.deepEqual(assemblePerson(events([]), info, [record(ms(2020, 1, 4))], 2).samples[0].sequence.conceptIds, [-3, 8507]);
  });
});
