// First pass of a run: fits decile boundaries on the training persons' numeric measurements,
// after normalization, so boundaries belong to standard concepts.
import { DuckDBConnection } from '@duckdb/node-api';
import { DecileArtifact, DecileFitter } from '../../transforms/deciles';
import { ConceptNormalizer } from '../../transforms/normalize';
import { UnitNamer } from '../../transforms/events';
import { Split } from '../../transforms/splits';
import { idColumn, numericColumn, streamChunks, stringColumn } from '../../sources/duck';
import { Id } from '../../schemas/ids';

/** Splits whose values fit the boundaries (DESIGN.md: the training split only). */
export const FIT_SPLITS = new Set<Split>(['pretrain_train', 'finetune_train']);

export async function fitDeciles(
  conn: DuckDBConnection,
  normalizer: ConceptNormalizer,
  units: UnitNamer,
  splitOfPerson: (personId: Id) => Split | null,
): Promise<{ artifact: DecileArtifact; valuesSeen: number; valuesUsed: number }> {
  const fitter = new DecileFitter();
  let valuesSeen = 0;
  let valuesUsed = 0;
  const sql = `SELECT person_id, measurement_concept_id, coalesce(measurement_source_concept_id, 0), coalesce(unit_concept_id, 0),
      unit_source_value, value_as_number
    FROM measurement WHERE value_as_number IS NOT NULL`;
  for await (const chunk of streamChunks(conn, sql)) {
    const person = idColumn(chunk, 0).get;
    const concept = idColumn(chunk, 1).get;
    const source = idColumn(chunk, 2).get;
    const unitConcept = idColumn(chunk, 3).get;
    const unitSource = stringColumn(chunk, 4);
    const value = numericColumn(chunk, 5).values;
    // A person's measurements are mostly adjacent: the last person's answer is reused.
    let lastPerson: Id | undefined;
    let fits = false;
    for (let i = 0, count = chunk.rowCount; i < count; i++) {
      valuesSeen++;
      const p = person(i);
      if (p !== lastPerson) {
        lastPerson = p;
        const split = splitOfPerson(p);
        fits = split !== null && FIT_SPLITS.has(split);
      }
      if (!fits) continue;
      const n = normalizer.normalize(concept(i), source(i));
      // Deciles are fitted per vocabulary concept (a number); an id beyond 2^53 is not in the vocabulary.
      if (typeof n.conceptId !== 'number') continue;
      fitter.add(n.conceptId, units(unitConcept(i), unitSource(i)), value[i]);
      valuesUsed++;
    }
  }
  return { artifact: fitter.fit(undefined, [...FIT_SPLITS].join('+')), valuesSeen, valuesUsed };
}
