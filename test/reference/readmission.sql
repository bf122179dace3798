-- 30-day readmission: one eligible admission per person by the seeded draw (smallest
-- SplitMix64(visit id XOR SplitMix64(seed))); an admission the person died in is no index.
-- Positive when another eligible admission starts 1..30 days after the discharge day.
CREATE OR REPLACE TEMP TABLE ref_ra_stay AS
SELECT *, coalesce(ref_base_rule(birth, age, s, e, 1),
                   CASE WHEN death IS NOT NULL AND s >= death THEN 'starts_on_or_after_death' END,
                   CASE WHEN death IS NOT NULL AND death <= e THEN 'died_during_stay' END) AS rule
FROM ref_stay;

INSERT INTO ref_excluded SELECT 'readmission', rule, count(*) FROM ref_ra_stay WHERE rule IS NOT NULL GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE ref_ra_index AS
SELECT * FROM ref_ra_stay WHERE rule IS NULL
QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY ref_draw_key({{SEED}}, visit_id)) = 1;

INSERT INTO ref_samples
SELECT 'readmission', i.person_id, ref_ms(i.e + 1), r.hit::INTEGER, NULL, i.visit_id,
       r.hit OR i.e + 30 <= (SELECT last_day FROM ref_data_end)
FROM ref_ra_index i,
LATERAL (SELECT EXISTS (
  SELECT 1 FROM ref_ra_stay n
  WHERE n.person_id = i.person_id AND n.visit_id <> i.visit_id
    AND (n.rule IS NULL OR n.rule = 'died_during_stay')
    AND n.s > i.e AND n.s <= i.e + 30) AS hit) r;
