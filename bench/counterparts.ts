// The synthetic generator's answer key for cross-site retrieval: every clinical fact of its
// catalogue with the standard concepts site A and site B code it as (after "Maps to"), read from
// the same vocabulary builder that writes the sites' rows.
import { buildVocabulary, type SynthVocabulary } from '../synth';
import type { Coding, Site } from '../synth/catalogue';
import type { CounterpartQuery } from '../trainers/representations/quality';

export interface CounterpartKey {
  /** Every concept site A records (the retrieval candidates), ascending. */
  candidates: number[];
  /** Site-B concepts that site A never records, each with the A concepts of the same fact. */
  queries: CounterpartQuery[];
  /** Numeric labs: A's concept and B's concept of the same measurement, where they differ. */
  labPairs: Array<{ a: number; b: number; key: string }>;
  /** Every numeric lab concept of either site. */
  labs: number[];
}

interface Fact { a: number[]; b: number[] }

function facts(v: SynthVocabulary): Fact[] {
  const ids = (c: Coding[]) => [...new Set(c.map((x) => x.conceptId))];
  const out: Fact[] = [];
  const both = (r: Record<Site, Coding[]>) => out.push({ a: ids(r.A), b: ids(r.B) });
  for (const p of v.phenotypes) both({ A: [...p.main.A, ...p.extra.A], B: [...p.main.B, ...p.extra.B] });
  for (const c of v.otherConditions.values()) both({ A: [c.A], B: [c.B] });
  for (const e of v.events.values()) both({ A: [e.A], B: [e.B] });
  for (const d of v.drugs.values()) both(d);
  for (const l of v.labs.values()) both({ A: [l.coding.A], B: [l.coding.B] });
  for (const m of v.valueless.values()) both({ A: [m], B: [m] });
  for (const p of v.procedures.values()) both({ A: [p.A], B: [p.B] });
  return out;
}

export function counterpartKey(v: SynthVocabulary = buildVocabulary()): CounterpartKey {
  const all = facts(v);
  const atA = new Set(all.flatMap((f) => f.a));
  const targets = new Map<number, Set<number>>();
  for (const f of all) {
    for (const b of f.b) {
      if (atA.has(b)) continue;
      const t = targets.get(b) ?? new Set<number>();
      f.a.forEach((a) => t.add(a));
      targets.set(b, t);
    }
  }
  const domainOf = (id: number) => v.concepts.get(id)!.domain.toLowerCase();
  const queries = [...targets.entries()].sort((x, y) => x[0] - y[0])
    .map(([b, t]) => ({ conceptId: b, domain: domainOf(b), targets: [...t].sort((x, y) => x - y) }));
  const labPairs = [...v.labs.values()].map((l) => ({ a: l.coding.A.conceptId, b: l.coding.B.conceptId, key: l.key })).filter((p) => p.a !== p.b);
  const labs = [...new Set([...v.labs.values()].flatMap((l) => [l.coding.A.conceptId, l.coding.B.conceptId]))].sort((x, y) => x - y);
  return { candidates: [...atA].sort((x, y) => x - y), queries, labPairs, labs };
}
